"""Small but real GGUF models with random weights, for checking the memory forecast against llama.cpp.

Each builder writes a model that llama.cpp loads and runs (the output is gibberish), in one of the layouts
the forecast has to get right: grouped-query attention, sliding-window layers, mixture of experts, head
sizes that are not ``n_embd / n_head``, and a model split into two files. By default they borrow the
512-token SentencePiece vocabulary of the stories260K test model (every ``tokenizer.*`` key is copied), so
llama.cpp accepts the vocabulary, and they are a few MB at most and load in a fraction of a second.

Real models have vocabularies of 32k to 262k tokens, and the vocabulary drives a large part of their memory
(the embedding and output matrices, the logits, llama.cpp's token tables). ``vocabulary=Vocabulary(...)``
gives a model a generated vocabulary of any size instead, in either of the two tokenizer families real small
models use: SentencePiece with scores and byte tokens (Llama 2, Gemma) or byte-level BPE with merges
(Llama 3, Qwen, SmolLM). Its pieces are made up, but llama.cpp loads, tokenizes and samples with it.
``vocabulary=Path(...)`` copies a real model's tokenizer and chat template instead, so a model of a shape
no small real model has (a 1B-class one, for timings) reads and formats text as that real model does.

Each builder takes the folder to write into plus keyword shape options, and returns the written path (the
list of shard paths for :func:`sharded`). File names carry the builder and the weight type, so several
variants can share a folder. Weights are drawn from a fixed seed, so the same call writes the same bytes.

``dtype`` is the type of the 2-D weight matrices: ``F32``, ``F16``, ``BF16``, or a quantized type the
``gguf`` package can produce (``Q8_0``, ``Q4_0``, ``Q4_1``, ``Q5_0``, ``Q5_1``). Norms, and the expert
router of the mixture-of-experts model, stay F32 as in converted models. Quantized types need every
weight row to be a multiple of 32 values long.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from gguf import GGMLQuantizationType, GGUFReader, GGUFValueType, GGUFWriter, LlamaFileType
from gguf.quants import quantize

from tests.helpers.fetch_test_model import locate

__all__ = [
    "ALL_BUILDERS",
    "Vocabulary",
    "llama_gqa",
    "mixture_of_experts",
    "odd_heads",
    "sharded",
    "sliding_window",
]

_RMS_EPS = 1e-6
_WEIGHT_STD = 0.02


# --- the shared vocabulary ---------------------------------------------------------------------------------


@functools.cache
def _vocabulary_source() -> Path:
    path = locate()
    if path is None:
        raise FileNotFoundError("stories260K.gguf is missing: run tests/helpers/fetch_test_model.py")
    return path


@functools.cache
def _tokenizer_fields(source: Path) -> tuple[tuple[str, Any, GGUFValueType, GGUFValueType | None], ...]:
    """Every ``tokenizer.*`` KV of ``source`` as (key, value, type, item type); strings stay bytes so
    tokens that are not valid UTF-8 survive the copy."""
    reader = GGUFReader(source)
    fields: list[tuple[str, Any, GGUFValueType, GGUFValueType | None]] = []
    for key, field in reader.fields.items():
        if not key.startswith("tokenizer."):
            continue
        kind = field.types[0]
        if kind == GGUFValueType.ARRAY:
            item_kind = field.types[1]
            value: Any = [_scalar(field.parts[i], item_kind) for i in field.data]
            fields.append((key, value, kind, item_kind))
        else:
            fields.append((key, _scalar(field.parts[field.data[0]], kind), kind, None))
    return tuple(fields)


def _scalar(part: np.ndarray[Any, Any], kind: GGUFValueType) -> Any:
    return bytes(part) if kind == GGUFValueType.STRING else part.tolist()[0]


def _vocab_size(source: Path) -> int:
    for key, value, _, _ in _tokenizer_fields(source):
        if key == "tokenizer.ggml.tokens":
            return len(value)
    raise ValueError(f"{source} has no tokenizer.ggml.tokens")


@dataclass(frozen=True)
class Vocabulary:
    """A generated vocabulary of ``size`` tokens.

    ``kind`` is ``"spm"`` (SentencePiece: ``<unk>``, ``<s>``, ``</s>``, 256 byte tokens, then scored pieces)
    or ``"bpe"`` (byte-level BPE: three control tokens, the 256 byte symbols, then one merge per further token,
    so a BPE file carries about as many merges as tokens, like real ones).
    """

    size: int
    kind: str = "spm"

    def __post_init__(self) -> None:
        if self.kind not in ("spm", "bpe"):
            raise ValueError(f"unknown tokenizer kind {self.kind!r}; expected 'spm' or 'bpe'")
        if self.size < 512:
            raise ValueError("a generated vocabulary needs at least 512 tokens")

    @property
    def label(self) -> str:
        return f"{self.kind}{self.size}"


_TOKEN_NORMAL, _TOKEN_UNKNOWN, _TOKEN_CONTROL, _TOKEN_BYTE = 1, 2, 3, 6


def _byte_symbols() -> list[str]:
    """GPT-2's printable stand-in for each byte, as byte-level BPE vocabularies spell them."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    symbols, extra = {}, 0
    for byte in range(256):
        if byte in printable:
            symbols[byte] = chr(byte)
        else:
            symbols[byte] = chr(256 + extra)
            extra += 1
    return [symbols[b] for b in range(256)]


