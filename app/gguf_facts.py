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
- ``scan_header``: only where the header ends and which part of a split model it is, for a fetcher that
  grows its byte range until the header is complete.
"""

from __future__ import annotations

import logging
import math
import mmap
import re
import struct
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from gguf import GGML_QUANT_SIZES, GGUF_DEFAULT_ALIGNMENT, GGMLQuantizationType, GGUFValueType, Keys, LlamaFileType
from gguf.gguf_writer import SHARD_NAME_FORMAT

from app.errors import InvalidModelError
from app.words import format_bytes, format_count

log = logging.getLogger(__name__)
_T = TypeVar("_T")

__all__ = [
    "HeaderIncomplete",
    "HeaderScan",
    "ModelFacts",
    "TensorInfo",
    "read_facts",
    "read_facts_from_bytes",
    "read_facts_from_parts",
    "scan_header",
    "split_part_name",
]

_MAGIC = b"GGUF"
_HEADER_SIZE = 24  # magic, version, tensor count, KV count
_SUPPORTED_VERSIONS = (2, 3)
# The fewest bytes one tensor-info entry and one KV entry can take (empty name, no dimensions, a
# one-byte value); counts that need more than the file holds cannot be real.
_MIN_TENSOR_INFO_SIZE = 8 + 4 + 4 + 8
_MIN_KV_SIZE = 8 + 4 + 1
# A header that claims more weight bytes than this describes no file anyone could have.
_ABSURD_WEIGHT_BYTES = 1 << 50

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

_GGUF_DEFAULT_ALIGNMENT = int(GGUF_DEFAULT_ALIGNMENT)
_MAX_DIMS = 4  # GGML_MAX_DIMS; llama.cpp refuses tensors with more
_MAX_ARRAY_DEPTH = 4
_KEPT_ARRAY_LENGTH = 4096  # >= _MAX_LAYERS, so every valid per-layer array is kept

# llama.cpp's own split naming (``llama_split_path``: "%s-%05d-of-%05d.gguf"), which it uses to find the
# other parts, so a part under any other name cannot be loaded either.
_SHARD_NAME = re.compile(r"^(?P<prefix>.+)-(?P<no>\d{5})-of-(?P<count>\d{5})\.gguf$")
# A per-layer tensor ("blk.12.attn_q.weight"); the digit limit keeps int() away from huge strings.
_LAYER_TENSOR = re.compile(r"^blk\.(\d{1,9})\.")
_OUTPUT_PREFIXES = ("output.", "output_norm.")

_INT_TYPES = frozenset({
    GGUFValueType.UINT8, GGUFValueType.INT8, GGUFValueType.UINT16, GGUFValueType.INT16,
    GGUFValueType.UINT32, GGUFValueType.INT32, GGUFValueType.UINT64, GGUFValueType.INT64,
})
_KEPT_ITEM_TYPES = _INT_TYPES | {GGUFValueType.BOOL}
_SCALAR_CODES: dict[int, str] = {
    GGUFValueType.UINT8: "B", GGUFValueType.INT8: "b", GGUFValueType.UINT16: "H", GGUFValueType.INT16: "h",
    GGUFValueType.UINT32: "I", GGUFValueType.INT32: "i", GGUFValueType.UINT64: "Q", GGUFValueType.INT64: "q",
    GGUFValueType.FLOAT32: "f", GGUFValueType.FLOAT64: "d", GGUFValueType.BOOL: "?",
}
# The fewest bytes one array item can take, to reject lengths the file cannot hold.
_ITEM_SIZES: dict[int, int] = {
    GGUFValueType.UINT8: 1, GGUFValueType.INT8: 1, GGUFValueType.BOOL: 1,
    GGUFValueType.UINT16: 2, GGUFValueType.INT16: 2,
    GGUFValueType.UINT32: 4, GGUFValueType.INT32: 4, GGUFValueType.FLOAT32: 4,
    GGUFValueType.UINT64: 8, GGUFValueType.INT64: 8, GGUFValueType.FLOAT64: 8,
    GGUFValueType.STRING: 8,
    GGUFValueType.ARRAY: 12,
}
# Pre-GGUF llama.cpp files, as their first four bytes appear on disk.
_LEGACY_MAGICS = (b"lmgg", b"fmgg", b"tjgg")

_Buffer = mmap.mmap | bytes | memoryview


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


class HeaderIncomplete(InvalidModelError):
    """The bytes given end inside the header; ``needed`` is the least number of bytes from the start of
    the file that gets the reader further (often not yet to the end: the header's length is only known
    once it has been read, so fetch at least that many, more if cheap, and try again).

    A subclass of ``InvalidModelError`` so a caller that cannot fetch more still holds an error with a
    sentence to show, while a fetcher can catch exactly this one.
    """

    def __init__(self, name: str, needed: int, have: int) -> None:
        super().__init__(f"Only the first {format_bytes(have)} of {_quoted(name)} were read, and its header is "
                         f"longer than that (at least {format_bytes(needed)}).")
        self.needed = needed


@dataclass(frozen=True)
class HeaderScan:
    """Where a file's header ends and which part of a split model the file is.

    ``length`` is the offset of the tensor data (the header with its padding); ``part`` counts from 1, and
    ``part_count`` is 1 for a file that is not split.
    """

    length: int
    part: int
    part_count: int


def read_facts(path: Path) -> ModelFacts:
    """Read a model's facts from its header, raising ``InvalidModelError`` for anything unusable.

    The fixed 24-byte start is checked before anything else, so a random or hostile file is turned away
    before any count it claims is acted on; the rest of the header is read through a memory map that
    is closed again before this returns, and the weights after it are never touched. Given any part of a
    split model, every part is read from the same folder and the facts describe the whole model.
    """
    given = _read_local_part(Path(path))
    if given.split_count <= 1:
        return _facts_from([given])
    return _facts_from(_local_parts(given))


def read_facts_from_bytes(header: bytes | memoryview, *, file_size: int, name: str) -> ModelFacts:
    """Facts from the first bytes of a file of ``file_size`` bytes named ``name`` (the rest not present).

    Raises ``HeaderIncomplete`` when ``header`` ends before the tensor table does, and
    ``InvalidModelError`` when the bytes are not a usable model or are one part of a split model (use
    ``read_facts_from_parts`` with every part). The weights are checked against ``file_size``, not against
    the bytes given. ``path`` in the facts is ``Path(name)``.
    """
    part = _bytes_part(header, file_size, name)
    if part.split_count > 1:
        raise InvalidModelError(
            f"{_quoted(name)} is part {part.split_no + 1} of {part.split_count} of a model split into several "
            f"files; all {part.split_count} are needed to read it.")
    return _facts_from([part])


def read_facts_from_parts(parts: Sequence[tuple[bytes | memoryview, int, str]]) -> ModelFacts:
    """Facts of a model from the first bytes of each of its files, given as ``(header, file_size, name)``
    in part order (one item for a model that is not split). Raises as ``read_facts_from_bytes``."""
    if not parts:
        raise ValueError("no parts given")
    parsed = [_bytes_part(header, size, name) for header, size, name in parts]
    if len(parsed) == 1 and parsed[0].split_count <= 1:
        return _facts_from(parsed)
    count = len(parsed)
    for number, part in enumerate(parsed, start=1):
        if part.split_count != count or part.split_no + 1 != number:
            said = (f"part {part.split_no + 1} of {part.split_count}" if part.split_count > 1
                    else "a whole model, not a part")
            raise InvalidModelError(
                f"{_quoted(part.name)} was given as part {number} of {count}, but its header says it is {said}.")
    return _facts_from(parsed)


def scan_header(header: bytes | memoryview, *, file_size: int, name: str) -> HeaderScan:
    """Check that ``header`` holds a complete GGUF header and say where it ends, without judging whether
    it is a usable model (a later part of a split model has no architecture). Raises ``HeaderIncomplete``
    and ``InvalidModelError`` as ``read_facts_from_bytes``."""
    part = _bytes_part(header, file_size, name)
    return HeaderScan(part.header.data_start, part.split_no + 1, max(part.split_count, 1))


def split_part_name(name: str, part: int) -> str | None:
    """The file name of part ``part`` (from 1) of the split model that the file ``name`` belongs to, by
    llama.cpp's naming ("NAME-00002-of-00003.gguf"), or ``None`` when ``name`` is not named as a part."""
    match = _SHARD_NAME.match(name)
    if match is None or not 1 <= part <= int(match["count"]):
        return None
    return SHARD_NAME_FORMAT.format(match["prefix"], part, int(match["count"]))


