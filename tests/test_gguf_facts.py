"""Header facts of real and hand-made GGUF files, and plain-words errors for broken ones."""

from __future__ import annotations

import dataclasses
import json
import os
import random
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from gguf import GGUFEndian, GGUFReader, GGUFWriter, LlamaFileType

from app.errors import InvalidModelError
from app.gguf_facts import ModelFacts, read_facts
from app.units import format_count

from gguf_fixtures import (
    CHATML_TEMPLATE,
    absurd_header,
    bad_magic,
    corrupted_tensor_data,
    empty,
    hostile_array,
    not_gguf,
    odd_metadata,
    sparse_huge,
    truncated,
    with_chat_template,
    wrong_version,
)

STORIES_SIZE = 1_185_376


def _stories() -> Path:
    candidates = [
        os.environ.get("HEARTH_TEST_MODEL"),
        Path(__file__).parent / ".cache" / "stories260K.gguf",
        Path(__file__).parent.parent.parent / "shared/models/stories260K.gguf",
    ]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    pytest.skip("stories260K.gguf not found; set HEARTH_TEST_MODEL or run tests/fetch_test_model.py")


def test_stories_facts() -> None:
    path = _stories()
    facts = read_facts(path)
    assert facts.path == path
    assert facts.file_size == path.stat().st_size == STORIES_SIZE
    assert facts.architecture == "llama"
    assert facts.name == "llama"  # what general.name says in this file
    assert facts.gguf_version == 3
    assert facts.context_length == 2048
    assert facts.block_count == 5
    assert facts.embedding_length == 64
    assert facts.head_count == 8
    assert facts.head_count_kv == 4
    assert facts.vocab_size == 512
    assert facts.chat_template is None
    assert not facts.has_chat_template
    assert facts.quantization == "F32"
    assert facts.tensor_types == {"F32": 292_800 * 4}
    assert facts.parameter_count == 292_800
    assert facts.parameter_label == "293K"


def test_chat_template_copy_shows_template(tmp_path: Path) -> None:
    original = read_facts(_stories())
    copy = with_chat_template(_stories(), tmp_path)
    facts = read_facts(copy)
    assert facts.chat_template == CHATML_TEMPLATE
    assert facts.has_chat_template
    same = ("architecture", "name", "parameter_count", "tensor_types", "quantization", "context_length",
            "block_count", "embedding_length", "head_count", "head_count_kv", "vocab_size")
    assert {k: getattr(facts, k) for k in same} == {k: getattr(original, k) for k in same}


def test_chat_template_copy_keeps_every_kv_and_tensor(tmp_path: Path) -> None:
    src = GGUFReader(_stories())
    dst = GGUFReader(with_chat_template(_stories(), tmp_path))
    skip = {"GGUF.kv_count", "tokenizer.chat_template"}
    assert set(dst.fields) - skip == set(src.fields) - skip
    for name, field in src.fields.items():
        if name not in skip:
            assert dst.fields[name].types == field.types, name
            assert dst.fields[name].contents() == field.contents(), name
    assert dst.alignment == src.alignment
    assert [(t.name, t.tensor_type, t.shape.tolist()) for t in dst.tensors] == [
        (t.name, t.tensor_type, t.shape.tolist()) for t in src.tensors]
    assert all((a.data == b.data).all() for a, b in zip(src.tensors, dst.tensors, strict=True))


def test_llama_cpp_loads_and_runs_chat_template_copy(tmp_path: Path) -> None:
    llama_cpp = pytest.importorskip("llama_cpp")
    copy = with_chat_template(_stories(), tmp_path)
    llm = llama_cpp.Llama(model_path=str(copy), n_ctx=256, verbose=False, seed=1)
    try:
        assert llm.metadata["tokenizer.chat_template"] == CHATML_TEMPLATE
        reply = llm.create_chat_completion(
            messages=[{"role": "user", "content": "Once upon a time"}], max_tokens=8, temperature=0.0)
        assert reply["usage"]["completion_tokens"] > 0
    finally:
        llm.close()


def test_odd_metadata_reads_with_gaps(tmp_path: Path) -> None:
    path = odd_metadata(tmp_path)
    facts = read_facts(path)
    assert facts.architecture == "hearthtest"
    assert facts.name == "odd-metadata"
    assert facts.context_length is None
    assert facts.block_count is None
    assert facts.embedding_length is None  # present, but as a string
    assert facts.head_count is None
    assert facts.head_count_kv == 4  # per-layer array: the largest
    assert facts.vocab_size is None
    assert facts.chat_template is None
    assert facts.parameter_count == 32 + 16
    assert facts.tensor_types == {"F32": 128, "F16": 32}
    assert facts.quantization == "F32"
    assert facts.parameter_label == "48"


