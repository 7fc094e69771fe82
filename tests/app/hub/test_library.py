"""Importing, listing, resolving and removing models, with real files and a real database."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.errors import InvalidModelError, LibraryError, ModelNotFoundError
from app.history import HistoryStore, open_database
from app.library import CatalogNames, ImportCancelled, Library, display_name

from tests.helpers.gguf_fixtures import not_gguf, truncated, with_chat_template


@pytest.fixture
def library(tmp_path: Path) -> Iterator[Library]:
    db = open_database(tmp_path / "home" / "history.sqlite3")
    yield Library(HistoryStore(db), tmp_path / "home" / "models")
    db.close()


def test_import_copies_the_file_and_records_its_facts(library: Library, test_model_path: Path) -> None:
    progress: list[tuple[int, int]] = []
    record = library.import_model(test_model_path, progress=lambda done, total: progress.append((done, total)))
    copy = Path(record.path)
    assert copy.parent == library.models_dir and copy.read_bytes() == test_model_path.read_bytes()
    assert not list(library.models_dir.glob("*.part"))
    assert progress[-1] == (test_model_path.stat().st_size, test_model_path.stat().st_size)
    assert (record.name, record.architecture, record.quantization) == ("stories260K · F32", "llama", "F32")
    assert record.parameter_count == 292_800 and record.context_length == 2048
    assert record.file_size == test_model_path.stat().st_size
    assert not record.has_chat_template and not record.in_place
    assert record.is_base_model  # no template, and nothing in its names says it was tuned to chat
    assert library.models() == [record]


def test_import_in_place_registers_without_copying(library: Library, test_model_path: Path, tmp_path: Path) -> None:
    templated = with_chat_template(test_model_path, tmp_path)
    record = library.import_model(templated, copy=False)
    assert record.in_place and Path(record.path) == templated.resolve() and record.has_chat_template
    assert not library.models_dir.exists() or not any(library.models_dir.iterdir())
    with pytest.raises(LibraryError, match="already in your library"):
        library.import_model(templated, copy=False)


@pytest.mark.parametrize("make", [lambda src, d: not_gguf(d), truncated], ids=["not-gguf", "truncated"])
def test_invalid_files_are_refused(library: Library, test_model_path: Path, tmp_path: Path, make: object) -> None:
    bad = make(test_model_path, tmp_path)  # type: ignore[operator]
    with pytest.raises(InvalidModelError):
        library.import_model(bad)
    assert library.models() == []
    assert not library.models_dir.exists() or not any(library.models_dir.iterdir())


def test_cancelled_import_leaves_nothing_behind(library: Library, test_model_path: Path) -> None:
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(ImportCancelled):
        library.import_model(test_model_path, cancel=cancel)
    assert library.models() == [] and not any(library.models_dir.iterdir())


def test_a_second_copy_gets_its_own_name(library: Library, test_model_path: Path, tmp_path: Path) -> None:
    first = library.import_model(test_model_path)
    other = tmp_path / "elsewhere"
    other.mkdir()
    with_chat_template(test_model_path, tmp_path).rename(other / test_model_path.name)  # same name, other bytes
    second = library.import_model(other / test_model_path.name)
    assert Path(first.path).name == "stories260K.gguf" and Path(second.path).name == "stories260K-2.gguf"
    assert Path(first.path).read_bytes() == test_model_path.read_bytes()


def test_importing_the_same_file_twice_makes_no_second_copy(library: Library, test_model_path: Path,
                                                            tmp_path: Path) -> None:
    first = library.import_model(test_model_path)
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / "renamed.gguf").write_bytes(test_model_path.read_bytes())
    for again in (test_model_path, other / "renamed.gguf"):  # the same file, and the same bytes under another name
        with pytest.raises(LibraryError, match=f"already in your library, as “{first.name}”"):
            library.import_model(again)
    assert library.models() == [first]
    assert [p.name for p in library.models_dir.iterdir()] == ["stories260K.gguf"]


def test_resolve_by_id_name_prefix_and_path(library: Library, test_model_path: Path, tmp_path: Path) -> None:
    record = library.import_model(test_model_path)
    assert library.resolve(str(record.id)).record == record
    assert library.resolve("STORIES260K").record == record
    assert library.resolve("stor").record == record
    outside = library.resolve(str(test_model_path))
    assert outside.path == test_model_path.resolve() and outside.record is None
    with pytest.raises(ModelNotFoundError, match="No model called"):
        library.resolve("mistral")


def test_remove_deletes_only_copies_it_made(library: Library, test_model_path: Path, tmp_path: Path) -> None:
    copied = library.import_model(test_model_path)
    in_place = library.import_model(with_chat_template(test_model_path, tmp_path), copy=False)
    library.remove(copied.id, delete_file=True)
    library.remove(in_place.id, delete_file=True)
    assert not Path(copied.path).exists() and Path(in_place.path).exists()
    assert library.models() == []
    with pytest.raises(ModelNotFoundError):
        library.remove(copied.id)


def test_the_default_model_is_the_last_loaded_else_the_only_one(library: Library, test_model_path: Path,
                                                                 tmp_path: Path) -> None:
    from app.errors import ModelNotFoundError

    with pytest.raises(ModelNotFoundError, match="none yet"):
        library.default(None)
    first = library.import_model(test_model_path, copy=True)
    assert library.default(None).name == first.name and library.default(999).name == first.name
    second = library.import_model(with_chat_template(test_model_path, tmp_path), copy=True)
    with pytest.raises(ModelNotFoundError, match="has 2"):
        library.default(None)
    assert library.default(second.id).name == second.name


# names


@pytest.mark.parametrize(("filename", "quant", "header", "expected"), [
    ("SmolLM2-135M-Instruct.Q4_1.gguf", "Q4_1", "Smollm2 135M 8k Lc100K Mix1 Ep2", "SmolLM2 135M Instruct · Q4_1"),
    ("qwen2.5-0.5b-instruct-q8_0.gguf", "Q8_0", "qwen2.5-0.5b-instruct", "Qwen2.5 0.5B Instruct · Q8_0"),
    # another quantization of a catalog model: the catalog's name still
    ("smollm2-360m-instruct-q4_k_m.gguf", "Q4_K_M", "", "SmolLM2 360M Instruct · Q4_K_M"),
    ("Meta-Llama-3.1-8B-Instruct-Q5_K_M.gguf", "Q5_K_M", "", "Llama 3.1 8B Instruct · Q5_K_M"),
    ("qwen2.5-7b-instruct-q4_k_m-00001-of-00002.gguf", "Q4_K_M", "", "Qwen2.5 7B Instruct · Q4_K_M"),
    ("gemma-3-270m-q4_k_m.gguf", "Q4_K_M", "Gemma 3 270m", "Gemma 3 270M · Q4_K_M"),
    ("mixtral-8x7b-instruct-v0.1.Q4_K_M.gguf", "Q4_K_M", "", "Mixtral 8x7B Instruct v0.1 · Q4_K_M"),
    ("stories260K.gguf", "F32", "llama", "stories260K · F32"),  # the header names only the architecture
    ("model-q4_0.gguf", "Q4_0", "Gemma 3 270m", "Gemma 3 270M · Q4_0"),  # the file name says nothing
    ("ggml-model-Q4_K_M.gguf", "Q4_K_M", "qwen2.5-0.5b-instruct", "Qwen2.5 0.5B Instruct · Q4_K_M"),
])
def test_models_are_named_as_people_know_them(filename: str, quant: str, header: str, expected: str) -> None:
    from app.hub.catalog import load_builtin

    named = display_name(Path("/models") / filename, quantization=quant, header_name=header, architecture="llama",
                         catalog=CatalogNames.of(load_builtin()))
    assert named == expected


def test_a_real_model_is_named_by_its_file_not_its_training_run(library: Library, real_model_path: Path) -> None:
    record = library.import_model(real_model_path, copy=False)
    assert record.facts["name"] == "Smollm2 135M 8k Lc100K Mix1 Ep2" and not record.is_base_model
    assert record.name == "SmolLM2 135M Instruct · Q4_1"
    assert library.resolve("smollm2 135m").record == record


def test_names_an_older_hearth_gave_are_given_again_with_the_history(library: Library,
                                                                    real_model_path: Path) -> None:
    store = library.store
    old = store.add_model(name="Smollm2 135M 8k Lc100K Mix1 Ep2", path=str(real_model_path.resolve()),
                          in_place=True, file_size=1, architecture="llama", quantization="Q4_1",
                          facts={"name": "Smollm2 135M 8k Lc100K Mix1 Ep2"})
    chat = store.create_conversation("Chat", {}, model_id=old.id, model_name=old.name)
    [record] = library.models()
    assert record.name == "SmolLM2 135M Instruct · Q4_1"
    assert store.get_conversation(chat.id).model_name == "SmolLM2 135M Instruct · Q4_1"


def test_a_rename_is_kept_in_the_library_not_in_the_file(tmp_path: Path, test_model_path: Path) -> None:
    home = tmp_path / "home"
    db = open_database(home / "history.sqlite3")
    library = Library(HistoryStore(db), home / "models")
    record = library.import_model(test_model_path)
    file = Path(record.path)
    renamed = library.rename(record.id, "  Bedtime   stories ")
    assert renamed.name == "Bedtime stories" and library.resolve("bedtime").record == renamed
    with pytest.raises(LibraryError, match="too long"):
        library.rename(record.id, "x" * 500)
    db.close()

    db = open_database(home / "history.sqlite3")  # a restart
    library = Library(HistoryStore(db), home / "models")
    [again] = library.models()
    assert again.name == "Bedtime stories" and again.path == str(file) and file.is_file()
    assert [p.name for p in library.models_dir.iterdir()] == [file.name]
    assert library.resolve("stories260K · F32").record == again  # Hearth's own name still finds it
    assert library.rename(record.id, "").name == "stories260K · F32"
    library.remove(record.id)
    with pytest.raises(ModelNotFoundError):
        library.rename(record.id, "Gone")
    db.close()