# --- dictionary helpers -------------------------------------------------------------------------------


def _require(value: Any, kind: type[_T]) -> _T:
    # bool is an int subclass; a flag where a count belongs means the data is not ours.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise TypeError(f"expected {kind.__name__}, got {type(value).__name__}")
    return value


def _optional_int(value: Any) -> int | None:
    return None if value is None else _require(value, int)


def _require_tuple(value: Any, kind: type[_T]) -> tuple[_T, ...]:
    return tuple(_require(item, kind) for item in _require(value, list))


def _optional_tuple(value: Any, kind: type[_T]) -> tuple[_T, ...] | None:
    return None if value is None else _require_tuple(value, kind)


def _list_or_none(value: tuple[_T, ...] | None) -> list[_T] | None:
    return None if value is None else list(value)


# --- header checks -------------------------------------------------------------------------------------


def _quoted(name: str) -> str:
    return f"“{name}”"


class _Start(NamedTuple):
    order: str
    version: int
    tensor_count: int
    kv_count: int


def _read_start(path: Path) -> tuple[int, bytes]:
    """The file's size and first bytes, or a plain sentence about why they cannot be had."""
    problem: str | None = None
    head = b""
    size = 0
    name = _quoted(path.name)
    try:
        if path.is_dir():
            problem = f"{name} is a folder, not a model file."
        else:
            size = path.stat().st_size
            with path.open("rb") as handle:
                head = handle.read(_HEADER_SIZE)
    except FileNotFoundError:
        problem = f"{name} could not be found. It may have been moved or deleted."
    except PermissionError:
        problem = f"{name} could not be opened: permission denied."
    except OSError as error:
        problem = f"{name} could not be read ({error.strerror or 'input/output error'})."
    if problem is not None:
        raise InvalidModelError(problem)
    return size, head