@pytest.mark.parametrize("make", [
    lambda d: _stories(), lambda d: with_chat_template(_stories(), d), odd_metadata,
])
def test_facts_agree_with_gguf_reader(tmp_path: Path, make: Callable[[Path], Path]) -> None:
    path = make(tmp_path)
    facts = read_facts(path)
    reader = GGUFReader(path)
    by_type: dict[str, int] = {}
    for tensor in reader.tensors:
        by_type[tensor.tensor_type.name] = by_type.get(tensor.tensor_type.name, 0) + int(tensor.n_bytes)
    assert facts.tensor_types == by_type
    assert facts.parameter_count == sum(int(t.n_elements) for t in reader.tensors)
    assert facts.architecture == reader.fields["general.architecture"].contents()
    tokens = reader.get_field("tokenizer.ggml.tokens")
    assert facts.vocab_size == (len(tokens.data) if tokens else None)
    template = reader.get_field("tokenizer.chat_template")
    assert facts.chat_template == (template.contents() if template else None)
    context = reader.get_field(f"{facts.architecture}.context_length")
    assert facts.context_length == (context.contents() if context else None)


def test_garbage_weights_are_not_our_problem(tmp_path: Path) -> None:
    facts = read_facts(corrupted_tensor_data(_stories(), tmp_path))
    assert facts.parameter_count == 292_800
    assert facts.file_size == STORIES_SIZE


@pytest.mark.skipif(sys.platform == "win32", reason="needs a sparse file")
def test_facts_of_a_huge_file_do_not_read_weights(tmp_path: Path) -> None:
    path = sparse_huge(tmp_path)
    started = time.perf_counter()
    facts = read_facts(path)
    assert time.perf_counter() - started < 1.0
    assert facts.parameter_count == 1024**3
    assert facts.parameter_label == "1.1B"
    assert facts.context_length == 4096


def _bad_files(tmp_path: Path) -> dict[str, Callable[[], Path]]:
    return {
        "truncated": lambda: truncated(_stories(), tmp_path),
        "cut inside header": lambda: truncated(_stories(), tmp_path, keep_fraction=0.005),
        "bad magic": lambda: bad_magic(tmp_path),
        "absurd header": lambda: absurd_header(tmp_path),
        "hostile array": lambda: hostile_array(tmp_path),
        "empty": lambda: empty(tmp_path),
        "not gguf": lambda: not_gguf(tmp_path),
        "version 1": lambda: wrong_version(tmp_path),
        "version 99": lambda: wrong_version(tmp_path, 99),
        "missing": lambda: tmp_path / "gone.gguf",
        "folder": lambda: tmp_path,
    }


BAD = list(_bad_files(Path(".")))
JARGON = ("Traceback", "numpy", "ndarray", "reshape", "dtype", "uint", "Errno", "struct", "index", "Error")


@pytest.mark.parametrize("kind", BAD)
def test_bad_files_raise_plain_words(tmp_path: Path, kind: str) -> None:
    path = _bad_files(tmp_path)[kind]()
    with pytest.raises(InvalidModelError) as caught:
        read_facts(path)
    message = str(caught.value)
    assert f"“{path.name}”" in message
    assert message.endswith(".")
    assert not any(word in message for word in JARGON), message
    assert caught.value.__context__ is None  # no parser traceback (and memory map) kept alive


@pytest.mark.parametrize(("kind", "words"), [
    ("truncated", "is incomplete: it is 592.7 KB but its header describes 1.2 MB of weights"),
    ("cut inside header", "is incomplete or corrupted"),
    ("bad magic", "is not a GGUF model file"),
    ("not gguf", "is not a GGUF model file"),
    ("absurd header", "has an unreasonable header (2^40 tensors) and looks corrupted"),
    ("empty", "is empty"),
    ("version 1", "uses GGUF version 1, which is too old"),
    ("version 99", "uses GGUF version 99, which is newer"),
    ("missing", "could not be found"),
    ("folder", "is a folder"),
])
def test_bad_file_messages_say_what_is_wrong(tmp_path: Path, kind: str, words: str) -> None:
    with pytest.raises(InvalidModelError, match=re.escape(words)):
        read_facts(_bad_files(tmp_path)[kind]())


def test_absurd_header_is_refused_before_parsing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import app.gguf_facts as module

    def explode(*_args: object) -> None:
        raise AssertionError("the header parser must not see this file")

    monkeypatch.setattr(module, "_HeaderParser", explode)
    with pytest.raises(InvalidModelError, match="unreasonable"):
        read_facts(absurd_header(tmp_path))


def test_round_trip_through_json(tmp_path: Path) -> None:
    facts = read_facts(with_chat_template(_stories(), tmp_path))
    data = json.loads(json.dumps(facts.to_dict()))
    assert "chat_template" not in data
    assert data["has_chat_template"] is True
    assert data["path"] == str(facts.path)
    restored = ModelFacts.from_dict(data)
    assert restored == dataclasses.replace(facts, chat_template=None)
    assert restored.has_chat_template
    assert restored.to_dict() == facts.to_dict()
    assert hash(restored) == hash(dataclasses.replace(facts, chat_template=None))