def _longer_pieces(alphabet: list[str]) -> Iterator[tuple[str, str]]:
    """(left, right) pairs whose concatenations are all different: every piece one symbol longer than the
    last level, level after level."""
    level = list(alphabet)
    while True:
        following = []
        for left, right in itertools.product(level, alphabet):
            following.append(left + right)
            yield left, right
        level = following


@functools.cache
def _generated_tokenizer(vocabulary: Vocabulary) -> tuple[tuple[str, Any, GGUFValueType, GGUFValueType | None], ...]:
    string, i32, f32 = GGUFValueType.STRING, GGUFValueType.INT32, GGUFValueType.FLOAT32
    if vocabulary.kind == "spm":
        tokens = ["<unk>", "<s>", "</s>", *(f"<0x{b:02X}>" for b in range(256))]
        types = [_TOKEN_UNKNOWN, _TOKEN_CONTROL, _TOKEN_CONTROL, *([_TOKEN_BYTE] * 256)]
        letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
        longer = ("".join(pair) for pair in _longer_pieces(letters))
        pieces = itertools.chain(("\u2581" + c for c in letters), letters, longer)
        tokens += itertools.islice(pieces, vocabulary.size - len(tokens))
        types += [_TOKEN_NORMAL] * (vocabulary.size - len(types))
        scores = [0.0] * 259 + [-float(i) for i in range(vocabulary.size - 259)]
        return (("tokenizer.ggml.model", "llama", string, None),
                ("tokenizer.ggml.tokens", tokens, GGUFValueType.ARRAY, string),
                ("tokenizer.ggml.scores", scores, GGUFValueType.ARRAY, f32),
                ("tokenizer.ggml.token_type", types, GGUFValueType.ARRAY, i32),
                ("tokenizer.ggml.unknown_token_id", 0, GGUFValueType.UINT32, None),
                ("tokenizer.ggml.bos_token_id", 1, GGUFValueType.UINT32, None),
                ("tokenizer.ggml.eos_token_id", 2, GGUFValueType.UINT32, None))
    symbols = _byte_symbols()
    tokens = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", *symbols]
    merges = []
    for left, right in itertools.islice(_longer_pieces(symbols), vocabulary.size - len(tokens)):
        tokens.append(left + right)
        merges.append(f"{left} {right}")
    types = [_TOKEN_CONTROL] * 3 + [_TOKEN_NORMAL] * (vocabulary.size - 3)
    return (("tokenizer.ggml.model", "gpt2", string, None),
            ("tokenizer.ggml.pre", "default", string, None),
            ("tokenizer.ggml.tokens", tokens, GGUFValueType.ARRAY, string),
            ("tokenizer.ggml.token_type", types, GGUFValueType.ARRAY, i32),
            ("tokenizer.ggml.merges", merges, GGUFValueType.ARRAY, string),
            ("tokenizer.ggml.bos_token_id", 0, GGUFValueType.UINT32, None),
            ("tokenizer.ggml.eos_token_id", 2, GGUFValueType.UINT32, None))


