"""What a GGUF model file says about itself, read without loading its weights.

The library shows these facts before a model is ever loaded, and the engine uses them to pick a context
size, so reading them has to be cheap (only the header is touched) and safe on anything a person might
pick in a file dialog: every failure becomes an ``InvalidModelError`` with a sentence they can act on.
"""

from __future__ import annotations

import logging
import math
import mmap
import struct
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from gguf import GGML_QUANT_SIZES, GGUF_DEFAULT_ALIGNMENT, GGMLQuantizationType, GGUFValueType, LlamaFileType

from app.errors import InvalidModelError
from app.units import format_bytes, format_count

log = logging.getLogger(__name__)
_T = TypeVar("_T")

__all__ = ["ModelFacts", "read_facts"]

_MAGIC = b"GGUF"
_HEADER_SIZE = 24  # magic, version, tensor count, KV count
_SUPPORTED_VERSIONS = (2, 3)
# The fewest bytes one tensor-info entry and one KV entry can take (empty name, no dimensions, a
# one-byte value); counts that need more than the file holds cannot be real.
_MIN_TENSOR_INFO_SIZE = 8 + 4 + 4 + 8
_MIN_KV_SIZE = 8 + 4 + 1
# A header that claims more weight bytes than this describes no file anyone could have.
_ABSURD_WEIGHT_BYTES = 1 << 50

_GGUF_DEFAULT_ALIGNMENT = int(GGUF_DEFAULT_ALIGNMENT)
_MAX_DIMS = 4  # GGML_MAX_DIMS; llama.cpp refuses tensors with more
_MAX_ARRAY_DEPTH = 4
_KEPT_ARRAY_LENGTH = 4096

_INT_TYPES = frozenset({
    GGUFValueType.UINT8, GGUFValueType.INT8, GGUFValueType.UINT16, GGUFValueType.INT16,
    GGUFValueType.UINT32, GGUFValueType.INT32, GGUFValueType.UINT64, GGUFValueType.INT64,
})
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