def test_round_trip_without_template() -> None:
    facts = read_facts(_stories())
    assert ModelFacts.from_dict(json.loads(json.dumps(facts.to_dict()))) == facts


@pytest.mark.parametrize("damage", [
    lambda d: d.pop("architecture"),
    lambda d: d.update(file_size="big"),
    lambda d: d.update(context_length=True),
    lambda d: d.update(tensor_types=[1, 2]),
])
def test_from_dict_rejects_foreign_data(damage: Callable[[dict[str, object]], object]) -> None:
    data = read_facts(_stories()).to_dict()
    damage(data)
    with pytest.raises(ValueError, match="not a ModelFacts dict"):
        ModelFacts.from_dict(data)


@pytest.mark.parametrize(("count", "label"), [
    (0, "0"), (999, "999"), (260_000, "260K"), (292_800, "293K"), (134_515_008, "135M"),
    (999_600, "1M"), (1_235_814_400, "1.2B"), (7_615_616_512, "7.6B"), (70_553_706_496, "71B"),
    (1_500_000_000_000, "1.5T"),
])
def test_parameter_labels(count: int, label: str) -> None:
    assert format_count(count) == label


def _write(path: Path, general_type: str | None = None, arch: str = "hearthtest", *, tensors: bool = True,
           file_type: int | None = None) -> Path:
    writer = GGUFWriter(path, arch)
    if general_type:
        writer.add_type(general_type)
    if file_type is not None:
        writer.add_file_type(file_type)
    if tensors:
        writer.add_tensor("w", np.zeros((2, 4), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.mark.parametrize(("make", "words"), [
    (lambda d: _write(d / "vocab.gguf", tensors=False), "contains no model weights"),
    (lambda d: _write(d / "lora.gguf", general_type="adapter"), "is a LoRA adapter, not a model"),
    (lambda d: _write(d / "mmproj.gguf", arch="clip"), "is a vision projector"),
])
def test_gguf_files_that_are_not_models(tmp_path: Path, make: Callable[[Path], Path], words: str) -> None:
    path = make(tmp_path)
    with pytest.raises(InvalidModelError, match=re.escape(f"“{path.name}” {words}")):
        read_facts(path)


@pytest.mark.parametrize(("content", "words"), [
    (b"version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 1185376\n", "Git LFS pointer"),
    (b"<!DOCTYPE html><html><body>Not found</body></html>", "web page"),
    (b"tjgg" + bytes(60), "old GGML format"),
    (b"\x40\x00\x00\x00\x00\x00\x00\x00{\"__metadata__\": {}}", "safetensors"),
])
def test_common_wrong_downloads_get_a_hint(tmp_path: Path, content: bytes, words: str) -> None:
    path = tmp_path / "model.gguf"
    path.write_bytes(content)
    with pytest.raises(InvalidModelError, match=f"is not a GGUF model file. .*{words}"):
        read_facts(path)


def test_unknown_tensor_type_is_named(tmp_path: Path) -> None:
    path = _write(tmp_path / "future.gguf")
    info = GGUFReader(path).tensors[0].field
    type_offset = info.offset + sum(int(part.nbytes) for part in info.parts[:4])
    data = bytearray(path.read_bytes())
    data[type_offset:type_offset + 4] = (999).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    with pytest.raises(InvalidModelError, match=r"“future.gguf” uses a kind of weights \(type 999\)"):
        read_facts(path)


def test_file_type_gives_the_quantization_label(tmp_path: Path) -> None:
    path = _write(tmp_path / "labelled.gguf", arch="llama", file_type=LlamaFileType.MOSTLY_Q4_K_M)
    assert read_facts(path).quantization == "Q4_K_M"


def test_random_header_damage_gives_facts_or_plain_words(tmp_path: Path) -> None:
    original = _stories().read_bytes()
    header_end = int(GGUFReader(_stories()).data_offset)
    rng = random.Random(2024)
    path = tmp_path / "mutant.gguf"
    for trial in range(250):
        data = bytearray(original)
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(4, header_end)] = rng.randrange(256)
        if trial % 5 == 0:
            data = data[: rng.randrange(24, header_end)]
        path.write_bytes(bytes(data))
        try:
            read_facts(path)
        except InvalidModelError as error:
            assert "“mutant.gguf”" in str(error)


@pytest.mark.skipif(sys.byteorder == "big", reason="tests the opposite byte order")
def test_big_endian_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "be.gguf"
    writer = GGUFWriter(path, "llama", endianess=GGUFEndian.BIG)
    writer.add_tensor("w", np.zeros((2, 4), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    expected = re.escape("“be.gguf” was converted for computers with the opposite byte order")
    with pytest.raises(InvalidModelError, match=expected):
        read_facts(path)