# --- writing ------------------------------------------------------------------------------------------------


class _Model:
    """A GGUFWriter with random weights of one type and the shared vocabulary."""

    def __init__(self, path: Path, arch: str, dtype: str, seed: int, split_max_tensors: int = 0,
                 vocabulary: Vocabulary | Path | None = None) -> None:
        self.qtype = _weight_type(dtype)
        self.rng = np.random.default_rng(seed)
        self.writer = GGUFWriter(path, arch, split_max_tensors=split_max_tensors)
        self.arch = arch
        self.writer.add_name(f"hearth-test {path.stem}")
        self.writer.add_file_type(_file_type(self.qtype))
        if vocabulary is None or isinstance(vocabulary, Path):
            source = _vocabulary_source() if vocabulary is None else vocabulary
            self.n_vocab = _vocab_size(source)
            fields = _tokenizer_fields(source)
        else:
            self.n_vocab = vocabulary.size
            fields = _generated_tokenizer(vocabulary)
        for key, value, kind, item_kind in fields:
            self.writer.add_key_value(key, value, kind, sub_type=item_kind)

    def key(self, name: str, value: int | float) -> None:
        """``{arch}.name`` as UINT32 (ints) or FLOAT32."""
        kind = GGUFValueType.FLOAT32 if isinstance(value, float) else GGUFValueType.UINT32
        self.writer.add_key_value(f"{self.arch}.{name}", value, kind)

    def matrix(self, name: str, *ne: int, dtype: GGMLQuantizationType | None = None) -> None:
        """A weight with ggml dimensions ``ne`` (innermost first, as llama.cpp lists them), in the model's
        weight type unless ``dtype`` is given."""
        qtype = self.qtype if dtype is None else dtype
        values = self.rng.standard_normal(tuple(reversed(ne)), dtype=np.float32) * _WEIGHT_STD
        if qtype == GGMLQuantizationType.F32:
            self.writer.add_tensor(name, values)
        elif qtype == GGMLQuantizationType.F16:
            self.writer.add_tensor(name, values.astype(np.float16))
        else:
            self.writer.add_tensor(name, quantize(values, qtype), raw_dtype=qtype)

    def norm(self, name: str, n: int) -> None:
        self.writer.add_tensor(name, np.ones(n, dtype=np.float32))

    def finish(self) -> None:
        self.writer.write_header_to_file()
        self.writer.write_kv_data_to_file()
        self.writer.write_tensors_to_file()
        self.writer.close()

    def shard_paths(self, path: Path) -> list[Path]:
        return self.writer.format_shard_names(path)


def _weight_type(dtype: str) -> GGMLQuantizationType:
    try:
        return GGMLQuantizationType[dtype.upper()]
    except KeyError:
        raise ValueError(f"unknown tensor type {dtype!r}") from None


def _file_type(qtype: GGMLQuantizationType) -> LlamaFileType:
    if qtype == GGMLQuantizationType.F32:
        return LlamaFileType.ALL_F32
    return LlamaFileType[f"MOSTLY_{qtype.name}"]


def _common_keys(model: _Model, *, n_embd: int, n_layer: int, n_head: int, n_head_kv: int, n_ff: int,
                 ctx: int) -> None:
    model.key("context_length", ctx)
    model.key("embedding_length", n_embd)
    model.key("block_count", n_layer)
    model.key("feed_forward_length", n_ff)
    model.key("attention.head_count", n_head)
    model.key("attention.head_count_kv", n_head_kv)
    model.key("attention.layer_norm_rms_epsilon", _RMS_EPS)
    model.key("rope.freq_base", 10000.0)


def _attention(model: _Model, bid: int, *, n_embd: int, n_head: int, n_head_kv: int, head_dim: int) -> None:
    model.matrix(f"blk.{bid}.attn_q.weight", n_embd, n_head * head_dim)
    model.matrix(f"blk.{bid}.attn_k.weight", n_embd, n_head_kv * head_dim)
    model.matrix(f"blk.{bid}.attn_v.weight", n_embd, n_head_kv * head_dim)
    model.matrix(f"blk.{bid}.attn_output.weight", n_head * head_dim, n_embd)