@dataclass(frozen=True)
class ModelFacts:
    """A model file's header facts; ``None`` means the file does not say."""

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
    head_count_kv: int | None = None
    vocab_size: int | None = None
    chat_template: str | None = None
    # Kept as a field rather than derived from ``chat_template`` so facts restored by ``from_dict``
    # (which leaves the template text behind) still know whether the file has one.
    has_chat_template: bool = False

    def __post_init__(self) -> None:
        if self.chat_template is not None and not self.has_chat_template:
            object.__setattr__(self, "has_chat_template", True)

    @property
    def parameter_label(self) -> str:
        """Size the way model cards name it ("7.6B"), which is what people search and compare by."""
        return format_count(self.parameter_count)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form for caches; the template text is left out because it can be many kilobytes and
        the engine reads it from the file anyway."""
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
            "has_chat_template": self.has_chat_template,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelFacts:
        """Inverse of ``to_dict``; raises ``ValueError`` on anything else so a stale or hand-edited cache
        entry can simply be re-read from the file."""
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
                has_chat_template=_require(data.get("has_chat_template", False), bool),
            )
        except (KeyError, TypeError, AttributeError) as error:
            raise ValueError(f"not a ModelFacts dict: {error!r}") from error


def _require(value: Any, kind: type[_T]) -> _T:
    # bool is an int subclass; a flag where a count belongs means the data is not ours.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise TypeError(f"expected {kind.__name__}, got {type(value).__name__}")
    return value


def _optional_int(value: Any) -> int | None:
    return None if value is None else _require(value, int)


def read_facts(path: Path) -> ModelFacts:
    """Read a model's facts from its header, raising ``InvalidModelError`` for anything unusable.

    The fixed 24-byte start is checked before anything else, so a random or hostile file is turned away
    before any count it claims is acted on; the rest of the header is read through a memory map that
    is closed again before this returns, and the weights after it are never touched.
    """
    path = Path(path)
    size, order, version, tensor_count, kv_count = _check_header(path)
    header = _parse(path, size, order, tensor_count, kv_count)
    problem = _rejection(header, path)
    if problem is not None:
        raise InvalidModelError(problem)
    return _facts_from(header, path, size, version)


# --- header checks -------------------------------------------------------------------------------------


def _quoted(path: Path) -> str:
    return f"“{path.name}”"


def _check_header(path: Path) -> tuple[int, str, int, int, int]:
    """File size, byte order, version and the two counts, once they are known to be plausible."""
    problem: str | None = None
    head = b""
    size = 0
    try:
        if path.is_dir():
            problem = f"{_quoted(path)} is a folder, not a model file."
        else:
            size = path.stat().st_size
            with path.open("rb") as handle:
                head = handle.read(_HEADER_SIZE)
    except FileNotFoundError:
        problem = f"{_quoted(path)} could not be found. It may have been moved or deleted."
    except PermissionError:
        problem = f"{_quoted(path)} could not be opened: permission denied."
    except OSError as error:
        problem = f"{_quoted(path)} could not be read ({error.strerror or 'input/output error'})."
    if problem is not None:
        raise InvalidModelError(problem)

    if size == 0:
        raise InvalidModelError(f"{_quoted(path)} is empty (0 bytes). The download may have failed.")
    if not head.startswith(_MAGIC):
        raise InvalidModelError(_not_gguf_message(path, head))
    if len(head) < _HEADER_SIZE:
        raise InvalidModelError(
            f"{_quoted(path)} is incomplete: it ends after only {len(head)} bytes. "
            "The download may have been cut short.")

    order = "<"
    version = struct.unpack_from("<I", head, 4)[0]
    if version & 0xFFFF == 0:  # written on a big-endian machine
        order = ">"
        version = struct.unpack_from(">I", head, 4)[0]
    if version not in _SUPPORTED_VERSIONS:
        if version < min(_SUPPORTED_VERSIONS):
            raise InvalidModelError(
                f"{_quoted(path)} uses GGUF version {version}, which is too old for llama.cpp to load. "
                "Look for a newer download of this model.")
        raise InvalidModelError(
            f"{_quoted(path)} uses GGUF version {version}, which is newer than this version of Hearth "
            "understands. Updating Hearth may help.")

    if (order == ">") != (sys.byteorder == "big"):
        raise InvalidModelError(
            f"{_quoted(path)} was converted for computers with the opposite byte order (such as IBM "
            "mainframes) and cannot be loaded here. Look for the standard GGUF file of this model.")

    tensor_count, kv_count = struct.unpack_from(f"{order}QQ", head, 8)
    room = size - _HEADER_SIZE
    if tensor_count * _MIN_TENSOR_INFO_SIZE > room:
        raise InvalidModelError(_absurd_message(path, tensor_count, "tensors"))
    if tensor_count * _MIN_TENSOR_INFO_SIZE + kv_count * _MIN_KV_SIZE > room:
        raise InvalidModelError(_absurd_message(path, kv_count, "metadata entries"))
    return size, order, version, tensor_count, kv_count


def _not_gguf_message(path: Path, head: bytes) -> str:
    base = f"{_quoted(path)} is not a GGUF model file."
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


def _absurd_message(path: Path, count: int, what: str) -> str:
    shown = f"2^{count.bit_length() - 1}" if count >= 1 << 16 and count & (count - 1) == 0 else f"{count:,}"
    return f"{_quoted(path)} has an unreasonable header ({shown} {what}) and looks corrupted."


# --- parsing ---------------------------------------------------------------------------------------------


class _PastEnd(Exception):
    """The header points past the end of the file."""


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
    only short integer arrays (per-layer head counts) are ever needed item by item."""

    item_type: int
    length: int
    items: tuple[int, ...] | None = None


@dataclass(frozen=True)
class _Tensor:
    type_name: str
    elements: int
    n_bytes: int


@dataclass(frozen=True)
class _Header:
    metadata: dict[str, tuple[int, Any]]
    tensors: list[_Tensor]
    data_end: int