def _check_start(head: bytes, size: int, name: str, *, partial: bool) -> _Start:
    """Byte order, version and the two counts, once they are known to be plausible for a file of
    ``size`` bytes. ``partial``: ``head`` may be shorter than the file because the rest is not here."""
    if size == 0:
        raise InvalidModelError(f"{_quoted(name)} is empty (0 bytes). The download may have failed.")
    if partial and len(head) < _HEADER_SIZE and _MAGIC.startswith(head[:4]):
        raise HeaderIncomplete(name, min(_HEADER_SIZE, size), len(head))
    if not head.startswith(_MAGIC):
        raise InvalidModelError(_not_gguf_message(name, head))
    if len(head) < _HEADER_SIZE:
        raise InvalidModelError(
            f"{_quoted(name)} is incomplete: it ends after only {len(head)} bytes. "
            "The download may have been cut short.")

    order = "<"
    version = struct.unpack_from("<I", head, 4)[0]
    if version & 0xFFFF == 0:  # written on a big-endian machine
        order = ">"
        version = struct.unpack_from(">I", head, 4)[0]
    if version not in _SUPPORTED_VERSIONS:
        if version < min(_SUPPORTED_VERSIONS):
            raise InvalidModelError(
                f"{_quoted(name)} uses GGUF version {version}, which is too old for llama.cpp to load. "
                "Look for a newer download of this model.")
        raise InvalidModelError(
            f"{_quoted(name)} uses GGUF version {version}, which is newer than this version of Hearth "
            "understands. Updating Hearth may help.")

    if (order == ">") != (sys.byteorder == "big"):
        raise InvalidModelError(
            f"{_quoted(name)} was converted for computers with the opposite byte order (such as IBM "
            "mainframes) and cannot be loaded here. Look for the standard GGUF file of this model.")

    tensor_count, kv_count = struct.unpack_from(f"{order}QQ", head, 8)
    room = size - _HEADER_SIZE
    if tensor_count * _MIN_TENSOR_INFO_SIZE > room:
        raise InvalidModelError(_absurd_message(name, tensor_count, "tensors"))
    if tensor_count * _MIN_TENSOR_INFO_SIZE + kv_count * _MIN_KV_SIZE > room:
        raise InvalidModelError(_absurd_message(name, kv_count, "metadata entries"))
    return _Start(order, version, tensor_count, kv_count)


