"""Header facts of real and hand-made GGUF files, and plain-words errors for broken ones."""

from __future__ import annotations

import dataclasses
import json
import os
import random
import re
import struct
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from gguf import GGUFEndian, GGUFReader, GGUFValueType, GGUFWriter, LlamaFileType

from app.errors import InvalidModelError
from app.gguf.facts import ModelFacts, TensorInfo, read_facts, read_facts_from_bytes, read_facts_from_parts
from app.gguf.header import HeaderIncomplete, HeaderScan, scan_header, split_part_name
from app.words import format_count

from tests.helpers.fetch_test_model import CACHE, SHARED
from tests.helpers.gguf_fixtures import (
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
    candidates = [os.environ.get("HEARTH_TEST_MODEL"), CACHE, SHARED]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    pytest.skip("stories260K.gguf not found; set HEARTH_TEST_MODEL or run tests/helpers/fetch_test_model.py")


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


def _reading_so_far() -> tuple[int, int]:
    """Page faults of this thread (of the process where a thread's own are not counted) and bytes this process
    has read with read calls (0 where the system does not say): a read through a memory map shows in the
    first, a plain read in the second."""
    import resource

    import psutil

    usage = resource.getrusage(getattr(resource, "RUSAGE_THREAD", resource.RUSAGE_SELF))
    process = psutil.Process()
    read_chars = getattr(process.io_counters(), "read_chars", 0) if hasattr(process, "io_counters") else 0
    return usage.ru_minflt + usage.ru_majflt, read_chars


@pytest.mark.skipif(sys.platform == "win32", reason="needs a sparse file and getrusage")
def test_facts_of_a_huge_file_do_not_read_weights(tmp_path: Path) -> None:
    """Whatever the file's size, only its header is read: through the memory map, every page touched is a page
    fault (reading 4 GiB of weights takes thousands, the header a handful), and read calls are counted in bytes."""
    path = sparse_huge(tmp_path)  # a header of a few KB, then 4 GiB of weights that are a hole in the file
    read_facts(path)  # once first: whatever the first call imports or allocates is not counted
    faults, read = _reading_so_far()
    facts = read_facts(path)
    faults, read = (now - before for now, before in zip(_reading_so_far(), (faults, read), strict=True))
    assert faults < 64, f"reading the facts took {faults} page faults: it read into the weights"
    assert read < 1024**2, f"reading the facts read {read:,} bytes: it read into the weights"
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
    import app.gguf.header as module

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


# --- facts for the memory forecast ------------------------------------------------------------------------


def _llama(path: Path, *, layers: int = 3, n_embd: int = 16, heads: int = 4, kv_heads: int | list[int] = 2,
           output: bool = True, split_max_tensors: int = 0,
           extra: Callable[[GGUFWriter], object] | None = None) -> Path:
    """A small llama-shaped model; ``extra`` adds or overrides metadata before the file is written."""
    writer = GGUFWriter(path, "llama", split_max_tensors=split_max_tensors)
    writer.add_name("Tiny llama")
    writer.add_context_length(256)
    writer.add_block_count(layers)
    writer.add_embedding_length(n_embd)
    writer.add_feed_forward_length(32)
    writer.add_head_count(heads)
    writer.add_head_count_kv(kv_heads)
    writer.add_rope_dimension_count(n_embd // heads)
    writer.add_token_list([f"t{i}" for i in range(40)])
    if extra is not None:
        extra(writer)
    kv_width = (kv_heads if isinstance(kv_heads, int) else max(kv_heads)) * (n_embd // heads)
    writer.add_tensor("token_embd.weight", np.ones((40, n_embd), dtype=np.float16))
    writer.add_tensor("rope_freqs.weight", np.ones(n_embd // heads // 2, dtype=np.float32))
    for il in range(layers):
        writer.add_tensor(f"blk.{il}.attn_norm.weight", np.ones(n_embd, dtype=np.float32))
        writer.add_tensor(f"blk.{il}.attn_q.weight", np.ones((n_embd, n_embd), dtype=np.float16))
        writer.add_tensor(f"blk.{il}.attn_k.weight", np.ones((kv_width, n_embd), dtype=np.float16))
        writer.add_tensor(f"blk.{il}.ffn_up.weight", np.ones((32, n_embd), dtype=np.float32))
    writer.add_tensor("output_norm.weight", np.ones(n_embd, dtype=np.float32))
    if output:
        writer.add_tensor("output.weight", np.ones((40, n_embd), dtype=np.float16))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def _total_tensor_bytes(facts: ModelFacts) -> int:
    return sum(facts.tensor_types.values())


def test_stories_forecast_facts() -> None:
    path = _stories()
    facts = read_facts(path)
    assert facts.key_length == facts.value_length == 8  # 64 / 8 heads
    assert facts.head_count_kv_per_layer is None
    assert facts.feed_forward_length == 172
    assert facts.rope_dimension_count == 8
    assert (facts.sliding_window, facts.sliding_window_pattern, facts.sliding_window_period) == (None, None, None)
    assert (facts.expert_count, facts.expert_used_count, facts.kv_lora_rank) == (None, None, None)
    assert len(facts.layer_bytes) == 5
    assert len(set(facts.layer_bytes)) == 1  # five identical blocks
    assert facts.input_bytes == 64 * 512 * 4  # token_embd
    assert facts.output_bytes == 64 * 512 * 4 + 64 * 4  # output.weight + output_norm
    assert sum(facts.layer_bytes) + facts.input_bytes + facts.output_bytes == _total_tensor_bytes(facts)
    assert not facts.tied_embeddings
    assert facts.shards == (path,)
    assert len(facts.tensors) == 48
    assert facts.tensors[0] == TensorInfo("token_embd.weight", "F32", (64, 512), 131_072, offset=14_176)


def test_tensors_agree_with_gguf_reader(tmp_path: Path) -> None:
    for path in (_stories(), _llama(tmp_path / "tiny.gguf"), odd_metadata(tmp_path)):
        reader = GGUFReader(path)
        facts = read_facts(path)
        assert [(t.name, t.type_name, t.shape, t.n_bytes, t.offset) for t in facts.tensors] == [
            (t.name, t.tensor_type.name, tuple(int(d) for d in t.shape), int(t.n_bytes), int(t.data_offset))
            for t in reader.tensors]
        assert all(t.shard == 0 for t in facts.tensors)


def test_small_llama_layout(tmp_path: Path) -> None:
    facts = read_facts(_llama(tmp_path / "tiny.gguf"))
    per_layer = 16 * 4 + 16 * 16 * 2 + 8 * 16 * 2 + 32 * 16 * 4
    assert facts.layer_bytes == (per_layer,) * 3
    assert facts.input_bytes == 40 * 16 * 2 + 2 * 4  # token_embd and rope_freqs
    assert facts.output_bytes == 40 * 16 * 2 + 16 * 4
    assert not facts.tied_embeddings
    assert facts.vocab_size == 40
    assert (facts.key_length, facts.value_length, facts.head_count_kv) == (4, 4, 2)


def test_tied_embeddings_without_output_matrix(tmp_path: Path) -> None:
    facts = read_facts(_llama(tmp_path / "tied.gguf", output=False))
    assert facts.tied_embeddings
    assert facts.output_bytes == 16 * 4  # output_norm only
    assert sum(facts.layer_bytes) + facts.input_bytes + facts.output_bytes == _total_tensor_bytes(facts)


def test_per_layer_head_counts_and_explicit_head_sizes(tmp_path: Path) -> None:
    def extra(writer: GGUFWriter) -> None:
        writer.add_key_length(24)
        writer.add_value_length(20)

    facts = read_facts(_llama(tmp_path / "varied.gguf", kv_heads=[2, 0, 4], extra=extra))
    assert facts.head_count_kv_per_layer == (2, 0, 4)
    assert facts.head_count_kv == 4
    assert (facts.key_length, facts.value_length) == (24, 20)


def test_sliding_window_mixture_of_experts_and_latent_attention(tmp_path: Path) -> None:
    def extra(writer: GGUFWriter) -> None:
        writer.add_sliding_window(64)
        writer.add_sliding_window_pattern([True, True, False])
        writer.add_expert_count(8)
        writer.add_expert_used_count(2)
        writer.add_kv_lora_rank(12)

    facts = read_facts(_llama(tmp_path / "many.gguf", extra=extra))
    assert facts.sliding_window == 64
    assert facts.sliding_window_pattern == (True, True, False)
    assert facts.sliding_window_period is None
    assert (facts.expert_count, facts.expert_used_count, facts.kv_lora_rank) == (8, 2, 12)


def test_sliding_window_period_is_kept_as_given(tmp_path: Path) -> None:
    def extra(writer: GGUFWriter) -> None:
        writer.add_sliding_window(64)
        writer.add_sliding_window_pattern(3)

    facts = read_facts(_llama(tmp_path / "period.gguf", extra=extra))
    assert facts.sliding_window_pattern is None
    assert facts.sliding_window_period == 3


def test_per_layer_feed_forward_gives_the_largest(tmp_path: Path) -> None:
    def extra(writer: GGUFWriter) -> None:
        key = "llama.feed_forward_length"
        writer.kv_data[0].pop(key)
        writer.add_feed_forward_length([32, 64, 48])

    assert read_facts(_llama(tmp_path / "ffn.gguf", extra=extra)).feed_forward_length == 64


def _with(writer: GGUFWriter, key: str, value: object, kind: GGUFValueType,
          sub_type: GGUFValueType | None = None) -> None:
    writer.kv_data[0].pop(key, None)
    writer.add_key_value(key, value, kind, sub_type=sub_type)


@pytest.mark.parametrize(("key", "value", "kind", "words"), [
    ("llama.block_count", 10**9, GGUFValueType.UINT32, "(1,000,000,000 layers)"),
    ("llama.context_length", 2**40, GGUFValueType.UINT64, "(2^40 tokens of context)"),
    ("llama.embedding_length", 2**31, GGUFValueType.UINT32, "(an embedding size of 2^31)"),
    ("llama.attention.head_count", -8, GGUFValueType.INT32, "(-8 attention heads)"),
    ("llama.expert_count", 10**6, GGUFValueType.UINT32, "(1,000,000 experts)"),
    ("llama.attention.sliding_window", 2**40, GGUFValueType.UINT64, "(a sliding window of 2^40 tokens)"),
])
def test_absurd_facts_are_refused(tmp_path: Path, key: str, value: int, kind: GGUFValueType, words: str) -> None:
    path = _llama(tmp_path / "absurd.gguf", extra=lambda w: _with(w, key, value, kind))
    with pytest.raises(InvalidModelError, match=re.escape(f"“absurd.gguf” has an unreasonable header {words}")):
        read_facts(path)


def test_more_experts_used_than_there_are_is_refused(tmp_path: Path) -> None:
    def extra(writer: GGUFWriter) -> None:
        writer.add_expert_count(4)
        writer.add_expert_used_count(8)

    with pytest.raises(InvalidModelError, match=re.escape("(8 experts used per token)")):
        read_facts(_llama(tmp_path / "experts.gguf", extra=extra))


@pytest.mark.parametrize("extra", [
    # a per-layer array whose length is not the layer count (llama.cpp refuses it)
    lambda w: _with(w, "llama.attention.head_count_kv", [2, 2], GGUFValueType.ARRAY, GGUFValueType.UINT32),
    lambda w: w.add_sliding_window_pattern([True, False, True, False]),
    # blocks 0-2 exist, but the header says there are 2
    lambda w: _with(w, "llama.block_count", 2, GGUFValueType.UINT32),
])
def test_layer_counts_that_disagree_are_damage(tmp_path: Path, extra: Callable[[GGUFWriter], object]) -> None:
    path = _llama(tmp_path / "disagree.gguf", extra=extra)
    with pytest.raises(InvalidModelError, match=re.escape("“disagree.gguf” has a damaged header")):
        read_facts(path)


def test_round_trip_keeps_forecast_facts(tmp_path: Path) -> None:
    def extra(writer: GGUFWriter) -> None:
        writer.add_sliding_window(64)
        writer.add_sliding_window_pattern([True, True, False])
        writer.add_expert_count(8)
        writer.add_expert_used_count(2)

    facts = read_facts(_llama(tmp_path / "rich.gguf", kv_heads=[2, 1, 2], output=False, extra=extra))
    data = json.loads(json.dumps(facts.to_dict()))
    assert "tensors" not in data
    restored = ModelFacts.from_dict(data)
    assert restored == facts
    assert restored.tensors == ()
    assert restored.head_count_kv_per_layer == (2, 1, 2)
    assert restored.sliding_window_pattern == (True, True, False)
    assert restored.layer_bytes == facts.layer_bytes
    assert restored.tied_embeddings
    assert restored.shards == facts.shards


def test_from_dict_refuses_entries_from_before_the_forecast_facts() -> None:
    data = read_facts(_stories()).to_dict()
    del data["layer_bytes"]
    with pytest.raises(ValueError, match="not a ModelFacts dict"):
        ModelFacts.from_dict(data)


# --- split models -------------------------------------------------------------------------------------------


def _split(tmp_path: Path, *, output: bool = True) -> tuple[Path, list[Path]]:
    """The same model whole and in two parts (in another folder, under the same base name)."""
    (tmp_path / "whole").mkdir()
    (tmp_path / "split").mkdir()
    whole = _llama(tmp_path / "whole" / "tiny.gguf", output=output)
    _llama(tmp_path / "split" / "tiny.gguf", output=output, split_max_tensors=9)
    parts = sorted((tmp_path / "split").iterdir())
    return whole, parts


def test_split_model_reads_as_one(tmp_path: Path) -> None:
    whole_path, parts = _split(tmp_path)
    assert [p.name for p in parts] == ["tiny-00001-of-00002.gguf", "tiny-00002-of-00002.gguf"]
    whole = read_facts(whole_path)
    for given in parts:
        facts = read_facts(given)
        assert facts.path == parts[0]
        assert facts.shards == tuple(parts)
        assert facts.file_size == sum(p.stat().st_size for p in parts)
        assert {t.shard for t in facts.tensors} == {0, 1}
        assert [t.name for t in facts.tensors] == [t.name for t in whole.tensors]
        assert [(t.shape, t.n_bytes) for t in facts.tensors] == [(t.shape, t.n_bytes) for t in whole.tensors]
        same = dataclasses.replace(facts, path=whole.path, shards=whole.shards, file_size=whole.file_size)
        assert same == whole


def test_split_model_offsets_point_into_each_part(tmp_path: Path) -> None:
    _, parts = _split(tmp_path)
    facts = read_facts(parts[0])
    readers = [GGUFReader(p) for p in parts]
    expected = {t.name: (i, int(t.data_offset)) for i, r in enumerate(readers) for t in r.tensors}
    assert {t.name: (t.shard, t.offset) for t in facts.tensors} == expected


@pytest.mark.parametrize(("given", "missing"), [(0, 1), (1, 0)])
def test_missing_part_is_named(tmp_path: Path, given: int, missing: int) -> None:
    _, parts = _split(tmp_path)
    parts[missing].unlink()
    expected = (f"“{parts[given].name}” is part {given + 1} of 2, but part {missing + 1} "
                f"({parts[missing].name}) is not in the same folder.")
    with pytest.raises(InvalidModelError, match=re.escape(expected)):
        read_facts(parts[given])


def test_renamed_part_cannot_find_the_others(tmp_path: Path) -> None:
    _, parts = _split(tmp_path)
    renamed = parts[0].rename(parts[0].with_name("tiny.gguf"))
    expected = ("“tiny.gguf” is part 1 of 2 of a model split into several files, but its name does not end in "
                "“-00001-of-00002.gguf”")
    with pytest.raises(InvalidModelError, match=re.escape(expected)):
        read_facts(renamed)


def test_part_from_another_model_is_refused(tmp_path: Path) -> None:
    _, parts = _split(tmp_path)
    stranger = _llama(tmp_path / "tiny.gguf")  # a whole model in the place of part 2
    stranger.replace(parts[1])
    with pytest.raises(InvalidModelError, match=re.escape(
            f"“{parts[1].name}” does not belong with “{parts[0].name}”: its header says it is a whole model")):
        read_facts(parts[0])


# --- headers from bytes -----------------------------------------------------------------------------------------


def _comparable(facts: ModelFacts) -> dict[str, object]:
    data = facts.to_dict()
    del data["path"], data["shards"]
    return data | {"tensors": facts.tensors}


def test_facts_from_bytes_equal_facts_from_the_file() -> None:
    path = _stories()
    data = path.read_bytes()
    header_length = int(GGUFReader(path).data_offset)
    local = read_facts(path)
    for end in (header_length, header_length + 1000, len(data)):
        facts = read_facts_from_bytes(data[:end], file_size=len(data), name=path.name)
        assert _comparable(facts) == _comparable(local)
        assert facts.path == Path(path.name)
    scan = scan_header(memoryview(data)[:header_length], file_size=len(data), name=path.name)
    assert scan == HeaderScan(header_length, 1, 1)


def test_short_bytes_ask_for_more_until_the_header_is_complete() -> None:
    path = _stories()
    data = path.read_bytes()
    have, rounds = 0, 0
    while True:
        try:
            read_facts_from_bytes(data[:have], file_size=len(data), name=path.name)
            break
        except HeaderIncomplete as incomplete:
            assert isinstance(incomplete, InvalidModelError)
            assert incomplete.needed > have
            assert "were read, and its header is longer than that" in str(incomplete)
            have, rounds = incomplete.needed, rounds + 1
    assert have <= int(GGUFReader(path).data_offset)
    assert rounds > 10  # one step per item at worst, but it always moves forward


def test_bytes_are_checked_against_the_file_size_not_their_length() -> None:
    data = _stories().read_bytes()
    header = data[:int(GGUFReader(_stories()).data_offset)]
    expected = "is incomplete: it is 20.0 KB but its header describes 1.2 MB"
    with pytest.raises(InvalidModelError, match=re.escape(expected)):
        read_facts_from_bytes(header, file_size=20_000, name="cut.gguf")
    absurd = b"GGUF" + struct.pack("<IQQ", 3, 2**40, 0)
    with pytest.raises(InvalidModelError, match=re.escape("(2^40 tensors)")):
        read_facts_from_bytes(absurd, file_size=10**9, name="absurd.gguf")


def test_hostile_array_in_a_partial_header_is_refused_not_fetched(tmp_path: Path) -> None:
    data = hostile_array(tmp_path).read_bytes()
    with pytest.raises(InvalidModelError) as caught:
        read_facts_from_bytes(data[:100], file_size=len(data), name="hostile.gguf")
    assert not isinstance(caught.value, HeaderIncomplete)


def test_split_model_from_bytes(tmp_path: Path) -> None:
    _, parts = _split(tmp_path)
    blobs = [(p.read_bytes(), p.stat().st_size, p.name) for p in parts]
    with pytest.raises(InvalidModelError, match=re.escape("is part 1 of 2 of a model split into several files")):
        read_facts_from_bytes(blobs[0][0], file_size=blobs[0][1], name=blobs[0][2])
    facts = read_facts_from_parts(blobs)
    assert _comparable(facts) == _comparable(read_facts(parts[0]))
    expected = "was given as part 1 of 2, but its header says it is part 2"
    with pytest.raises(InvalidModelError, match=re.escape(expected)):
        read_facts_from_parts(blobs[::-1])
    assert scan_header(blobs[1][0], file_size=blobs[1][1], name=blobs[1][2]).part == 2


def test_random_prefixes_give_facts_more_or_plain_words(tmp_path: Path) -> None:
    original = _stories().read_bytes()
    header_end = int(GGUFReader(_stories()).data_offset)
    rng = random.Random(7)
    for _ in range(200):
        data = bytearray(original[:rng.randrange(0, header_end + 64)])
        for _ in range(rng.randint(0, 3)):
            if len(data) > 4:
                data[rng.randrange(4, len(data))] = rng.randrange(256)
        try:
            read_facts_from_bytes(bytes(data), file_size=len(original), name="mutant.gguf")
        except HeaderIncomplete as incomplete:
            assert len(data) < incomplete.needed <= len(original)
        except InvalidModelError as error:
            assert "“mutant.gguf”" in str(error)


@pytest.mark.parametrize(("name", "part", "expected"), [
    ("Qwen3-8B-Q4_K_M-00001-of-00003.gguf", 3, "Qwen3-8B-Q4_K_M-00003-of-00003.gguf"),
    ("a-b-00002-of-00002.gguf", 1, "a-b-00001-of-00002.gguf"),
    ("model-00001-of-00002.gguf", 3, None),
    ("model-1-of-2.gguf", 1, None),
    ("model.gguf", 1, None),
])
def test_split_part_names_follow_llama_cpp(name: str, part: int, expected: str | None) -> None:
    assert split_part_name(name, part) == expected


# base models


def test_a_model_without_a_chat_template_or_chat_words_is_a_base_model(tmp_path: Path) -> None:
    from tests.helpers.model_builders import llama_gqa

    built = llama_gqa(tmp_path)  # no template; named "hearth-test llama-gqa-f16"
    assert read_facts(built).is_base_model
    assert not read_facts(with_chat_template(built, tmp_path)).is_base_model
    instruct = built.with_name("tiny-llama-instruct-f16.gguf")  # an instruct model packed without a template
    built.rename(instruct)
    facts = read_facts(instruct)
    assert not facts.has_chat_template and not facts.is_base_model
    assert ModelFacts.from_dict(json.loads(json.dumps(facts.to_dict()))).is_base_model is False
    assert read_facts(_stories()).is_base_model  # TinyStories: it tells stories, it does not answer


def test_the_header_fine_tune_label_says_chat_tuned(tmp_path: Path) -> None:
    writer = GGUFWriter(tmp_path / "gemma-3-270m-q8_0.gguf", "llama")
    writer.add_name("Gemma 3 270m")
    writer.add_finetune("it")
    writer.add_tensor("token_embd.weight", np.zeros((4, 32), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    facts = read_facts(tmp_path / "gemma-3-270m-q8_0.gguf")
    assert facts.finetune == "it" and not facts.is_base_model


def test_the_real_instruct_model_is_not_a_base_model(real_model_path: Path) -> None:
    facts = read_facts(real_model_path)
    assert facts.has_chat_template and facts.finetune == "8k-lc100k-mix1-ep2" and not facts.is_base_model