def _dense_ffn(model: _Model, bid: int, *, n_embd: int, n_ff: int) -> None:
    model.matrix(f"blk.{bid}.ffn_gate.weight", n_embd, n_ff)
    model.matrix(f"blk.{bid}.ffn_up.weight", n_embd, n_ff)
    model.matrix(f"blk.{bid}.ffn_down.weight", n_ff, n_embd)


def _embeddings(model: _Model, n_embd: int, *, tied: bool) -> None:
    model.matrix("token_embd.weight", n_embd, model.n_vocab)
    model.norm("output_norm.weight", n_embd)
    if not tied:
        model.matrix("output.weight", n_embd, model.n_vocab)


def _suffix(vocabulary: Vocabulary | Path | None) -> str:
    if isinstance(vocabulary, Path):
        return f"-vocab-{vocabulary.stem.lower()}"
    return f"-{vocabulary.label}" if vocabulary else ""


def _check_divides(n_head: int, n_head_kv: int) -> None:
    if n_head_kv <= 0 or n_head % n_head_kv:
        raise ValueError(f"n_head ({n_head}) must be a multiple of n_head_kv ({n_head_kv})")


def _write_llama(model: _Model, *, n_embd: int, n_layer: int, n_head: int, n_head_kv: int, n_ff: int, ctx: int,
                 tied: bool) -> None:
    _check_divides(n_head, n_head_kv)
    if n_embd % n_head:
        raise ValueError(f"n_embd ({n_embd}) must be a multiple of n_head ({n_head})")
    head_dim = n_embd // n_head
    _common_keys(model, n_embd=n_embd, n_layer=n_layer, n_head=n_head, n_head_kv=n_head_kv, n_ff=n_ff, ctx=ctx)
    model.key("rope.dimension_count", head_dim)
    _embeddings(model, n_embd, tied=tied)
    for bid in range(n_layer):
        model.norm(f"blk.{bid}.attn_norm.weight", n_embd)
        _attention(model, bid, n_embd=n_embd, n_head=n_head, n_head_kv=n_head_kv, head_dim=head_dim)
        model.norm(f"blk.{bid}.ffn_norm.weight", n_embd)
        _dense_ffn(model, bid, n_embd=n_embd, n_ff=n_ff)


# --- the builders -------------------------------------------------------------------------------------------


def llama_gqa(dest: Path, *, n_embd: int = 128, n_layer: int = 4, n_head: int = 8, n_head_kv: int = 2,
              n_ff: int = 256, ctx: int = 4096, dtype: str = "F16", tied: bool = False, seed: int = 1,
              vocabulary: Vocabulary | Path | None = None) -> Path:
    """``llama`` with grouped-query attention (n_head / n_head_kv query heads share each KV head).
    ``tied`` leaves out ``output.weight``, so llama.cpp reuses the token embedding as the output matrix."""
    path = dest / f"llama-gqa-{dtype.lower()}{'-tied' if tied else ''}{_suffix(vocabulary)}.gguf"
    model = _Model(path, "llama", dtype, seed, vocabulary=vocabulary)
    _write_llama(model, n_embd=n_embd, n_layer=n_layer, n_head=n_head, n_head_kv=n_head_kv, n_ff=n_ff, ctx=ctx,
                 tied=tied)
    model.finish()
    return path


