"""The shape of the house, checked: the core stays free of Qt (so the CLI and tests drive it headless and the UI
stays a thin layer), its packages form an acyclic graph, and only the engine worker side and one-shot children
load llama.cpp.

Imports are read from the source (every import, also those inside functions: they are dependencies too, only
paid for later), so a cycle hidden behind a function-level import fails here as a top-level one would.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.helpers import ROOT

# Every module that may import llama_cpp, and why. Everything else runs in the window's process (or the command
# line's), which must neither pay for llama.cpp's libraries nor be taken down by them.
LLAMA_CPP_OWNERS = {
    "app.engine.worker": "the engine worker process, the only place where a model runs",
    "app.engine.completion": "the worker's Model over llama_cpp.Llama",
    "app.engine.llama_kv": "the worker's copies of conversations' KV caches",
    "app.engine.sampling": "the worker's sampler chains",
    "app.engine.tuning": "the worker's speed probe, and whether the worker's CPU backend uses AMX",
    "app.engine.llama_log": "llama.cpp's log, captured in the worker and in the dry run's child",
    "app.engine.backends": "loads the backends of a build that carries them as modules, in each llama.cpp process",
    "app.forecast.dry_run": "a one-shot child that sizes a load without allocating it",
    "app.hardware.llama_probe": "a one-shot child that asks llama.cpp what it sees on this machine",
}


@dataclass(frozen=True)
class Import:
    source: str  # the importing module, e.g. "app.engine.worker"
    target: str  # the module imported, resolved to a file of this repository where it is one
    line: int

    def __str__(self) -> str:
        return f"{self.source} imports {self.target} (line {self.line})"


def module_name(path: Path, root: Path = ROOT) -> str:
    return ".".join(path.relative_to(root).with_suffix("").parts).removesuffix(".__init__")


def _is_module(name: str, root: Path) -> bool:
    path = root.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def imports_of(path: Path, root: Path = ROOT) -> Iterator[Import]:
    """Every import in ``path``, with ``from package import module`` resolved to the module."""
    source = module_name(path, root)
    package = source if path.name == "__init__.py" else source.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(source, alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, *([base] if base else [])])
            for alias in node.names:
                full = f"{base}.{alias.name}"
                yield Import(source, full if _is_module(full, root) else base, node.lineno)


def core_files(root: Path = ROOT) -> list[Path]:
    return sorted(path for path in (root / "app").rglob("*.py") if "migrations" not in path.parts)


def package_of(module: str) -> str:
    """The room a module lives in: ``app.engine`` for ``app.engine.worker``; a module at the top of ``app`` is its
    own room (``app.chat``), and ``app`` itself (its version) is the floor under all of them."""
    return ".".join(module.split(".")[:2])


def cycles(edges: dict[str, dict[str, Import]]) -> list[list[str]]:
    """The strongly connected parts of the graph with more than one node (Tarjan), each as its nodes in a cycle's
    order where one is easy to find, else sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in edges.get(node, {}):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            part = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                part.append(member)
                if member == node:
                    break
            if len(part) > 1:
                found.append(sorted(part))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def _explained(part: Iterable[str], edges: dict[str, dict[str, Import]]) -> str:
    members = set(part)
    return "\n    ".join(str(site) for node in sorted(members) for other, site in sorted(edges.get(node, {}).items())
                         if other in members)


def graph(files: Iterable[Path], *, root: Path = ROOT, by_package: bool = True) -> dict[str, dict[str, Import]]:
    """Who imports whom inside ``app``, between packages (``by_package``) or between modules, with one import
    site per edge to show; an import of a module's own package is no edge."""
    edges: dict[str, dict[str, Import]] = {}
    for path in files:
        for site in imports_of(path, root):
            if site.target.split(".")[0] != "app":
                continue
            source, target = site.source, site.target
            if by_package:
                source, target = package_of(source), package_of(target)
            if source != target:
                edges.setdefault(source, {}).setdefault(target, site)
    return edges


def test_no_module_under_app_imports_qt() -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted({site.target for site in imports_of(path)
                                             if site.target.split(".")[0] in ("PySide6", "ui")})
        for path in (ROOT / "app").rglob("*.py")
    }
    offenders = {k: v for k, v in offenders.items() if v}
    assert offenders == {}


def test_the_packages_of_app_form_an_acyclic_graph() -> None:
    """engine -> tasks, never back; forecast -> engine, never back; every room of app/ likewise. A cycle means two
    rooms that cannot be understood, tested or replaced one without the other."""
    edges = graph(core_files())
    found = cycles(edges)
    assert not found, "import cycles between the packages of app/:\n" + "\n".join(
        f"  {' <-> '.join(part)}:\n    {_explained(part, edges)}" for part in found)
    assert {"app.engine", "app.tasks", "app.forecast", "app.hardware", "app.gguf", "app.hub", "app.cli",
            "app.documents", "app.history"} <= set(edges), "the graph lost a package: is the test reading app/?"


def test_no_module_of_app_is_in_an_import_cycle() -> None:
    """Inside a package too: the command line's groups never import its dispatcher, the document formats never
    import the reader that dispatches to them."""
    edges = graph(core_files(), by_package=False)
    found = cycles(edges)
    assert not found, "import cycles between modules of app/:\n" + "\n".join(
        f"  {' <-> '.join(part)}:\n    {_explained(part, edges)}" for part in found)


