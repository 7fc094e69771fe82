"""The models this person has: imported into the models folder, or registered where they are, and the name each
is shown by.

A model enters the library only after its header has been read and checked (``read_facts``), so the list
always shows real facts and a broken file never reaches llama.cpp from here. Copies are written to a
``.part`` file and renamed at the end, so an interrupted import never leaves a half model in the folder.

Names: ``display_name`` is the one place that names a model, and every surface (the window's pages, the command
line, history) shows the name it gives, or the one the person gave (``Library.rename``, kept in the library, never
by renaming the file).
"""

from __future__ import annotations

import filecmp
import functools
import logging
import re
import shutil
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from app.errors import HearthError, LibraryError, ModelNotFoundError
from app.gguf.facts import ModelFacts, read_facts
from app.gguf.header import SHARD_NAME
from app.history import HistoryStore, ModelRecord
from app.words import format_bytes

if TYPE_CHECKING:
    from app.hub.catalog import Catalog

log = logging.getLogger(__name__)

CHUNK = 8 * 1024 * 1024
MAX_NAME_LENGTH = 120
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class ModelRef:
    """What a command names: a library model, a .gguf path used without importing it, or a model on another
    computer (``path`` is then its ``app.remote.address``, a string)."""

    path: Path | str
    name: str
    record: ModelRecord | None = None


class ImportCancelled(LibraryError):
    def __init__(self) -> None:
        super().__init__("The import was cancelled.")