def sliding_window(dest: Path, *, n_embd: int = 128, n_layer: int = 6, n_head: int = 4, n_head_kv: int = 1,
                   head_dim: int = 64, n_ff: int = 256, ctx: int = 8192, window: int = 256, swa_period: int = 3,
                   dtype: str = "F16", seed: int = 2, vocabulary: Vocabulary | Path | None = None) -> Path:
    """``gemma3``: in every ``swa_period`` layers the last one attends globally and the others to the last
    ``window`` tokens only (``gemma3.attention.sliding_window`` / ``sliding_window_pattern``). Heads are
    ``head_dim`` wide independently of ``n_embd`` (``key_length`` / ``value_length``), as in Gemma; the
    output matrix is the token embedding (tied), as in Gemma."""
    _check_divides(n_head, n_head_kv)
    path = dest / f"sliding-window-{dtype.lower()}{_suffix(vocabulary)}.gguf"
    model = _Model(path, "gemma3", dtype, seed, vocabulary=vocabulary)
    _common_keys(model, n_embd=n_embd, n_layer=n_layer, n_head=n_head, n_head_kv=n_head_kv, n_ff=n_ff, ctx=ctx)
    model.key("attention.key_length", head_dim)
    model.key("attention.value_length", head_dim)
    model.key("attention.sliding_window", window)
    model.key("attention.sliding_window_pattern", swa_period)
    _embeddings(model, n_embd, tied=True)
    for bid in range(n_layer):
        model.norm(f"blk.{bid}.attn_norm.weight", n_embd)
        _attention(model, bid, n_embd=n_embd, n_head=n_head, n_head_kv=n_head_kv, head_dim=head_dim)
        model.norm(f"blk.{bid}.attn_q_norm.weight", head_dim)
        model.norm(f"blk.{bid}.attn_k_norm.weight", head_dim)
        model.norm(f"blk.{bid}.post_attention_norm.weight", n_embd)
        model.norm(f"blk.{bid}.ffn_norm.weight", n_embd)
        _dense_ffn(model, bid, n_embd=n_embd, n_ff=n_ff)
        model.norm(f"blk.{bid}.post_ffw_norm.weight", n_embd)
    model.finish()
    return path


def mixture_of_experts(dest: Path, *, n_embd: int = 128, n_layer: int = 4, n_head: int = 4, n_head_kv: int = 2,
                       head_dim: int = 32, n_expert: int = 4, n_expert_used: int = 2, n_ff_exp: int = 64,
                       ctx: int = 4096, dtype: str = "F16", seed: int = 3,
                       vocabulary: Vocabulary | Path | None = None) -> Path:
    """``qwen3moe``: every layer's feed-forward is ``n_expert`` experts (``ffn_{gate,up,down}_exps``, one
    3-D tensor each), of which a router (``ffn_gate_inp``, F32) picks ``n_expert_used`` per token."""
    _check_divides(n_head, n_head_kv)
    if not 0 < n_expert_used <= n_expert:
        raise ValueError(f"n_expert_used ({n_expert_used}) must be between 1 and n_expert ({n_expert})")
    path = dest / f"mixture-of-experts-{dtype.lower()}{_suffix(vocabulary)}.gguf"
    model = _Model(path, "qwen3moe", dtype, seed, vocabulary=vocabulary)
    _common_keys(model, n_embd=n_embd, n_layer=n_layer, n_head=n_head, n_head_kv=n_head_kv, n_ff=n_ff_exp, ctx=ctx)
    model.key("attention.key_length", head_dim)
    model.key("attention.value_length", head_dim)
    model.key("expert_count", n_expert)
    model.key("expert_used_count", n_expert_used)
    model.key("expert_feed_forward_length", n_ff_exp)
    _embeddings(model, n_embd, tied=False)
    for bid in range(n_layer):
        model.norm(f"blk.{bid}.attn_norm.weight", n_embd)
        _attention(model, bid, n_embd=n_embd, n_head=n_head, n_head_kv=n_head_kv, head_dim=head_dim)
        model.norm(f"blk.{bid}.attn_q_norm.weight", head_dim)
        model.norm(f"blk.{bid}.attn_k_norm.weight", head_dim)
        model.norm(f"blk.{bid}.ffn_norm.weight", n_embd)
        model.matrix(f"blk.{bid}.ffn_gate_inp.weight", n_embd, n_expert, dtype=GGMLQuantizationType.F32)
        model.matrix(f"blk.{bid}.ffn_gate_exps.weight", n_embd, n_ff_exp, n_expert)
        model.matrix(f"blk.{bid}.ffn_up_exps.weight", n_embd, n_ff_exp, n_expert)
        model.matrix(f"blk.{bid}.ffn_down_exps.weight", n_ff_exp, n_embd, n_expert)
    model.finish()
    return path


