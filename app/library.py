"""The models this person has: imported into the models folder, or registered where they are.

A model enters the library only after its header has been read and checked (``read_facts``), so the list
always shows real facts and a broken file never reaches llama.cpp from here. Copies are written to a
``.part`` file and renamed at the end, so an interrupted import never leaves a half model in the folder.
"""

from __future__ import annotations

import filecmp
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from app.errors import LibraryError, ModelNotFoundError
from app.gguf.facts import ModelFacts, read_facts
from app.history import HistoryStore, ModelRecord
from app.words import format_bytes

CHUNK = 8 * 1024 * 1024
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class ModelRef:
    """What a command names: a library model, or a .gguf path used without importing it."""

    path: Path
    name: str
    record: ModelRecord | None = None


class ImportCancelled(LibraryError):
    def __init__(self) -> None:
        super().__init__("The import was cancelled.")


class Library:
    def __init__(self, store: HistoryStore, models_dir: Path) -> None:
        self.store = store
        self.models_dir = models_dir

    def models(self) -> list[ModelRecord]:
        return self.store.list_models()

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
            name=_display_name(facts, path), path=str(path), in_place=in_place, file_size=facts.file_size,
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
        exact = [r for r in models if r.name.casefold() == lowered]
        prefix = [r for r in models if r.name.casefold().startswith(lowered)]
        for matches in (exact, prefix):
            if len(matches) == 1:
                return ModelRef(Path(matches[0].path), matches[0].name, matches[0])
        path = Path(ref).expanduser()
        if path.is_file():
            resolved = path.resolve()
            known = self.store.find_model_by_path(str(resolved))
            return ModelRef(resolved, known.name if known else resolved.stem, known)
        if len(prefix) > 1:
            names = ", ".join(r.name for r in prefix)
            raise ModelNotFoundError(f"“{ref}” matches several models ({names}). Use the id or the full name.")
        raise ModelNotFoundError(
            f"No model called “{ref}” in the library, and no such file. See `hearth models list`.")



def _display_name(facts: ModelFacts, source: Path) -> str:
    """The model's own name, unless it only repeats the architecture (as converted llama2.c models do)."""
    name = facts.name.strip()
    return name if name and name.casefold() != facts.architecture.casefold() else source.stem