def _not_gguf_message(name: str, head: bytes) -> str:
    base = f"{_quoted(name)} is not a GGUF model file."
    lowered = head.lstrip().lower()
    if head.startswith(b"version https://git-lfs"):
        return f"{base} It is a Git LFS pointer; download the actual file instead."
    if lowered.startswith((b"<!doctype", b"<html", b"<?xml")):
        return f"{base} It is a web page, so the download probably saved a page instead of the model."
    if head[:4] in _LEGACY_MAGICS:
        return f"{base} It is in the old GGML format, which llama.cpp no longer reads; look for a GGUF one."
    if len(head) >= 9 and head[8:9] == b"{":
        return f"{base} It looks like a safetensors file; Hearth needs the GGUF version of the model."
    return base


def _shown(count: int) -> str:
    return f"2^{count.bit_length() - 1}" if count >= 1 << 16 and count & (count - 1) == 0 else f"{count:,}"


def _absurd_message(name: str, count: int, what: str) -> str:
    return f"{_quoted(name)} has an unreasonable header ({_shown(count)} {what}) and looks corrupted."


def _damaged_message(name: str) -> str:
    return f"{_quoted(name)} has a damaged header and cannot be read as a GGUF model."


# --- parsing ---------------------------------------------------------------------------------------------


class _PastEnd(Exception):
    """The header points past the end of the bytes at hand; ``needed`` is how far it reaches at least."""

    def __init__(self, needed: int) -> None:
        super().__init__(needed)
        self.needed = needed


class _Damaged(Exception):
    """The header contradicts itself; the text says how, for the debug log."""


class _Truncated(Exception):
    def __init__(self, needed: int) -> None:
        super().__init__(needed)
        self.needed = needed


class _UnknownTensorType(Exception):
    def __init__(self, raw_type: int) -> None:
        super().__init__(raw_type)
        self.raw_type = raw_type


@dataclass(frozen=True)
class _Array:
    """A metadata array, kept as its length: token lists run to hundreds of thousands of items, and
    only short integer and boolean arrays (per-layer head counts, sliding-window layouts) are ever needed
    item by item."""

    item_type: int
    length: int
    items: tuple[int, ...] | None = None


@dataclass(frozen=True)
class _Tensor:
    name: str
    type_name: str
    shape: tuple[int, ...]
    elements: int
    n_bytes: int
    offset: int  # absolute, in its file


_Metadata = dict[str, tuple[int, Any]]


@dataclass(frozen=True)
class _Header:
    metadata: _Metadata
    tensors: list[_Tensor]
    data_start: int
    data_end: int


@dataclass(frozen=True)
class _Part:
    """One parsed file: a whole model, or one part of a split one."""

    path: Path
    size: int
    version: int
    header: _Header

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def split_count(self) -> int:
        return _int(self.header.metadata, Keys.Split.LLM_KV_SPLIT_COUNT) or 0

    @property
    def split_no(self) -> int:
        return _int(self.header.metadata, Keys.Split.LLM_KV_SPLIT_NO) or 0


