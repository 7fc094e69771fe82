"""What a GGUF model file says about itself, read without loading its weights.

The library shows these facts before a model is ever loaded, the engine uses them to pick a context
size, and the memory forecast sizes the weights, KV cache and compute buffers from them, so reading them
has to be cheap (only the header is touched) and safe on anything a person might pick in a file dialog or
paste as a link: every failure becomes an ``InvalidModelError`` with a sentence they can act on.

Three ways in, one parser:

- ``read_facts(path)``: a local file, through a memory map. A split model (``NAME-00001-of-0000N.gguf``)
  is read as one model from any of its parts.
- ``read_facts_from_bytes`` / ``read_facts_from_parts``: the first bytes of a file that is not here (the
  header of a file on the Hub). They raise ``HeaderIncomplete`` when the bytes end inside the header, so
  the caller can fetch more and try again.
- ``scan_header`` (in ``app.gguf.header``, the parser): only where the header ends and which part of a split
  model it is, for a fetcher that grows its byte range until the header is complete.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from gguf import Keys, LlamaFileType

from app.errors import InvalidModelError
from app.gguf.header import (
    SHARD_NAME,
    Array,
    Metadata,
    Part,
    bytes_part,
    damaged_message,
    local_parts,
    metadata_int,
    metadata_string,
    per_layer_array,
    quoted,
    read_local_part,
    shown,
)
from app.gguf.kind import looks_like_base_model
from app.words import format_count

log = logging.getLogger(__name__)
_T = TypeVar("_T")

__all__ = ["ModelFacts", "TensorInfo", "read_facts", "read_facts_from_bytes", "read_facts_from_parts"]


# Upper bounds for the facts the forecast computes with. They are far above any published model (the
# longest trained context is about 10M tokens, the deepest model a few hundred layers, llama.cpp itself
# stops at 512 layers and 512 experts) and far below what would make the arithmetic on them absurd, so
# a value beyond one means a damaged or hostile header, not a model.
_MAX_CONTEXT = 1 << 30
_MAX_LAYERS = 1 << 12
_MAX_WIDTH = 1 << 20  # embedding, feed-forward and head sizes, ranks, rotary dimensions
_MAX_HEADS = 1 << 14
_MAX_EXPERTS = 1 << 14
_MAX_VOCABULARY = 1 << 24

# A per-layer tensor ("blk.12.attn_q.weight"); the digit limit keeps int() away from huge strings.
_LAYER_TENSOR = re.compile(r"^blk\.(\d{1,9})\.")
_OUTPUT_PREFIXES = ("output.", "output_norm.")


@dataclass(frozen=True)
class TensorInfo:
    """One tensor as the header describes it.

    ``shape`` is in ggml order (``ne[0]`` first, as ``gguf.GGUFReader`` shows it), ``offset`` is where its
    data starts in its file, and ``shard`` is the index of that file in ``ModelFacts.shards``; the
    offsets are what llama.cpp maps, so the forecast can tell which file ranges a layer touches.
    """

    name: str
    type_name: str
    shape: tuple[int, ...]
    n_bytes: int
    offset: int = 0
    shard: int = 0


@dataclass(frozen=True)
class ModelFacts:
    """A model's header facts; ``None`` means the file does not say.

    For a split model, ``path`` is the first part (the one llama.cpp must be given), ``shards`` lists
    every part in order and ``file_size`` is their sum. ``layer_bytes``, ``input_bytes`` and
    ``output_bytes`` split the weights the way llama.cpp places them (per block, the input layer that
    always stays on the CPU, the output layer that is offloaded first); together they add up to all
    tensor bytes.
    """

    path: Path
    file_size: int
    name: str
    architecture: str
    parameter_count: int
    quantization: str
    gguf_version: int
    tensor_types: dict[str, int] = field(default_factory=dict, hash=False)
    context_length: int | None = None
    block_count: int | None = None
    embedding_length: int | None = None
    head_count: int | None = None
    head_count_kv: int | None = None  # the largest, when the file gives one per layer
    vocab_size: int | None = None
    merges_count: int = 0  # byte-level BPE merge rules: llama.cpp keeps a table of them beside the tokens
    chat_template: str | None = None
    # Kept as a field rather than derived from ``chat_template`` so facts restored by ``from_dict``
    # (which leaves the template text behind) still know whether the file has one.
    has_chat_template: bool = False
    finetune: str | None = None  # the header's fine-tune label ("Instruct", "it", or a training run's name)
    key_length: int | None = None  # per head; embedding_length // head_count unless the file says
    value_length: int | None = None
    head_count_kv_per_layer: tuple[int, ...] | None = None  # only when the file gives an array
    sliding_window: int | None = None
    # The file's per-layer array (True = sliding-window layer). Some files give a period instead (one
    # global layer every N): that is ``sliding_window_period``, because which layer of the period is the
    # global one depends on the architecture (llama.cpp's ``set_swa_pattern(n, dense_first)``).
    sliding_window_pattern: tuple[bool, ...] | None = None
    sliding_window_period: int | None = None
    expert_count: int | None = None
    expert_used_count: int | None = None
    feed_forward_length: int | None = None  # the largest, when the file gives one per layer
    rope_dimension_count: int | None = None
    kv_lora_rank: int | None = None  # multi-head latent attention (DeepSeek-V2/V3 and kin)
    layer_bytes: tuple[int, ...] = ()
    input_bytes: int = 0
    output_bytes: int = 0
    # No ``output.weight``: llama.cpp then uses the token embedding as the output matrix too, and keeps
    # a second copy of it with the output layer when that layer is offloaded.
    tied_embeddings: bool = False
    # Not compared, hashed or serialised: thousands of entries that a cache does not need (the summaries
    # above are kept) and that a restored entry could only get back by reading the file again.
    tensors: tuple[TensorInfo, ...] = field(default=(), compare=False, repr=False)
    shards: tuple[Path, ...] = ()

    def __post_init__(self) -> None:
        if self.chat_template is not None and not self.has_chat_template:
            object.__setattr__(self, "has_chat_template", True)
        if not self.shards:
            object.__setattr__(self, "shards", (self.path,))

    @property
    def is_base_model(self) -> bool:
        """Pretrained only: it continues text rather than answering (see ``looks_like_base_model``)."""
        return looks_like_base_model(has_chat_template=self.has_chat_template,
                                     names=(self.name, self.finetune or "", self.path.name))

    def shape_words(self) -> str:
        """The model's shape, for a technical reader: "llama, 30 layers, 9 attention heads (3 for keys and values),
        vocabulary of 49,152"."""
        parts = [self.architecture,
                 f"{self.block_count} layers" if self.block_count else "",
                 f"{self.head_count} attention heads ({self.head_count_kv} for keys and values)"
                 if self.head_count else "",
                 f"{self.expert_count} experts, {self.expert_used_count} used per token" if self.expert_count else "",
                 f"sliding window of {self.sliding_window:,} tokens" if self.sliding_window else "",
                 f"vocabulary of {self.vocab_size:,}" if self.vocab_size else ""]
        return ", ".join(part for part in parts if part)

    @property
    def parameter_label(self) -> str:
        """Size the way model cards name it ("7.6B"), which is what people search and compare by."""
        return format_count(self.parameter_count)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form for caches; the template text and the tensor list are left out because they can
        be many kilobytes and the engine and forecast read them from the file when they need them."""
        return {
            "path": str(self.path),
            "file_size": self.file_size,
            "name": self.name,
            "architecture": self.architecture,
            "parameter_count": self.parameter_count,
            "quantization": self.quantization,
            "gguf_version": self.gguf_version,
            "tensor_types": dict(self.tensor_types),
            "context_length": self.context_length,
            "block_count": self.block_count,
            "embedding_length": self.embedding_length,
            "head_count": self.head_count,
            "head_count_kv": self.head_count_kv,
            "vocab_size": self.vocab_size,
            "merges_count": self.merges_count,
            "has_chat_template": self.has_chat_template,
            "finetune": self.finetune,
            "key_length": self.key_length,
            "value_length": self.value_length,
            "head_count_kv_per_layer": _list_or_none(self.head_count_kv_per_layer),
            "sliding_window": self.sliding_window,
            "sliding_window_pattern": _list_or_none(self.sliding_window_pattern),
            "sliding_window_period": self.sliding_window_period,
            "expert_count": self.expert_count,
            "expert_used_count": self.expert_used_count,
            "feed_forward_length": self.feed_forward_length,
            "rope_dimension_count": self.rope_dimension_count,
            "kv_lora_rank": self.kv_lora_rank,
            "layer_bytes": list(self.layer_bytes),
            "input_bytes": self.input_bytes,
            "output_bytes": self.output_bytes,
            "tied_embeddings": self.tied_embeddings,
            "shards": [str(shard) for shard in self.shards],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelFacts:
        """Inverse of ``to_dict`` (less the tensor list); raises ``ValueError`` on anything else, including
        entries written before a fact was added, so a stale or hand-edited cache entry is simply re-read
        from the file."""
        try:
            return cls(
                path=Path(_require(data["path"], str)),
                file_size=_require(data["file_size"], int),
                name=_require(data["name"], str),
                architecture=_require(data["architecture"], str),
                parameter_count=_require(data["parameter_count"], int),
                quantization=_require(data["quantization"], str),
                gguf_version=_require(data["gguf_version"], int),
                tensor_types={_require(k, str): _require(v, int)
                              for k, v in _require(data["tensor_types"], dict).items()},
                context_length=_optional_int(data.get("context_length")),
                block_count=_optional_int(data.get("block_count")),
                embedding_length=_optional_int(data.get("embedding_length")),
                head_count=_optional_int(data.get("head_count")),
                head_count_kv=_optional_int(data.get("head_count_kv")),
                vocab_size=_optional_int(data.get("vocab_size")),
                merges_count=_require(data["merges_count"], int),
                has_chat_template=_require(data.get("has_chat_template", False), bool),
                finetune=_optional_str(data.get("finetune")),
                key_length=_optional_int(data["key_length"]),
                value_length=_optional_int(data["value_length"]),
                head_count_kv_per_layer=_optional_tuple(data["head_count_kv_per_layer"], int),
                sliding_window=_optional_int(data["sliding_window"]),
                sliding_window_pattern=_optional_tuple(data["sliding_window_pattern"], bool),
                sliding_window_period=_optional_int(data["sliding_window_period"]),
                expert_count=_optional_int(data["expert_count"]),
                expert_used_count=_optional_int(data["expert_used_count"]),
                feed_forward_length=_optional_int(data["feed_forward_length"]),
                rope_dimension_count=_optional_int(data["rope_dimension_count"]),
                kv_lora_rank=_optional_int(data["kv_lora_rank"]),
                layer_bytes=_require_tuple(data["layer_bytes"], int),
                input_bytes=_require(data["input_bytes"], int),
                output_bytes=_require(data["output_bytes"], int),
                tied_embeddings=_require(data["tied_embeddings"], bool),
                shards=tuple(Path(_require(shard, str)) for shard in _require(data["shards"], list)),
            )
        except (KeyError, TypeError, AttributeError) as error:
            raise ValueError(f"not a ModelFacts dict: {error!r}") from error


def read_facts(path: Path) -> ModelFacts:
    """Read a model's facts from its header, raising ``InvalidModelError`` for anything unusable.

    The fixed 24-byte start is checked before anything else, so a random or hostile file is turned away
    before any count it claims is acted on; the rest of the header is read through a memory map that
    is closed again before this returns, and the weights after it are never touched. Given any part of a
    split model, every part is read from the same folder and the facts describe the whole model.
    """
    given = read_local_part(Path(path))
    if given.split_count <= 1:
        return _facts_from([given])
    return _facts_from(local_parts(given))


def read_facts_from_bytes(header: bytes | memoryview, *, file_size: int, name: str) -> ModelFacts:
    """Facts from the first bytes of a file of ``file_size`` bytes named ``name`` (the rest not present).

    Raises ``HeaderIncomplete`` when ``header`` ends before the tensor table does, and
    ``InvalidModelError`` when the bytes are not a usable model or are one part of a split model (use
    ``read_facts_from_parts`` with every part). The weights are checked against ``file_size``, not against
    the bytes given. ``path`` in the facts is ``Path(name)``.
    """
    part = bytes_part(header, file_size, name)
    if part.split_count > 1:
        raise InvalidModelError(
            f"{quoted(name)} is part {part.split_no + 1} of {part.split_count} of a model split into several "
            f"files; all {part.split_count} are needed to read it.")
    return _facts_from([part])


def read_facts_from_parts(parts: Sequence[tuple[bytes | memoryview, int, str]]) -> ModelFacts:
    """Facts of a model from the first bytes of each of its files, given as ``(header, file_size, name)``
    in part order (one item for a model that is not split). Raises as ``read_facts_from_bytes``."""
    if not parts:
        raise ValueError("no parts given")
    parsed = [bytes_part(header, size, name) for header, size, name in parts]
    if len(parsed) == 1 and parsed[0].split_count <= 1:
        return _facts_from(parsed)
    count = len(parsed)
    for number, part in enumerate(parsed, start=1):
        if part.split_count != count or part.split_no + 1 != number:
            said = (f"part {part.split_no + 1} of {part.split_count}" if part.split_count > 1
                    else "a whole model, not a part")
            raise InvalidModelError(
                f"{quoted(part.name)} was given as part {number} of {count}, but its header says it is {said}.")
    return _facts_from(parsed)


# --- dictionary helpers -------------------------------------------------------------------------------


def _require(value: Any, kind: type[_T]) -> _T:
    # bool is an int subclass; a flag where a count belongs means the data is not ours.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise TypeError(f"expected {kind.__name__}, got {type(value).__name__}")
    return value


def _optional_int(value: Any) -> int | None:
    return None if value is None else _require(value, int)


def _optional_str(value: Any) -> str | None:
    return None if value is None else _require(value, str)


def _require_tuple(value: Any, kind: type[_T]) -> tuple[_T, ...]:
    return tuple(_require(item, kind) for item in _require(value, list))


def _optional_tuple(value: Any, kind: type[_T]) -> tuple[_T, ...] | None:
    return None if value is None else _require_tuple(value, kind)


def _list_or_none(value: tuple[_T, ...] | None) -> list[_T] | None:
    return None if value is None else list(value)


# --- facts -----------------------------------------------------------------------------------------------


def _facts_from(parts: Sequence[Part]) -> ModelFacts:
    """The facts of the model made of ``parts`` (in order); raises ``InvalidModelError`` when it is not a
    usable model or its numbers are beyond reason."""
    first = parts[0]
    metadata = first.header.metadata
    name = first.name
    tensors = tuple(
        TensorInfo(t.name, t.type_name, t.shape, t.n_bytes, t.offset, shard)
        for shard, part in enumerate(parts) for t in part.header.tensors)
    problem = _split_problem(parts, tensors) or _rejection(metadata, name, has_tensors=bool(tensors))
    if problem is not None:
        raise InvalidModelError(problem)

    architecture = metadata_string(metadata, "general.architecture") or ""

    def key(template: str) -> str:
        return template.format(arch=architecture)

    def number(template: str) -> int | None:
        return metadata_int(metadata, key(template))

    block_count = number(Keys.LLM.BLOCK_COUNT)
    if block_count is not None and not 0 <= block_count <= _MAX_LAYERS:  # checked first: it sizes a list
        raise InvalidModelError(f"{quoted(name)} has an unreasonable header ({shown(block_count)} layers) "
                                "and looks corrupted.")
    layout = _layer_layout(tensors, block_count)
    if layout is None:
        log.debug("%s: a per-layer tensor beyond block_count %s", name, block_count)
        raise InvalidModelError(damaged_message(name))
    layer_bytes, input_bytes, output_bytes = layout

    per_layer: dict[str, tuple[int, ...] | None] = {}
    for per_layer_key in (Keys.Attention.HEAD_COUNT, Keys.Attention.HEAD_COUNT_KV, Keys.LLM.FEED_FORWARD_LENGTH,
                          Keys.Attention.SLIDING_WINDOW_PATTERN):
        length, per_layer[per_layer_key] = per_layer_array(metadata, key(per_layer_key))
        # llama.cpp refuses a per-layer array whose length is not the layer count.
        if length is not None and block_count is not None and length != block_count:
            log.debug("%s: %s has %d values for %d layers", name, key(per_layer_key), length, block_count)
            raise InvalidModelError(damaged_message(name))
    pattern = per_layer[Keys.Attention.SLIDING_WINDOW_PATTERN]
    period = number(Keys.Attention.SLIDING_WINDOW_PATTERN) if pattern is None else None

    embedding_length = number(Keys.LLM.EMBEDDING_LENGTH)
    head_count = number(Keys.Attention.HEAD_COUNT)
    head_size = embedding_length // head_count if embedding_length is not None and head_count else None
    key_length = number(Keys.Attention.KEY_LENGTH)
    value_length = number(Keys.Attention.VALUE_LENGTH)
    kv_per_layer = per_layer[Keys.Attention.HEAD_COUNT_KV]

    tensor_types: dict[str, int] = {}
    for tensor in tensors:
        tensor_types[tensor.type_name] = tensor_types.get(tensor.type_name, 0) + tensor.n_bytes
    tensor_types = dict(sorted(tensor_types.items(), key=lambda item: (-item[1], item[0])))
    template = metadata_string(metadata, "tokenizer.chat_template")
    vocab = metadata.get("tokenizer.ggml.tokens", (-1, None))[1]
    merges = metadata.get("tokenizer.ggml.merges", (-1, None))[1]
    stem = first.path.stem
    if len(parts) > 1 and (match := SHARD_NAME.match(first.name)):
        stem = match.group("prefix") or stem

    facts = ModelFacts(
        path=first.path,
        file_size=sum(part.size for part in parts),
        name=metadata_string(metadata, "general.name") or stem,
        architecture=architecture,
        parameter_count=sum(math.prod(t.shape) for t in tensors),
        quantization=_quantization_label(metadata, tensor_types),
        gguf_version=first.version,
        tensor_types=tensor_types,
        context_length=number(Keys.LLM.CONTEXT_LENGTH),
        block_count=block_count,
        embedding_length=embedding_length,
        head_count=head_count,
        head_count_kv=number(Keys.Attention.HEAD_COUNT_KV),
        vocab_size=vocab.length if isinstance(vocab, Array) else number(Keys.LLM.VOCAB_SIZE),
        merges_count=merges.length if isinstance(merges, Array) else 0,
        chat_template=template if template and template.strip() else None,
        finetune=metadata_string(metadata, "general.finetune"),
        key_length=key_length if key_length is not None else head_size,
        value_length=value_length if value_length is not None else head_size,
        head_count_kv_per_layer=tuple(kv_per_layer) if kv_per_layer is not None else None,
        sliding_window=number(Keys.Attention.SLIDING_WINDOW),
        sliding_window_pattern=tuple(bool(item) for item in pattern) if pattern is not None else None,
        sliding_window_period=period,
        expert_count=number(Keys.LLM.EXPERT_COUNT),
        expert_used_count=number(Keys.LLM.EXPERT_USED_COUNT),
        feed_forward_length=number(Keys.LLM.FEED_FORWARD_LENGTH),
        rope_dimension_count=number(Keys.Rope.DIMENSION_COUNT),
        kv_lora_rank=number(Keys.Attention.KV_LORA_RANK),
        layer_bytes=layer_bytes,
        input_bytes=input_bytes,
        output_bytes=output_bytes,
        tied_embeddings=not any(t.name == "output.weight" for t in tensors),
        tensors=tensors,
        shards=tuple(part.path for part in parts),
    )
    problem = _implausible(facts)
    if problem is not None:
        raise InvalidModelError(problem)
    return facts


def _split_problem(parts: Sequence[Part], tensors: Sequence[TensorInfo]) -> str | None:
    """Why the parts of a split model do not make one model, if they do not."""
    if len(parts) == 1:
        return None
    first = parts[0]
    if len({t.name for t in tensors}) != len(tensors):
        log.debug("%s: the same tensor in two parts", first.name)
        return damaged_message(first.name)
    expected = metadata_int(first.header.metadata, Keys.Split.LLM_KV_SPLIT_TENSORS_COUNT)
    if expected is not None and expected != len(tensors):
        return (f"The {len(parts)} parts of {quoted(first.name)} hold {len(tensors):,} tensors, but its header "
                f"says there should be {expected:,}. One of the parts may come from another download.")
    return None


def _rejection(metadata: Metadata, name: str, *, has_tensors: bool) -> str | None:
    """Why a well-formed GGUF file is still not a model someone can chat with, if it is not."""
    architecture = metadata_string(metadata, "general.architecture")
    if not architecture:
        return f"{quoted(name)} does not say which model architecture it uses, so it cannot be loaded."
    kind = metadata_string(metadata, "general.type")
    if kind == "adapter":
        return f"{quoted(name)} is a LoRA adapter, not a model. Add the base model it belongs to instead."
    if kind == "mmproj" or architecture == "clip":
        return f"{quoted(name)} is a vision projector that goes with a model, not a model on its own."
    if not has_tensors:
        return f"{quoted(name)} contains no model weights (it may be a tokenizer-only file)."
    return None


def _layer_layout(tensors: Sequence[TensorInfo], block_count: int | None) -> tuple[tuple[int, ...], int, int] | None:
    """Weight bytes per block, of the input layer and of the output layer; ``None`` when a block tensor
    lies beyond the layer count (llama.cpp refuses such a file: it would have tensors left over)."""
    layers = [0] * (block_count or 0)
    input_bytes = output_bytes = 0
    for tensor in tensors:
        match = _LAYER_TENSOR.match(tensor.name)
        if match is not None:
            index = int(match[1])
            if index >= (block_count if block_count is not None else _MAX_LAYERS):
                return None
            if index >= len(layers):
                layers.extend([0] * (index + 1 - len(layers)))
            layers[index] += tensor.n_bytes
        elif tensor.name.startswith(_OUTPUT_PREFIXES):
            output_bytes += tensor.n_bytes
        else:
            input_bytes += tensor.n_bytes
    return tuple(layers), input_bytes, output_bytes


def _implausible(facts: ModelFacts) -> str | None:
    """Why the numbers the forecast computes with cannot describe a real model, if they cannot."""
    checks: list[tuple[int | None, int, str]] = [
        (facts.context_length, _MAX_CONTEXT, "{} tokens of context"),
        (facts.embedding_length, _MAX_WIDTH, "an embedding size of {}"),
        (facts.head_count, _MAX_HEADS, "{} attention heads"),
        (facts.head_count_kv, _MAX_HEADS, "{} key-value heads"),
        (facts.key_length, _MAX_WIDTH, "a key size of {}"),
        (facts.value_length, _MAX_WIDTH, "a value size of {}"),
        (facts.feed_forward_length, _MAX_WIDTH, "a feed-forward size of {}"),
        (facts.sliding_window, _MAX_CONTEXT, "a sliding window of {} tokens"),
        (facts.sliding_window_period, _MAX_LAYERS, "a sliding-window period of {} layers"),
        (facts.expert_count, _MAX_EXPERTS, "{} experts"),
        (facts.expert_used_count, facts.expert_count or _MAX_EXPERTS, "{} experts used per token"),
        (facts.rope_dimension_count, _MAX_WIDTH, "{} rotary dimensions"),
        (facts.kv_lora_rank, _MAX_WIDTH, "a key-value rank of {}"),
        (facts.vocab_size, _MAX_VOCABULARY, "{} tokens in its vocabulary"),
        *((count, _MAX_HEADS, "{} key-value heads") for count in facts.head_count_kv_per_layer or ()),
    ]
    for value, limit, words in checks:
        if value is not None and not 0 <= value <= limit:
            return f"{quoted(facts.path.name)} has an unreasonable header ({words.format(shown(value))}) " \
                   "and looks corrupted."
    return None


def _quantization_label(metadata: Metadata, tensor_types: Mapping[str, int]) -> str:
    file_type = metadata_int(metadata, "general.file_type")
    if file_type is not None:
        try:
            return LlamaFileType(file_type).name.removeprefix("MOSTLY_").removeprefix("ALL_")
        except ValueError:
            log.debug("unknown general.file_type %d; using the tensor types", file_type)
    return next(iter(tensor_types), "unknown")


