"""The generated models of ``model_builders`` are real: llama.cpp loads them, runs them, and sees the
layout each one is meant to have (architecture, parameter count, KV cache cells and layers).

Loading goes through llama.cpp, which aborts the whole process on a malformed file, so every load runs in
its own short-lived interpreter and a bad file fails one test instead of killing the session.
"""

from __future__ import annotations

import functools
import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from gguf import GGMLQuantizationType, GGUFReader

from app.gguf.facts import read_facts

from tests.helpers import ROOT
from tests.helpers.model_builders import (
    ALL_BUILDERS,
    Vocabulary,
    llama_gqa,
    mixture_of_experts,
    odd_heads,
    sharded,
    sliding_window,
)

# Runs in a child interpreter: load argv[1] with the keyword arguments of argv[2] (JSON), generate one token,
# print one JSON line with what llama.cpp saw. llama.cpp's log goes to stderr (verbose=True).
_LOAD_AND_RUN = r"""
import json, sys
import llama_cpp
import llama_cpp.llama_cpp as lib
from llama_cpp import Llama

# llama.cpp's AMX matrix kernels (Intel Xeon with AMX_INT8) segfault on quantized weights, even on
# models converted by llama.cpp itself (ggml-org/llama.cpp#20824). There, load without the extra buffer
# types (AMX, weight repacking) so that what is tested is the file, not that bug.
if b"AMX_INT8 = 1" in lib.llama_print_system_info():
    default_params = lib.llama_model_default_params
    def without_extra_buffers():
        params = default_params()
        params.use_extra_bufts = False
        return params
    lib.llama_model_default_params = without_extra_buffers

llm = Llama(model_path=sys.argv[1], verbose=True, **json.loads(sys.argv[2]))
completion = llm.create_completion("Once", max_tokens=1)
print(json.dumps({
    "architecture": llm.metadata["general.architecture"],
    "n_params": lib.llama_model_n_params(llm.model),
    "completion_tokens": completion["usage"]["completion_tokens"],
}))
"""

# llama_kv_cache: size =    0.25 MiB (   512 cells,   4 layers,  1/1 seqs), K (f16): ...
_KV_CACHE_LINE = re.compile(r"llama_kv_cache: size =\s*([\d.]+) MiB \(\s*(\d+) cells,\s*(\d+) layers")

_MAX_FILE_BYTES = 4 * 1024 * 1024

# Extra variants the loading test covers beyond ALL_BUILDERS.
_VARIANTS: dict[str, Callable[[Path], Path]] = {
    **ALL_BUILDERS,
    "llama_gqa_f32": functools.partial(llama_gqa, dtype="F32"),
    "llama_gqa_tied": functools.partial(llama_gqa, tied=True),
}

_ARCHITECTURES = {
    "llama_gqa": "llama",
    "llama_gqa_q8_0": "llama",
    "llama_gqa_q4_0": "llama",
    "llama_gqa_f32": "llama",
    "llama_gqa_tied": "llama",
    "sliding_window": "gemma3",
    "mixture_of_experts": "qwen3moe",
    "odd_heads": "qwen3",
    "sharded": "llama",
}

# (cells, layers, bytes) of each KV cache llama.cpp creates at n_ctx 512 with f16 K and V, from the
# builders' default shapes: cells x layers x n_head_kv x (key_length + value_length) x 2 bytes.
_KV_AT_512 = {
    "llama_gqa": [(512, 4, 512 * 4 * 2 * (16 + 16) * 2)],
    "sliding_window": [(512, 2, 512 * 2 * 1 * (64 + 64) * 2), (512, 4, 512 * 4 * 1 * (64 + 64) * 2)],
    "mixture_of_experts": [(512, 4, 512 * 4 * 2 * (32 + 32) * 2)],
    "odd_heads": [(512, 4, 512 * 4 * 2 * (48 + 48) * 2)],
    "sharded": [(512, 4, 512 * 4 * 2 * (16 + 16) * 2)],
}
for _name in ("llama_gqa_q8_0", "llama_gqa_q4_0", "llama_gqa_f32", "llama_gqa_tied"):
    _KV_AT_512[_name] = _KV_AT_512["llama_gqa"]


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("generated-models")
    return {name: build(folder) for name, build in _VARIANTS.items()}