class _HeaderParser:
    """Walks the GGUF header (layout as in ``gguf.constants``) over a memory map.

    ``gguf.GGUFReader`` would do this too, but it builds a numpy view for every array item: 7 seconds
    for a 150K-token vocabulary here, against milliseconds for skipping arrays by their lengths. Every
    read is bounds-checked, so no count in the file can make this loop or allocate beyond its size.
    """

    def __init__(self, buffer: mmap.mmap, order: str) -> None:
        self.buffer = buffer
        self.order = order
        self.pos = _HEADER_SIZE

    def parse(self, tensor_count: int, kv_count: int) -> _Header:
        metadata: dict[str, tuple[int, Any]] = {}
        for _ in range(kv_count):
            key = self._string().decode("utf-8", errors="replace")
            value_type = self._unpack("I")
            if key in metadata:
                raise _Damaged(f"duplicate key {key!r}")
            metadata[key] = (value_type, self._value(value_type, depth=0))

        infos: list[tuple[int, int, int]] = []
        names: set[bytes] = set()
        for _ in range(tensor_count):
            name = self._string()
            if name in names:
                raise _Damaged(f"duplicate tensor {name!r}")
            names.add(name)
            n_dims = self._unpack("I")
            if n_dims > _MAX_DIMS:
                raise _Damaged(f"{n_dims} dimensions")
            elements = math.prod(self._unpack("Q") for _ in range(n_dims))
            infos.append((elements, self._unpack("I"), self._unpack("Q")))

        alignment = _GGUF_DEFAULT_ALIGNMENT
        if "general.alignment" in metadata:
            value_type, alignment = metadata["general.alignment"]
            if value_type != GGUFValueType.UINT32 or alignment <= 0 or alignment & (alignment - 1):
                raise _Damaged(f"alignment {alignment!r}")
        data_start = -(-self.pos // alignment) * alignment

        tensors: list[_Tensor] = []
        data_end = data_start
        for elements, raw_type, offset in infos:
            try:
                tensor_type = GGMLQuantizationType(raw_type)
                block_size, type_size = GGML_QUANT_SIZES[tensor_type]
            except (ValueError, KeyError):
                raise _UnknownTensorType(raw_type) from None
            n_bytes = elements * type_size // block_size
            tensors.append(_Tensor(tensor_type.name, elements, n_bytes))
            data_end = max(data_end, data_start + offset + n_bytes)
        return _Header(metadata, tensors, data_end)

    def _take(self, n_bytes: int) -> int:
        start = self.pos
        if start + n_bytes > len(self.buffer):
            raise _PastEnd
        self.pos = start + n_bytes
        return start

    def _unpack(self, code: str) -> Any:
        layout = self.order + code
        return struct.unpack_from(layout, self.buffer, self._take(struct.calcsize(layout)))[0]

    def _string(self) -> bytes:
        length = self._unpack("Q")
        start = self._take(length)
        return self.buffer[start:start + length]

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
        if length * _ITEM_SIZES.get(item_type, 1) > len(self.buffer) - self.pos:
            raise _PastEnd
        code = _SCALAR_CODES.get(item_type)
        if code is not None:
            start = self._take(length * struct.calcsize(self.order + code))
            items = None
            if item_type in _INT_TYPES and length <= _KEPT_ARRAY_LENGTH:
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
                raise _PastEnd
            pos += 8 + read_length(buffer, pos)[0]
        if pos > end:
            raise _PastEnd
        self.pos = pos


def _parse(path: Path, size: int, order: str, tensor_count: int, kv_count: int) -> _Header:
    # Messages are raised after the except blocks, so the InvalidModelError carries no parser traceback.
    problem: str
    try:
        with path.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as buffer:
            header = _HeaderParser(buffer, order).parse(tensor_count, kv_count)
        if header.data_end > size:
            raise _Truncated(header.data_end)
        return header
    except _Truncated as error:
        if error.needed > _ABSURD_WEIGHT_BYTES:
            problem = (f"{_quoted(path)} has an unreasonable header "
                       f"({format_bytes(error.needed)} of weights) and looks corrupted.")
        else:
            problem = (f"{_quoted(path)} is incomplete: it is {format_bytes(size)} but its header describes "
                       f"{format_bytes(error.needed)} of weights. The download may have been cut short.")
    except _PastEnd:
        problem = (f"{_quoted(path)} is incomplete or corrupted: its header runs past the end of the file. "
                   "The download may have been cut short.")
    except _UnknownTensorType as error:
        problem = (f"{_quoted(path)} uses a kind of weights (type {error.raw_type}) that this version of "
                   "Hearth does not recognise. Updating Hearth may help.")
    except OSError as error:
        problem = f"{_quoted(path)} could not be read ({error.strerror or 'input/output error'})."
    except Exception:
        log.debug("could not parse the GGUF header of %s", path, exc_info=True)
        problem = f"{_quoted(path)} has a damaged header and cannot be read as a GGUF model."
    raise InvalidModelError(problem)


def _rejection(header: _Header, path: Path) -> str | None:
    """Why a well-formed GGUF file is still not a model someone can chat with, if it is not."""
    architecture = _string(header, "general.architecture")
    if not architecture:
        return f"{_quoted(path)} does not say which model architecture it uses, so it cannot be loaded."
    kind = _string(header, "general.type")
    if kind == "adapter":
        return f"{_quoted(path)} is a LoRA adapter, not a model. Add the base model it belongs to instead."
    if kind == "mmproj" or architecture == "clip":
        return f"{_quoted(path)} is a vision projector that goes with a model, not a model on its own."
    if not header.tensors:
        return f"{_quoted(path)} contains no model weights (it may be a tokenizer-only file)."
    return None


def _facts_from(header: _Header, path: Path, size: int, version: int) -> ModelFacts:
    architecture = _string(header, "general.architecture") or ""
    tensor_types: dict[str, int] = {}
    for tensor in header.tensors:
        tensor_types[tensor.type_name] = tensor_types.get(tensor.type_name, 0) + tensor.n_bytes
    tensor_types = dict(sorted(tensor_types.items(), key=lambda item: (-item[1], item[0])))

    template = _string(header, "tokenizer.chat_template")
    vocab = header.metadata.get("tokenizer.ggml.tokens", (-1, None))[1]
    return ModelFacts(
        path=path,
        file_size=size,
        name=_string(header, "general.name") or path.stem,
        architecture=architecture,
        parameter_count=sum(tensor.elements for tensor in header.tensors),
        quantization=_quantization_label(header, tensor_types),
        gguf_version=version,
        tensor_types=tensor_types,
        context_length=_int(header, f"{architecture}.context_length"),
        block_count=_int(header, f"{architecture}.block_count"),
        embedding_length=_int(header, f"{architecture}.embedding_length"),
        head_count=_int(header, f"{architecture}.attention.head_count"),
        head_count_kv=_int(header, f"{architecture}.attention.head_count_kv"),
        vocab_size=(vocab.length if isinstance(vocab, _Array)
                    else _int(header, f"{architecture}.vocab_size")),
        chat_template=template if template and template.strip() else None,
    )


def _quantization_label(header: _Header, tensor_types: Mapping[str, int]) -> str:
    file_type = _int(header, "general.file_type")
    if file_type is not None:
        try:
            return LlamaFileType(file_type).name.removeprefix("MOSTLY_").removeprefix("ALL_")
        except ValueError:
            log.debug("unknown general.file_type %d; using the tensor types", file_type)
    return next(iter(tensor_types), "unknown")


def _string(header: _Header, key: str) -> str | None:
    value_type, value = header.metadata.get(key, (-1, None))
    if value_type != GGUFValueType.STRING or not isinstance(value, bytes):
        return None
    return value.decode("utf-8", errors="replace")


def _int(header: _Header, key: str) -> int | None:
    """An integer fact; per-layer arrays (some architectures vary head counts by layer) give their
    largest value, the one that bounds memory use."""
    value_type, value = header.metadata.get(key, (-1, None))
    if value_type in _INT_TYPES and isinstance(value, int):
        return value
    if isinstance(value, _Array) and value.items:
        return max(value.items)
    return None