def odd_heads(dest: Path, *, n_embd: int = 128, n_layer: int = 4, n_head: int = 6, n_head_kv: int = 2,
              head_dim: int = 48, n_ff: int = 256, ctx: int = 4096, dtype: str = "F16", seed: int = 4,
              vocabulary: Vocabulary | Path | None = None) -> Path:
    """``qwen3`` whose heads are ``head_dim`` wide (48, not n_embd / n_head = 21.3) and whose head count (6)
    is not a power of two, so ``n_head * head_dim`` (288) differs from ``n_embd``."""
    _check_divides(n_head, n_head_kv)
    path = dest / f"odd-heads-{dtype.lower()}{_suffix(vocabulary)}.gguf"
    model = _Model(path, "qwen3", dtype, seed, vocabulary=vocabulary)
    _common_keys(model, n_embd=n_embd, n_layer=n_layer, n_head=n_head, n_head_kv=n_head_kv, n_ff=n_ff, ctx=ctx)
    model.key("attention.key_length", head_dim)
    model.key("attention.value_length", head_dim)
    model.key("rope.dimension_count", head_dim)
    _embeddings(model, n_embd, tied=False)
    for bid in range(n_layer):
        model.norm(f"blk.{bid}.attn_norm.weight", n_embd)
        _attention(model, bid, n_embd=n_embd, n_head=n_head, n_head_kv=n_head_kv, head_dim=head_dim)
        model.norm(f"blk.{bid}.attn_q_norm.weight", head_dim)
        model.norm(f"blk.{bid}.attn_k_norm.weight", head_dim)
        model.norm(f"blk.{bid}.ffn_norm.weight", n_embd)
        _dense_ffn(model, bid, n_embd=n_embd, n_ff=n_ff)
    model.finish()
    return path


def sharded(dest: Path, *, n_shards: int = 2, n_embd: int = 128, n_layer: int = 4, n_head: int = 8,
            n_head_kv: int = 2, n_ff: int = 256, ctx: int = 4096, dtype: str = "F16", seed: int = 5,
            vocabulary: Vocabulary | None = None) -> list[Path]:
    """A ``llama`` model (as :func:`llama_gqa`) split into ``n_shards`` files named
    ``sharded-llama-0000I-of-0000N.gguf`` the way llama.cpp's gguf-split writes them: every shard has
    ``split.no`` (UINT16, from 0), ``split.count`` (UINT16) and ``split.tensors.count`` (INT32, all shards
    together); only the first shard has the rest of the metadata. llama.cpp is given the first shard."""
    n_tensors = 3 + 9 * n_layer
    if not 2 <= n_shards <= n_tensors:
        raise ValueError(f"n_shards must be between 2 and {n_tensors}")
    path = dest / f"sharded-llama-{dtype.lower()}{_suffix(vocabulary)}.gguf"
    model = _Model(path, "llama", dtype, seed, split_max_tensors=math.ceil(n_tensors / n_shards),
                   vocabulary=vocabulary)
    _write_llama(model, n_embd=n_embd, n_layer=n_layer, n_head=n_head, n_head_kv=n_head_kv, n_ff=n_ff, ctx=ctx,
                 tied=False)
    shards = model.shard_paths(path)
    if len(shards) != n_shards:
        raise ValueError(f"{n_tensors} tensors do not split into {n_shards} shards evenly enough")
    model.finish()
    return shards


def _first_shard(dest: Path) -> Path:
    return sharded(dest)[0]


ALL_BUILDERS: dict[str, Callable[[Path], Path]] = {
    "llama_gqa": llama_gqa,
    "llama_gqa_q8_0": functools.partial(llama_gqa, dtype="Q8_0"),
    "llama_gqa_q4_0": functools.partial(llama_gqa, dtype="Q4_0"),
    "sliding_window": sliding_window,
    "mixture_of_experts": mixture_of_experts,
    "odd_heads": odd_heads,
    "sharded": _first_shard,
}
"""Each builder's default model; for ``sharded``, the first shard (the path llama.cpp is given)."""