def _load_and_run(path: Path, **settings: Any) -> tuple[dict[str, Any], str]:
    settings.setdefault("n_ctx", 512)
    done = subprocess.run([sys.executable, "-c", _LOAD_AND_RUN, str(path), json.dumps(settings)],
                          capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0:
        pytest.fail(f"loading {path.name} failed with exit status {done.returncode}:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


def _kv_caches(log: str) -> list[tuple[int, int, float]]:
    return [(int(cells), int(layers), float(mib)) for mib, cells, layers in _KV_CACHE_LINE.findall(log)]


def _model_files(first: Path) -> list[Path]:
    if "-00001-of-" not in first.name:
        return [first]
    return sorted(first.parent.glob(first.name.replace("-00001-of-", "-*-of-")))


def _n_params(files: list[Path]) -> int:
    return sum(int(tensor.n_elements) for path in files for tensor in GGUFReader(path).tensors)


def test_all_builders_are_named() -> None:
    assert set(ALL_BUILDERS) >= {"llama_gqa", "sliding_window", "mixture_of_experts", "odd_heads", "sharded"}


@pytest.mark.parametrize("name", list(_VARIANTS))
def test_written_small_and_readable(models: dict[str, Path], name: str) -> None:
    files = _model_files(models[name])
    assert files
    assert all(0 < path.stat().st_size < _MAX_FILE_BYTES for path in files)
    first = GGUFReader(files[0])
    assert first.fields["general.architecture"].contents() == _ARCHITECTURES[name]
    assert len(first.fields["tokenizer.ggml.tokens"].data) == 512


@pytest.mark.parametrize("name", list(_VARIANTS))
def test_loads_and_generates(models: dict[str, Path], name: str) -> None:
    seen, log = _load_and_run(models[name])
    assert seen["architecture"] == _ARCHITECTURES[name]
    assert seen["completion_tokens"] == 1
    assert seen["n_params"] == _n_params(_model_files(models[name]))
    caches = _kv_caches(log)
    expected = _KV_AT_512[name]
    assert [(cells, layers) for cells, layers, _ in caches] == [(cells, layers) for cells, layers, _ in expected]
    for (_, _, mib), (_, _, n_bytes) in zip(caches, expected, strict=True):
        assert mib == pytest.approx(n_bytes / 2**20, abs=0.005)


def test_sliding_window_layers_keep_a_window_sized_cache(tmp_path: Path) -> None:
    # With swa_full off the four sliding-window layers keep window + n_ubatch cells (256 + 512), padded to
    # 256; the two global layers keep the whole context.
    path = sliding_window(tmp_path, window=256, swa_period=3, n_layer=6)
    _, log = _load_and_run(path, n_ctx=2048, swa_full=False, flash_attn=True)
    assert [(cells, layers) for cells, layers, _ in _kv_caches(log)] == [(2048, 2), (768, 4)]


@pytest.mark.parametrize("dtype", ["F32", "F16", "BF16", "Q8_0", "Q4_0"])
def test_weight_types(tmp_path: Path, dtype: str) -> None:
    tensors = GGUFReader(llama_gqa(tmp_path, dtype=dtype, n_layer=1)).tensors
    matrices = {t.tensor_type for t in tensors if len(t.shape) == 2}
    vectors = {t.tensor_type for t in tensors if len(t.shape) == 1}
    assert matrices == {GGMLQuantizationType[dtype]}
    assert vectors == {GGMLQuantizationType.F32}


def test_same_call_writes_same_bytes(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = llama_gqa(tmp_path / "a", n_layer=1)
    second = llama_gqa(tmp_path / "b", n_layer=1)
    assert first.read_bytes() == second.read_bytes()


def test_shapes_follow_the_options(tmp_path: Path) -> None:
    moe = GGUFReader(mixture_of_experts(tmp_path, n_expert=8, n_expert_used=3, n_ff_exp=96))
    assert moe.fields["qwen3moe.expert_count"].contents() == 8
    assert moe.fields["qwen3moe.expert_used_count"].contents() == 3
    gate = next(t for t in moe.tensors if t.name == "blk.0.ffn_gate_exps.weight")
    assert list(gate.shape) == [128, 96, 8]  # ggml order: n_embd, n_ff_exp, n_expert

    heads = GGUFReader(odd_heads(tmp_path, n_head=6, n_head_kv=3, head_dim=40))
    assert heads.fields["qwen3.attention.key_length"].contents() == 40
    q = next(t for t in heads.tensors if t.name == "blk.0.attn_q.weight")
    k = next(t for t in heads.tensors if t.name == "blk.0.attn_k.weight")
    assert list(q.shape) == [128, 6 * 40]
    assert list(k.shape) == [128, 3 * 40]


def test_shards_carry_the_split_keys(tmp_path: Path) -> None:
    shards = sharded(tmp_path)
    assert [path.name for path in shards] == ["sharded-llama-f16-00001-of-00002.gguf",
                                               "sharded-llama-f16-00002-of-00002.gguf"]
    readers = [GGUFReader(path) for path in shards]
    total = sum(len(reader.tensors) for reader in readers)
    for number, reader in enumerate(readers):
        assert reader.fields["split.no"].contents() == number
        assert reader.fields["split.count"].contents() == 2
        assert reader.fields["split.tensors.count"].contents() == total
        assert reader.tensors
    # As llama.cpp's gguf-split: the model's metadata is in the first shard only.
    assert "general.architecture" in readers[0].fields
    assert "llama.block_count" not in readers[1].fields


@pytest.mark.parametrize("bad", [
    {"dtype": "Q9_9"},
    {"n_head": 8, "n_head_kv": 3},
])
def test_rejects_impossible_options(tmp_path: Path, bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        llama_gqa(tmp_path, **bad)


def test_weights_are_random_not_constant(models: dict[str, Path]) -> None:
    embedding = next(t for t in GGUFReader(models["llama_gqa_f32"]).tensors if t.name == "token_embd.weight")
    values = np.asarray(embedding.data, dtype=np.float32)
    assert 0.01 < float(values.std()) < 0.05


# Runs in a child interpreter: tokenize and generate with a generated vocabulary, print what llama.cpp saw.
_TOKENIZE_AND_RUN = r"""
import json, sys
from app.engine.worker import llama_here  # as the worker makes one: no AMX layouts, which crash on Q8_0

llm = llama_here(sys.argv[1], n_ctx=256, verbose=False)
tokens = llm.tokenize(b"once upon a time there was a little fox", add_bos=False)
completion = llm.create_completion("once upon a time", max_tokens=2, temperature=0.0)
print(json.dumps({"n_vocab": llm.n_vocab(), "tokens": len(tokens), "largest": max(tokens),
                  "completion_tokens": completion["usage"]["completion_tokens"]}))
"""


@pytest.mark.parametrize("vocabulary", [Vocabulary(32000, "spm"), Vocabulary(49152, "bpe"),
                                        Vocabulary(262144, "spm")], ids=lambda v: v.label)
def test_generated_vocabularies_of_real_sizes_load_tokenize_and_generate(tmp_path: Path,
                                                                         vocabulary: Vocabulary) -> None:
    model = llama_gqa(tmp_path, n_embd=64, n_head=4, n_head_kv=2, dtype="Q8_0", vocabulary=vocabulary, tied=True)
    facts = read_facts(model)
    assert facts.vocab_size == vocabulary.size and facts.tied_embeddings
    assert facts.merges_count == (vocabulary.size - 259 if vocabulary.kind == "bpe" else 0)
    run = subprocess.run([sys.executable, "-c", _TOKENIZE_AND_RUN, str(model)], capture_output=True, text=True,
                         timeout=120, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-2000:]
    seen = json.loads(run.stdout.strip().splitlines()[-1])
    assert seen["n_vocab"] == vocabulary.size
    assert 0 < seen["tokens"] < 40 and seen["largest"] > 259, "words become pieces, not single bytes"
    assert seen["completion_tokens"] == 2


def test_a_generated_vocabulary_is_refused_when_too_small_or_of_an_unknown_kind() -> None:
    with pytest.raises(ValueError):
        Vocabulary(100)
    with pytest.raises(ValueError):
        Vocabulary(32000, "wordpiece")