class Library:
    def __init__(self, store: HistoryStore, models_dir: Path, catalog: Catalog | None = None) -> None:
        """``catalog``: the one the app uses, for the names it gives models; the built-in one when not given."""
        self.store = store
        self.models_dir = models_dir
        self._catalog = catalog

    @functools.cached_property
    def _catalog_names(self) -> CatalogNames:
        if self._catalog is not None:
            return CatalogNames.of(self._catalog)
        from app.hub.catalog import load_builtin

        try:
            return CatalogNames.of(load_builtin())
        except HearthError:
            log.exception("the built-in catalog is unusable; models are named from their files")
            return CatalogNames()

    def models(self) -> list[ModelRecord]:
        """The library, each model named by ``display_name``: names given before it knew better (a header's
        training-run name, an older rule) are given again, and history follows them."""
        records = self.store.list_models()
        renamed = {r.id: name for r in records if (name := self.default_name(r)) != r.default_name}
        if not renamed:
            return records
        self.store.set_default_model_names(renamed)
        return self.store.list_models()

    def default_name(self, record: ModelRecord) -> str:
        """The name Hearth gives a library model, whatever the person renamed it to."""
        return display_name(Path(record.path), quantization=record.quantization,
                            header_name=str(record.facts.get("name") or ""), architecture=record.architecture,
                            catalog=self._catalog_names)

    def _name_of(self, facts: ModelFacts, path: Path) -> str:
        return display_name(path, quantization=facts.quantization, header_name=facts.name,
                            architecture=facts.architecture, catalog=self._catalog_names)

    def rename(self, model_id: int, name: str | None) -> ModelRecord:
        """Show the model as ``name`` everywhere, from now on and after a restart; an empty name gives it back the
        name Hearth chose. The file keeps its name: other programs, and the download that made it, may rely on it.

        Raises:
            ModelNotFoundError: the model is no longer in the library.
            LibraryError: the name is too long.
        """
        given = " ".join((name or "").split())
        if len(given) > MAX_NAME_LENGTH:
            raise LibraryError(f"That name is too long: {MAX_NAME_LENGTH} characters at most.")
        if self.store.get_model(model_id) is None:
            raise ModelNotFoundError("That model is no longer in the library.")
        return self.store.rename_model(model_id, given or None)

    def import_model(self, source: Path, *, copy: bool = True, progress: Progress | None = None,
                     cancel: threading.Event | None = None) -> ModelRecord:
        """Check ``source`` and add it; copying it into the models folder unless ``copy`` is False.

        Raises:
            InvalidModelError: the file is not a usable GGUF model.
            LibraryError: it is already in the library, the disk is full, or the copy was cancelled.
        """
        source = source.expanduser().resolve()
        facts = read_facts(source)
        if self.store.find_model_by_path(str(source)) is not None:
            raise LibraryError(f"“{source.name}” is already in your library.")
        in_place = not copy or source.parent == self.models_dir.resolve()
        if not in_place and (twin := self._same_bytes(source, facts.file_size)) is not None:
            raise LibraryError(f"“{source.name}” is already in your library, as “{twin.name}”: the same file, so "
                               "it was not copied again.")
        destination = source if in_place else self._copy(source, facts, progress, cancel)
        try:
            return self._add(facts, destination, in_place=in_place)
        except Exception:
            if not in_place:
                destination.unlink(missing_ok=True)
            raise

    def register_download(self, path: Path) -> ModelRecord:
        """A finished download in the models folder: Hearth's own copy (removing it may delete the file)."""
        path = path.resolve()
        existing = self.store.find_model_by_path(str(path))
        return existing or self._add(read_facts(path), path, in_place=False)

    def _add(self, facts: ModelFacts, path: Path, *, in_place: bool) -> ModelRecord:
        return self.store.add_model(
            name=self._name_of(facts, path), path=str(path), in_place=in_place, file_size=facts.file_size,
            architecture=facts.architecture, parameter_count=facts.parameter_count,
            quantization=facts.quantization, context_length=facts.context_length,
            has_chat_template=facts.has_chat_template, facts=facts.to_dict())

    def _copy(self, source: Path, facts: ModelFacts, progress: Progress | None,
              cancel: threading.Event | None) -> Path:
        self.models_dir.mkdir(parents=True, exist_ok=True)
        destination = self._free_name(source.name)
        free = shutil.disk_usage(self.models_dir).free
        if free < facts.file_size:
            raise LibraryError(
                f"Not enough free disk space to copy “{source.name}”: it needs {format_bytes(facts.file_size)} and "
                f"{format_bytes(free)} is free. Free some space, or add the model without copying it.")
        partial = destination.with_name(destination.name + ".part")
        done = 0
        try:
            with source.open("rb") as reader, partial.open("wb") as writer:
                while chunk := reader.read(CHUNK):
                    if cancel is not None and cancel.is_set():
                        raise ImportCancelled()
                    writer.write(chunk)
                    done += len(chunk)
                    if progress:
                        progress(done, facts.file_size)
            partial.replace(destination)
        except OSError as error:
            partial.unlink(missing_ok=True)
            raise LibraryError(f"Could not copy “{source.name}” into the models folder: {error.strerror}.") \
                from error
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        return destination

    def _same_bytes(self, source: Path, size: int) -> ModelRecord | None:
        """A library model whose file holds exactly ``source``'s bytes (compared only where the sizes match, and
        only as far as the first difference), so importing a file twice never makes a second full copy."""
        for record in self.models():
            path = Path(record.path)
            try:
                if record.file_size == size and path.is_file() and filecmp.cmp(path, source, shallow=False):
                    return record
            except OSError:
                continue
        return None

    def _free_name(self, name: str) -> Path:
        candidate = self.models_dir / name
        stem, suffix = Path(name).stem, Path(name).suffix
        number = 2
        while candidate.exists():
            candidate = self.models_dir / f"{stem}-{number}{suffix}"
            number += 1
        return candidate

    def remove(self, model_id: int, *, delete_file: bool = False) -> None:
        """Forget a model; its file is deleted only if asked and only if Hearth made the copy."""
        record = self.store.get_model(model_id)
        if record is None:
            raise ModelNotFoundError("That model is no longer in the library.")
        self.store.remove_model(model_id)
        if delete_file and not record.in_place:
            Path(record.path).unlink(missing_ok=True)

    def default(self, last_model_id: int | None) -> ModelRef:
        """The model to use when none is named: the one the window last loaded, else the only one there is."""
        models = self.models()
        chosen = next((r for r in models if r.id == last_model_id), None) or (models[0] if len(models) == 1 else None)
        if chosen is None:
            raise ModelNotFoundError(
                "Name a model: the library has none yet." if not models else
                f"Name a model: the library has {len(models)} (see `hearth models list`).")
        return ModelRef(Path(chosen.path), chosen.name, chosen)

    def resolve(self, ref: str) -> ModelRef:
        """Find a model by library id, by name (exact, then a unique prefix), or by a path to a .gguf file."""
        models = self.models()
        if ref.isdigit():
            for record in models:
                if record.id == int(ref):
                    return ModelRef(Path(record.path), record.name, record)
        lowered = ref.casefold()
        exact = [r for r in models if lowered in (r.name.casefold(), r.default_name.casefold())]
        prefix = [r for r in models if r.name.casefold().startswith(lowered)]
        for matches in (exact, prefix):
            if len(matches) == 1:
                return ModelRef(Path(matches[0].path), matches[0].name, matches[0])
        path = Path(ref).expanduser()
        if path.is_file():
            resolved = path.resolve()
            known = self.store.find_model_by_path(str(resolved))
            if known is not None:
                return ModelRef(resolved, known.name, known)
            return ModelRef(resolved, self._name_of(read_facts(resolved), resolved))
        if len(prefix) > 1:
            names = ", ".join(r.name for r in prefix)
            raise ModelNotFoundError(f"“{ref}” matches several models ({names}). Use the id or the full name.")
        raise ModelNotFoundError(
            f"No model called “{ref}” in the library, and no such file. See `hearth models list`.")




# --- names ----------------------------------------------------------------------------------------------------

