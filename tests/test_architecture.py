"""The core stays free of Qt, so the CLI and tests can drive it headless and the UI stays a thin layer."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_no_module_under_app_imports_qt() -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(n for n in _imports(path) if n.split(".")[0] in ("PySide6", "ui"))
        for path in (ROOT / "app").rglob("*.py")
    }
    offenders = {k: v for k, v in offenders.items() if v}
    assert offenders == {}


def test_importing_the_whole_core_loads_no_qt() -> None:
    modules = sorted(
        ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for path in (ROOT / "app").rglob("*.py") if "migrations" not in path.parts
    )
    code = "import importlib, sys\n" + "".join(f"importlib.import_module({m!r})\n" for m in modules) + \
        "print(sorted(m for m in sys.modules if m.startswith('PySide6')))"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
    assert len(modules) > 10


# --- the window's pages ---

PAGES = {"chat", "library", "discover", "welcome", "tasks", "compare", "privacy"}  # one package each under ui/
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