def test_only_the_engine_worker_side_and_one_shot_children_import_llama_cpp() -> None:
    importers = {
        module_name(path): sorted({site.line for site in imports_of(path) if site.target.split(".")[0] == "llama_cpp"})
        for path in sorted([*(ROOT / "app").rglob("*.py"), *(ROOT / "ui").rglob("*.py")])
    }
    importers = {module: lines for module, lines in importers.items() if lines}
    strays = {module: lines for module, lines in importers.items() if module not in LLAMA_CPP_OWNERS}
    assert strays == {}, f"llama_cpp imported outside the engine worker side and one-shot children: {strays}"
    assert set(importers) == set(LLAMA_CPP_OWNERS), "an owner no longer imports llama_cpp: take it off the list"


def test_importing_the_whole_core_loads_neither_qt_nor_llama_cpp() -> None:
    """Even the owners import llama_cpp only inside the functions that run in the worker or a child."""
    modules = [module_name(path) for path in core_files()]
    code = "import importlib, sys\n" + "".join(f"importlib.import_module({m!r})\n" for m in modules) + \
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'PySide6', 'llama_cpp'}))"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
    assert len(modules) > 10


# --- the checks can fail ------------------------------------------------------------------------------------


def _tree(tmp_path: Path, files: dict[str, str]) -> list[Path]:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return sorted((tmp_path / "app").rglob("*.py"))


def test_a_cycle_behind_a_function_level_import_is_found(tmp_path: Path) -> None:
    files = _tree(tmp_path, {
        "app/__init__.py": "", "app/errors.py": "",
        "app/engine/__init__.py": "", "app/engine/worker.py": "from app.tasks import orchestration\n",
        "app/tasks/__init__.py": "", "app/tasks/orchestration.py": "from app import errors\n",
        "app/tasks/session.py": "def start():\n    from app.engine.worker import run\n",
    })
    edges = graph(files, root=tmp_path)
    assert cycles(edges) == [["app.engine", "app.tasks"]]
    assert "app.tasks.session imports app.engine.worker (line 2)" in _explained(["app.engine", "app.tasks"], edges)
    assert cycles(graph(files, root=tmp_path, by_package=False)) == []  # no module imports itself round about


def test_a_cycle_between_modules_of_one_package_is_found(tmp_path: Path) -> None:
    files = _tree(tmp_path, {
        "app/__init__.py": "", "app/cli/__init__.py": "",
        "app/cli/main.py": "from app.cli import tasks\n",
        "app/cli/tasks.py": "def run():\n    from app.cli.main import load_model\n",
    })
    assert cycles(graph(files, root=tmp_path)) == []
    assert cycles(graph(files, root=tmp_path, by_package=False)) == [["app.cli.main", "app.cli.tasks"]]


# --- the window's pages ---

# one package each under ui/
PAGES = {"chat", "library", "discover", "welcome", "tasks", "compare", "privacy", "server"}
SHELL = "ui.main_window"  # the one module that composes the pages and routes their signals


def _module_of(path: Path, root: Path) -> str:
    return ".".join(path.relative_to(root).with_suffix("").parts).removesuffix(".__init__")


def _imported_modules(path: Path, root: Path) -> set[str]:
    """Every module ``path`` imports, relative imports resolved, ``TYPE_CHECKING`` and function-level ones too."""
    package = _module_of(path, root).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package[:len(package) - node.level + 1]) if node.level else ""
            module = ".".join(part for part in (base, node.module or "") if part)
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)  # `from ui import tasks` names a page
    return names


def _page_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "ui" and parts[1] in PAGES else None


def page_imports_outside_the_shell(root: Path) -> dict[str, list[str]]:
    """For each module under ``root/ui`` other than the shell, the pages it imports that are not its own."""
    offenders: dict[str, list[str]] = {}
    for path in sorted((root / "ui").rglob("*.py")):
        module = _module_of(path, root)
        if module == SHELL:
            continue
        own = _page_of(module)
        pages = {page for name in _imported_modules(path, root) if (page := _page_of(name)) not in (None, own)}
        if pages:
            offenders[module] = sorted(p for p in pages if p)
    return offenders


def test_each_page_has_its_package() -> None:
    found = {path.parent.name for path in (ROOT / "ui").glob("*/page.py")}
    assert found == PAGES  # a page moved or added is named here, so the test below keeps covering every page


def test_pages_never_import_each_other() -> None:
    """A page asks for what another page does with a signal, and the window connects the two; nothing but the
    window (``ui/main_window.py``) imports a page, not even the shared layers (``ui/qt``, ``ui/widgets``)."""
    assert page_imports_outside_the_shell(ROOT) == {}


def test_an_import_across_pages_is_caught(tmp_path: Path) -> None:
    for name, text in {
        "ui/__init__.py": "",
        "ui/chat/__init__.py": "",
        "ui/chat/page.py": "from ui.chat.chat_view import ChatView\nfrom ui.model_loader import PendingSend\n",
        "ui/tasks/__init__.py": "",
        "ui/tasks/page.py": "if TYPE_CHECKING:\n    from ui.chat.page import ChatPage\n",
        "ui/compare/__init__.py": "",
        "ui/compare/page.py": "def later():\n    from ..library import page\n",
        "ui/widgets/__init__.py": "",
        "ui/widgets/form.py": "from ui import tasks\n",
        "ui/main_window.py": "from ui.chat.page import ChatPage\nfrom ui.tasks.page import TasksPage\n",
    }.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")

    assert page_imports_outside_the_shell(tmp_path) == {
        "ui.compare.page": ["library"], "ui.tasks.page": ["chat"], "ui.widgets.form": ["tasks"]}