# A quantization at the end of a file name ("-Q4_K_M", ".Q4_1", "-f16", "-IQ4_XS", unsloth's "-UD-Q4_K_XL").
_QUANT_SUFFIX = re.compile(r"[-_. ](?:ud[-_])?(?:i?q\d(?:_[a-z0-9]+)*|tq\d_\d|bf16|fp?16|fp?32|mxfp4)$", re.I)
_SIZE = re.compile(r"^(?:\d+x)?\d+(?:\.\d+)?[kmbt]$|^a\d+(?:\.\d+)?b$", re.I)  # "135m", "8x7b", "a3b" (active)
_VERSION = re.compile(r"^v\d", re.I)
_ACRONYMS = {"it": "IT", "gpt": "GPT", "moe": "MoE", "hf": "HF", "qat": "QAT", "ud": "UD"}
_NOISE = frozenset({"gguf", "ggml"})
# File names that say nothing about the model: its header's name is the better one then.
_GENERIC = frozenset({"", "model", "ggml model", "ggml", "gguf", "consolidated", "converted", "merged", "output",
                      "out", "unsloth", "pytorch model", "model f16", "model f32"})


@dataclass(frozen=True)
class CatalogNames:
    """The catalog's names, found by a file's exact name (its recommended file) or by the model a file name or a
    header names once its quantization is set aside ("smollm2-360m-instruct-q4_k_m" is SmolLM2 360M Instruct)."""

    by_key: dict[str, str] = field(default_factory=dict)
    files: tuple[tuple[Callable[[str], bool], str], ...] = ()

    @classmethod
    def of(cls, catalog: Catalog) -> CatalogNames:
        keys: dict[str, str] = {}
        files: list[tuple[Callable[[str], bool], str]] = []
        for entry in catalog.entries(kind=None):
            files.append((entry.matches_file, entry.name))
            repo = entry.repo.split("/")[-1]
            for text in (entry.name, re.sub(r"[-_]gguf$", "", repo, flags=re.I),
                         _model_part(Path((entry.file_pattern or "").replace("*", "")).stem)):
                if _key(text):
                    keys.setdefault(_key(text), entry.name)
        return cls(keys, tuple(files))

    def name_of(self, filename: str, candidates: Iterable[str]) -> str | None:
        for matches, name in self.files:
            if matches(filename):
                return name
        return next((self.by_key[k] for k in map(_key, candidates) if k and k in self.by_key), None)


def display_name(path: Path, *, quantization: str | None, header_name: str, architecture: str,
                 catalog: CatalogNames | None = None) -> str:
    """The name people recognise: the catalog's name for the model, else its file name cleaned, with the
    quantization after a dot ("SmolLM2 135M Instruct · Q4_1"), so two quantizations of one model tell apart.

    The file name comes before the header's ``general.name``, which is often a training run's name ("Smollm2 135M
    8k Lc100K Mix1 Ep2") and sometimes only the architecture ("llama"); the header's name is used when the file's
    says nothing ("model-q4_0.gguf"). Written here rather than taken from a library: the rules are about GGUF
    publishers' file names, which no naming library knows.
    """
    filename = path.name
    stem = path.stem
    if match := SHARD_NAME.match(filename):
        stem = match.group("prefix")
    from_file = _model_part(stem)
    header = header_name.strip()
    header_useful = bool(header) and header.casefold() != architecture.casefold()
    candidates = [from_file, *([header] if header_useful else [])]
    name = catalog.name_of(filename, candidates) if catalog is not None else None
    if name is None:
        if _words(from_file).casefold() in _GENERIC:
            name = _cleaned(header if header_useful else stem)
        else:
            name = _cleaned(from_file)
    quant = (quantization or "").strip()
    if quant and quant.casefold() != "unknown" and quant.casefold() not in name.casefold().split():
        name = f"{name} · {quant}"
    return name


def _model_part(stem: str) -> str:
    """A file name's stem without its quantization ("Llama-3.2-1B-Instruct-Q4_K_M" -> "Llama-3.2-1B-Instruct")."""
    return _QUANT_SUFFIX.sub("", stem.strip())


def _key(text: str) -> str:
    return re.sub(r"[^0-9a-z]", "", text.casefold())


def _words(text: str) -> str:
    return " ".join(word for word in re.split(r"[-_\s]+", text) if word)


def _cleaned(text: str) -> str:
    """"qwen2.5-0.5b-instruct" -> "Qwen2.5 0.5B Instruct": separators become spaces, sizes take capitals, lower-case
    words a capital first letter; a word already in mixed case ("SmolLM2") is the publisher's and stays."""
    words = []
    for word in re.split(r"[-_\s]+", text.strip()):
        if not word or word.casefold() in _NOISE:
            continue
        if _SIZE.match(word):
            word = word[:-1] + word[-1].upper() if not word[0].isalpha() else word.upper()
        elif word.casefold() in _ACRONYMS:
            word = _ACRONYMS[word.casefold()]
        elif word.islower() and not _VERSION.match(word):
            word = word[0].upper() + word[1:]
        words.append(word)
    return " ".join(words) or text.strip()