class _HeaderParser:
    """Walks the GGUF header (layout as in ``gguf.constants``) over a memory map or a byte buffer.

    ``gguf.GGUFReader`` would do this too, but it builds a numpy view for every array item (7 seconds for
    a 150K-token vocabulary here, against milliseconds for skipping arrays by their lengths), it needs a
    whole file on disk (it fails on a header whose weights are not there, the case of a remote file),
    and it cannot say how many more bytes a cut-off header needs. Every read is bounds-checked, so no
    count in the file can make this loop or allocate beyond the bytes at hand.
    """

    def __init__(self, buffer: _Buffer, order: str) -> None:
        self.buffer = buffer
        self.order = order
        self.pos = _HEADER_SIZE

    def parse(self, tensor_count: int, kv_count: int) -> _Header:
        metadata: _Metadata = {}
        for _ in range(kv_count):
            key = self._string().decode("utf-8", errors="replace")
            value_type = self._unpack("I")
            if key in metadata:
                raise _Damaged(f"duplicate key {key!r}")
            metadata[key] = (value_type, self._value(value_type, depth=0))

        infos: list[tuple[bytes, tuple[int, ...], int, int]] = []
        names: set[bytes] = set()
        for _ in range(tensor_count):
            name = self._string()
            if name in names:
                raise _Damaged(f"duplicate tensor {name!r}")
            names.add(name)
            n_dims = self._unpack("I")
            if n_dims > _MAX_DIMS:
                raise _Damaged(f"{n_dims} dimensions")
            shape = tuple(self._unpack("Q") for _ in range(n_dims))
            infos.append((name, shape, self._unpack("I"), self._unpack("Q")))

        alignment = _GGUF_DEFAULT_ALIGNMENT
        if "general.alignment" in metadata:
            value_type, alignment = metadata["general.alignment"]
            if value_type != GGUFValueType.UINT32 or alignment <= 0 or alignment & (alignment - 1):
                raise _Damaged(f"alignment {alignment!r}")
        data_start = -(-self.pos // alignment) * alignment

        tensors: list[_Tensor] = []
        data_end = data_start
        for name, shape, raw_type, offset in infos:
            try:
                tensor_type = GGMLQuantizationType(raw_type)
                block_size, type_size = GGML_QUANT_SIZES[tensor_type]
            except (ValueError, KeyError):
                raise _UnknownTensorType(raw_type) from None
            elements = math.prod(shape)
            n_bytes = elements * type_size // block_size
            tensors.append(_Tensor(name.decode("utf-8", errors="replace"), tensor_type.name, shape, elements,
                                   n_bytes, data_start + offset))
            data_end = max(data_end, data_start + offset + n_bytes)
        return _Header(metadata, tensors, data_start, data_end)

    def _take(self, n_bytes: int) -> int:
        start = self.pos
        if start + n_bytes > len(self.buffer):
            raise _PastEnd(start + n_bytes)
        self.pos = start + n_bytes
        return start

    def _unpack(self, code: str) -> Any:
        layout = self.order + code
        return struct.unpack_from(layout, self.buffer, self._take(struct.calcsize(layout)))[0]

    def _string(self) -> bytes:
        length = self._unpack("Q")
        start = self._take(length)
        return bytes(self.buffer[start:start + length])

    def _value(self, value_type: int, depth: int) -> Any:
        code = _SCALAR_CODES.get(value_type)
        if code is not None:
            return self._unpack(code)
        if value_type == GGUFValueType.STRING:
            return self._string()
        if value_type != GGUFValueType.ARRAY or depth >= _MAX_ARRAY_DEPTH:
            raise _Damaged(f"value type {value_type} at depth {depth}")
        item_type = self._unpack("I")
        length = self._unpack("Q")
        least = length * _ITEM_SIZES.get(item_type, 1)
        if least > len(self.buffer) - self.pos:
            raise _PastEnd(self.pos + least)
        code = _SCALAR_CODES.get(item_type)
        if code is not None:
            start = self._take(length * struct.calcsize(self.order + code))
            items = None
            if item_type in _KEPT_ITEM_TYPES and length <= _KEPT_ARRAY_LENGTH:
                items = struct.unpack_from(f"{self.order}{length}{code}", self.buffer, start)
            return _Array(item_type, length, items)
        if item_type == GGUFValueType.STRING:
            self._skip_strings(length)
        else:
            for _ in range(length):
                self._value(item_type, depth + 1)
        return _Array(item_type, length)

    def _skip_strings(self, count: int) -> None:
        # The hot loop for vocabularies and merge lists, hence no helper calls.
        read_length = struct.Struct(self.order + "Q").unpack_from
        buffer, pos, end = self.buffer, self.pos, len(self.buffer)
        for _ in range(count):
            if pos + 8 > end:
                raise _PastEnd(pos + 8)
            pos += 8 + read_length(buffer, pos)[0]
        if pos > end:
            raise _PastEnd(pos)
        self.pos = pos


def _parse(buffer: _Buffer, size: int, name: str, start: _Start, *, partial: bool) -> _Header:
    """The header of a file of ``size`` bytes from ``buffer`` (all of it, or its first bytes when
    ``partial``). Messages are raised after the except blocks, so the error carries no parser traceback
    (nor, through it, the memory map)."""
    problem: str | None = None
    needed = 0
    try:
        header = _HeaderParser(buffer, start.order).parse(start.tensor_count, start.kv_count)
        if header.data_end > size:
            raise _Truncated(header.data_end)
        return header
    except _Truncated as error:
        if error.needed > _ABSURD_WEIGHT_BYTES:
            problem = (f"{_quoted(name)} has an unreasonable header "
                       f"({format_bytes(error.needed)} of weights) and looks corrupted.")
        else:
            problem = (f"{_quoted(name)} is incomplete: it is {format_bytes(size)} but its header describes "
                       f"{format_bytes(error.needed)} of weights. The download may have been cut short.")
    except _PastEnd as error:
        if partial and error.needed <= size:
            needed = error.needed
        else:
            problem = (f"{_quoted(name)} is incomplete or corrupted: its header runs past the end of the file. "
                       "The download may have been cut short.")
    except _UnknownTensorType as error:
        problem = (f"{_quoted(name)} uses a kind of weights (type {error.raw_type}) that this version of "
                   "Hearth does not recognise. Updating Hearth may help.")
    except OSError as error:
        problem = f"{_quoted(name)} could not be read ({error.strerror or 'input/output error'})."
    except Exception:
        log.debug("could not parse the GGUF header of %s", name, exc_info=True)
        problem = _damaged_message(name)
    if problem is None:
        raise HeaderIncomplete(name, needed, len(buffer))
    raise InvalidModelError(problem)


def _read_local_part(path: Path) -> _Part:
    size, head = _read_start(path)
    start = _check_start(head, size, path.name, partial=False)
    problem: str | None = None
    try:
        with path.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as buffer:
            header = _parse(buffer, size, path.name, start, partial=False)
    except OSError as error:
        problem = f"{_quoted(path.name)} could not be read ({error.strerror or 'input/output error'})."
    if problem is not None:
        raise InvalidModelError(problem)
    return _Part(path, size, start.version, header)


def _bytes_part(header: bytes | memoryview, size: int, name: str) -> _Part:
    buffer = memoryview(header)
    if buffer.format != "B" or buffer.ndim != 1:
        buffer = buffer.cast("B")
    if len(buffer) > size:
        raise ValueError(f"{len(buffer)} bytes given for a file of {size}")
    partial = len(buffer) < size
    start = _check_start(bytes(buffer[:_HEADER_SIZE]), size, name, partial=partial)
    return _Part(Path(name), size, start.version, _parse(buffer, size, name, start, partial=partial))


def _local_parts(given: _Part) -> list[_Part]:
    """Every part of the split model ``given`` belongs to, found by llama.cpp's naming in its folder."""
    count, number = given.split_count, given.split_no + 1
    match = _SHARD_NAME.match(given.name)
    if match is None or int(match["count"]) != count or int(match["no"]) != number:
        raise InvalidModelError(
            f"{_quoted(given.name)} is part {number} of {count} of a model split into several files, but its "
            f"name does not end in “-{number:05d}-of-{count:05d}.gguf”, so its other parts cannot be found. "
            "Keep the names the parts were published with.")
    parts: list[_Part] = []
    for other in range(1, count + 1):
        if other == number:
            parts.append(given)
            continue
        sibling = given.path.with_name(split_part_name(given.name, other) or "")
        if not sibling.is_file():
            raise InvalidModelError(
                f"{_quoted(given.name)} is part {number} of {count}, but part {other} ({sibling.name}) is not in "
                f"the same folder. Put all {count} parts together.")
        part = _read_local_part(sibling)
        if part.split_count != count or part.split_no + 1 != other:
            said = (f"part {part.split_no + 1} of {part.split_count}" if part.split_count > 1
                    else "a whole model, not a part")
            raise InvalidModelError(
                f"{_quoted(sibling.name)} does not belong with {_quoted(given.name)}: its header says it is {said}.")
        parts.append(part)
    return parts


# --- facts -----------------------------------------------------------------------------------------------


def _facts_from(parts: Sequence[_Part]) -> ModelFacts:
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

    architecture = _string(metadata, "general.architecture") or ""

    def key(template: str) -> str:
        return template.format(arch=architecture)

    def number(template: str) -> int | None:
        return _int(metadata, key(template))

    block_count = number(Keys.LLM.BLOCK_COUNT)
    if block_count is not None and not 0 <= block_count <= _MAX_LAYERS:  # checked first: it sizes a list
        raise InvalidModelError(f"{_quoted(name)} has an unreasonable header ({_shown(block_count)} layers) "
                                "and looks corrupted.")
    layout = _layer_layout(tensors, block_count)
    if layout is None:
        log.debug("%s: a per-layer tensor beyond block_count %s", name, block_count)
        raise InvalidModelError(_damaged_message(name))
    layer_bytes, input_bytes, output_bytes = layout

    per_layer: dict[str, tuple[int, ...] | None] = {}
    for per_layer_key in (Keys.Attention.HEAD_COUNT, Keys.Attention.HEAD_COUNT_KV, Keys.LLM.FEED_FORWARD_LENGTH,
                          Keys.Attention.SLIDING_WINDOW_PATTERN):
        length, per_layer[per_layer_key] = _per_layer(metadata, key(per_layer_key))
        # llama.cpp refuses a per-layer array whose length is not the layer count.
        if length is not None and block_count is not None and length != block_count:
            log.debug("%s: %s has %d values for %d layers", name, key(per_layer_key), length, block_count)
            raise InvalidModelError(_damaged_message(name))
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
    template = _string(metadata, "tokenizer.chat_template")
    vocab = metadata.get("tokenizer.ggml.tokens", (-1, None))[1]
    merges = metadata.get("tokenizer.ggml.merges", (-1, None))[1]
    stem = first.path.stem
    if len(parts) > 1 and (match := _SHARD_NAME.match(first.name)):
        stem = match.group("prefix") or stem

    facts = ModelFacts(
        path=first.path,
        file_size=sum(part.size for part in parts),
        name=_string(metadata, "general.name") or stem,
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
        vocab_size=vocab.length if isinstance(vocab, _Array) else number(Keys.LLM.VOCAB_SIZE),
        merges_count=merges.length if isinstance(merges, _Array) else 0,
        chat_template=template if template and template.strip() else None,
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


def _split_problem(parts: Sequence[_Part], tensors: Sequence[TensorInfo]) -> str | None:
    """Why the parts of a split model do not make one model, if they do not."""
    if len(parts) == 1:
        return None
    first = parts[0]
    if len({t.name for t in tensors}) != len(tensors):
        log.debug("%s: the same tensor in two parts", first.name)
        return _damaged_message(first.name)
    expected = _int(first.header.metadata, Keys.Split.LLM_KV_SPLIT_TENSORS_COUNT)
    if expected is not None and expected != len(tensors):
        return (f"The {len(parts)} parts of {_quoted(first.name)} hold {len(tensors):,} tensors, but its header "
                f"says there should be {expected:,}. One of the parts may come from another download.")
    return None


def _rejection(metadata: _Metadata, name: str, *, has_tensors: bool) -> str | None:
    """Why a well-formed GGUF file is still not a model someone can chat with, if it is not."""
    architecture = _string(metadata, "general.architecture")
    if not architecture:
        return f"{_quoted(name)} does not say which model architecture it uses, so it cannot be loaded."
    kind = _string(metadata, "general.type")
    if kind == "adapter":
        return f"{_quoted(name)} is a LoRA adapter, not a model. Add the base model it belongs to instead."
    if kind == "mmproj" or architecture == "clip":
        return f"{_quoted(name)} is a vision projector that goes with a model, not a model on its own."
    if not has_tensors:
        return f"{_quoted(name)} contains no model weights (it may be a tokenizer-only file)."
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
            return f"{_quoted(facts.path.name)} has an unreasonable header ({words.format(_shown(value))}) " \
                   "and looks corrupted."
    return None


def _quantization_label(metadata: _Metadata, tensor_types: Mapping[str, int]) -> str:
    file_type = _int(metadata, "general.file_type")
    if file_type is not None:
        try:
            return LlamaFileType(file_type).name.removeprefix("MOSTLY_").removeprefix("ALL_")
        except ValueError:
            log.debug("unknown general.file_type %d; using the tensor types", file_type)
    return next(iter(tensor_types), "unknown")


def _string(metadata: _Metadata, key: str) -> str | None:
    value_type, value = metadata.get(key, (-1, None))
    if value_type != GGUFValueType.STRING or not isinstance(value, bytes):
        return None
    return value.decode("utf-8", errors="replace")


def _int(metadata: _Metadata, key: str) -> int | None:
    """An integer fact; per-layer arrays (some architectures vary head counts by layer) give their
    largest value, the one that bounds memory use."""
    value_type, value = metadata.get(key, (-1, None))
    if value_type in _INT_TYPES and isinstance(value, int):
        return value
    if isinstance(value, _Array) and value.item_type in _INT_TYPES and value.items:
        return max(value.items)
    return None


def _per_layer(metadata: _Metadata, key: str) -> tuple[int | None, tuple[int, ...] | None]:
    """The length and items of an integer or boolean array (items ``None`` when too long to have been
    kept; both ``None`` for a scalar or a missing key)."""
    value = metadata.get(key, (-1, None))[1]
    if not isinstance(value, _Array) or value.item_type not in _KEPT_ITEM_TYPES:
        return None, None
    return value.length, value.items
