"""The GGUF header, read byte by byte: the fixed start, the metadata and the tensor table, and the parts of a
split model.

Every read is bounds-checked against the bytes at hand (a memory map of a local file, or the first bytes of a
file on the Hub), so no count in a file can make the parser loop or allocate beyond them; where the bytes end
inside the header, ``HeaderIncomplete`` says how many more are needed. What the header means for a model (its
facts, and whether they are plausible) is ``app.gguf.facts``.
"""

from __future__ import annotations

import logging
import math
import mmap
import re
import struct
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from gguf import GGML_QUANT_SIZES, GGUF_DEFAULT_ALIGNMENT, GGMLQuantizationType, GGUFValueType, Keys
from gguf.gguf_writer import SHARD_NAME_FORMAT

from app.errors import InvalidModelError
from app.words import format_bytes

log = logging.getLogger(__name__)

_MAGIC = b"GGUF"
_HEADER_SIZE = 24  # magic, version, tensor count, KV count
_SUPPORTED_VERSIONS = (2, 3)
# The fewest bytes one tensor-info entry and one KV entry can take (empty name, no dimensions, a
# one-byte value); counts that need more than the file holds cannot be real.
_MIN_TENSOR_INFO_SIZE = 8 + 4 + 4 + 8
_MIN_KV_SIZE = 8 + 4 + 1
# More tensors or metadata entries than any model has: a file whose counts are below it but do not fit in its size
# was cut short, not made up.
_PLAUSIBLE_COUNT = 1 << 20
# A header that claims more weight bytes than this describes no file anyone could have.
_ABSURD_WEIGHT_BYTES = 1 << 50

# Limits on what a header may hold, checked before llama.cpp sees the file. llama.cpp reads metadata keys and
# tensor names in quadratic time (each is compared with all before it): measured here, 8,000 keys took 0.5 s to
# open, 16,000 5.5 s, 32,000 46 s, and 16,000 tensors 1.5 s, 32,000 5 s; a 6.7 MB file with 200,000 keys hung the
# load. Real models have 20-100 keys and up to about 1,100 tensors (a 671B mixture of experts with merged expert
# tensors; the older unmerged layouts stay under 4,000), so the limits leave them a margin of 40 and 15 and keep
# the worst case under a second or two. Arrays: the largest vocabularies have 262,144 tokens and the largest merge
# lists about 500,000 pairs; 2^24 items (the vocabulary limit in ``facts.py``) is 30 times that. Strings: chat
# templates run to tens of kilobytes and a whole ``tokenizer.huggingface.json`` to about 20 MB, hence 64 MiB for a
# value; a token or merge is at most a few hundred bytes, hence 64 KiB for an item of a string array (and a key or
# tensor name: the format allows 65,535 bytes).
MAX_METADATA_KEYS = 4096
MAX_TENSORS = 16_384
MAX_ARRAY_ITEMS = 1 << 24
MAX_STRING_BYTES = 1 << 26
MAX_NAME_BYTES = MAX_ITEM_BYTES = 1 << 16

_GGUF_DEFAULT_ALIGNMENT = int(GGUF_DEFAULT_ALIGNMENT)
_MAX_DIMS = 4  # GGML_MAX_DIMS; llama.cpp refuses tensors with more
_MAX_ARRAY_DEPTH = 4
_KEPT_ARRAY_LENGTH = 4096  # >= the most layers a model may have (facts.py), so every valid per-layer array is kept

# llama.cpp's own split naming (``llama_split_path``: "%s-%05d-of-%05d.gguf"), which it uses to find the
# other parts, so a part under any other name cannot be loaded either.
SHARD_NAME = re.compile(r"^(?P<prefix>.+)-(?P<no>\d{5})-of-(?P<count>\d{5})\.gguf$")

INT_TYPES = frozenset({
    GGUFValueType.UINT8, GGUFValueType.INT8, GGUFValueType.UINT16, GGUFValueType.INT16,
    GGUFValueType.UINT32, GGUFValueType.INT32, GGUFValueType.UINT64, GGUFValueType.INT64,
})
_KEPT_ITEM_TYPES = INT_TYPES | {GGUFValueType.BOOL}
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


class HeaderIncomplete(InvalidModelError):
    """The bytes given end inside the header; ``needed`` is the least number of bytes from the start of
    the file that gets the reader further (often not yet to the end: the header's length is only known
    once it has been read, so fetch at least that many, more if cheap, and try again).

    A subclass of ``InvalidModelError`` so a caller that cannot fetch more still holds an error with a
    sentence to show, while a fetcher can catch exactly this one.
    """

    def __init__(self, name: str, needed: int, have: int) -> None:
        super().__init__(f"Only the first {format_bytes(have)} of {quoted(name)} were read, and its header is "
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


def scan_header(header: bytes | memoryview, *, file_size: int, name: str) -> HeaderScan:
    """Check that ``header`` holds a complete GGUF header and say where it ends, without judging whether
    it is a usable model (a later part of a split model has no architecture). Raises ``HeaderIncomplete``
    and ``InvalidModelError`` as ``read_facts_from_bytes``."""
    part = bytes_part(header, file_size, name)
    return HeaderScan(part.header.data_start, part.split_no + 1, max(part.split_count, 1))


def split_part_name(name: str, part: int) -> str | None:
    """The file name of part ``part`` (from 1) of the split model that the file ``name`` belongs to, by
    llama.cpp's naming ("NAME-00002-of-00003.gguf"), or ``None`` when ``name`` is not named as a part."""
    match = SHARD_NAME.match(name)
    if match is None or not 1 <= part <= int(match["count"]):
        return None
    return SHARD_NAME_FORMAT.format(match["prefix"], part, int(match["count"]))


# --- header checks -------------------------------------------------------------------------------------


def quoted(name: str) -> str:
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
    name = quoted(path.name)
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
        raise InvalidModelError(f"{quoted(name)} is empty (0 bytes). The download may have failed.")
    if partial and len(head) < _HEADER_SIZE and _MAGIC.startswith(head[:4]):
        raise HeaderIncomplete(name, min(_HEADER_SIZE, size), len(head))
    if not head.startswith(_MAGIC):
        raise InvalidModelError(_not_gguf_message(name, head))
    if len(head) < _HEADER_SIZE:
        raise InvalidModelError(
            f"{quoted(name)} is incomplete: it ends after only {len(head)} bytes. "
            "The download may have been cut short.")

    order = "<"
    version = struct.unpack_from("<I", head, 4)[0]
    if version & 0xFFFF == 0:  # written on a big-endian machine
        order = ">"
        version = struct.unpack_from(">I", head, 4)[0]
    if version not in _SUPPORTED_VERSIONS:
        if version < min(_SUPPORTED_VERSIONS):
            raise InvalidModelError(
                f"{quoted(name)} uses GGUF version {version}, which is too old for llama.cpp to load. "
                "Look for a newer download of this model.")
        raise InvalidModelError(
            f"{quoted(name)} uses GGUF version {version}, which is newer than this version of Hearth "
            "understands. Updating Hearth may help.")

    if (order == ">") != (sys.byteorder == "big"):
        raise InvalidModelError(
            f"{quoted(name)} was converted for computers with the opposite byte order (such as IBM "
            "mainframes) and cannot be loaded here. Look for the standard GGUF file of this model.")

    tensor_count, kv_count = struct.unpack_from(f"{order}QQ", head, 8)
    room = size - _HEADER_SIZE
    if tensor_count * _MIN_TENSOR_INFO_SIZE + kv_count * _MIN_KV_SIZE > room and \
            max(tensor_count, kv_count) <= _PLAUSIBLE_COUNT:  # real counts in a file too short for them
        raise InvalidModelError(past_end_message(name))
    if tensor_count > MAX_TENSORS or tensor_count * _MIN_TENSOR_INFO_SIZE > room:
        raise InvalidModelError(_absurd_message(name, tensor_count, "tensors"))
    if kv_count > MAX_METADATA_KEYS or tensor_count * _MIN_TENSOR_INFO_SIZE + kv_count * _MIN_KV_SIZE > room:
        raise InvalidModelError(_absurd_message(name, kv_count, "metadata entries"))
    return _Start(order, version, tensor_count, kv_count)


def _not_gguf_message(name: str, head: bytes) -> str:
    base = f"{quoted(name)} is not a GGUF model file."
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


def shown(count: int) -> str:
    return f"2^{count.bit_length() - 1}" if count >= 1 << 16 and count & (count - 1) == 0 else f"{count:,}"


def _absurd_message(name: str, count: int, what: str) -> str:
    return f"{quoted(name)} has an unreasonable header ({shown(count)} {what}) and looks corrupted."


def past_end_message(name: str) -> str:
    return (f"{quoted(name)} is incomplete or corrupted: its header runs past the end of the file. "
            "The download may have been cut short.")


def damaged_message(name: str) -> str:
    return f"{quoted(name)} has a damaged header and cannot be read as a GGUF model."


# --- parsing ---------------------------------------------------------------------------------------------


class _PastEnd(Exception):
    """The header points past the end of the bytes at hand; ``needed`` is how far it reaches at least."""

    def __init__(self, needed: int) -> None:
        super().__init__(needed)
        self.needed = needed


class _Damaged(Exception):
    """The header contradicts itself; the text says how, for the debug log."""


class _Absurd(Exception):
    """A count or a size beyond the limits above: ``count`` of ``what``, for the sentence."""

    def __init__(self, count: int, what: str) -> None:
        super().__init__(count, what)
        self.count, self.what = count, what


class _Truncated(Exception):
    def __init__(self, needed: int) -> None:
        super().__init__(needed)
        self.needed = needed


class _UnknownTensorType(Exception):
    def __init__(self, raw_type: int) -> None:
        super().__init__(raw_type)
        self.raw_type = raw_type


@dataclass(frozen=True)
class Array:
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


Metadata = dict[str, tuple[int, Any]]


@dataclass(frozen=True)
class _Header:
    metadata: Metadata
    tensors: list[_Tensor]
    data_start: int
    data_end: int


@dataclass(frozen=True)
class Part:
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
        return metadata_int(self.header.metadata, Keys.Split.LLM_KV_SPLIT_COUNT) or 0

    @property
    def split_no(self) -> int:
        return metadata_int(self.header.metadata, Keys.Split.LLM_KV_SPLIT_NO) or 0


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
        metadata: Metadata = {}
        for _ in range(kv_count):
            key = self._string(MAX_NAME_BYTES, "bytes in a metadata name").decode("utf-8", errors="replace")
            value_type = self._unpack("I")
            if key in metadata:
                raise _Damaged(f"duplicate key {key!r}")
            metadata[key] = (value_type, self._value(value_type, depth=0))

        infos: list[tuple[bytes, tuple[int, ...], int, int]] = []
        names: set[bytes] = set()
        for _ in range(tensor_count):
            name = self._string(MAX_NAME_BYTES, "bytes in a tensor name")
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

    def _string(self, limit: int = MAX_STRING_BYTES, what: str = "bytes in one metadata value") -> bytes:
        length = self._unpack("Q")
        if length > limit:
            raise _Absurd(length, what)
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
        if length > MAX_ARRAY_ITEMS:
            raise _Absurd(length, "items in one metadata array")
        least = length * _ITEM_SIZES.get(item_type, 1)
        if least > len(self.buffer) - self.pos:
            raise _PastEnd(self.pos + least)
        code = _SCALAR_CODES.get(item_type)
        if code is not None:
            start = self._take(length * struct.calcsize(self.order + code))
            items = None
            if item_type in _KEPT_ITEM_TYPES and length <= _KEPT_ARRAY_LENGTH:
                items = struct.unpack_from(f"{self.order}{length}{code}", self.buffer, start)
            return Array(item_type, length, items)
        if item_type == GGUFValueType.STRING:
            self._skip_strings(length)
        else:
            for _ in range(length):
                self._value(item_type, depth + 1)
        return Array(item_type, length)

    def _skip_strings(self, count: int) -> None:
        # The hot loop for vocabularies and merge lists, hence no helper calls.
        read_length = struct.Struct(self.order + "Q").unpack_from
        buffer, pos, end = self.buffer, self.pos, len(self.buffer)
        for _ in range(count):
            if pos + 8 > end:
                raise _PastEnd(pos + 8)
            length = read_length(buffer, pos)[0]
            if length > MAX_ITEM_BYTES:
                raise _Absurd(length, "bytes in one item of a metadata array")
            pos += 8 + length
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
    except _Absurd as error:
        problem = _absurd_message(name, error.count, error.what)
    except _Truncated as error:
        if error.needed > _ABSURD_WEIGHT_BYTES:
            problem = (f"{quoted(name)} has an unreasonable header "
                       f"({format_bytes(error.needed)} of weights) and looks corrupted.")
        else:
            problem = (f"{quoted(name)} is incomplete: it is {format_bytes(size)} but its header describes "
                       f"{format_bytes(error.needed)} of weights. The download may have been cut short.")
    except _PastEnd as error:
        if partial and error.needed <= size:
            needed = error.needed
        else:
            problem = past_end_message(name)
    except _UnknownTensorType as error:
        problem = (f"{quoted(name)} uses a kind of weights (type {error.raw_type}) that this version of "
                   "Hearth does not recognise. Updating Hearth may help.")
    except OSError as error:
        problem = f"{quoted(name)} could not be read ({error.strerror or 'input/output error'})."
    except Exception:
        log.debug("could not parse the GGUF header of %s", name, exc_info=True)
        problem = damaged_message(name)
    if problem is None:
        raise HeaderIncomplete(name, needed, len(buffer))
    raise InvalidModelError(problem)


def read_local_part(path: Path) -> Part:
    size, head = _read_start(path)
    start = _check_start(head, size, path.name, partial=False)
    problem: str | None = None
    try:
        with path.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as buffer:
            header = _parse(buffer, size, path.name, start, partial=False)
    except OSError as error:
        problem = f"{quoted(path.name)} could not be read ({error.strerror or 'input/output error'})."
    if problem is not None:
        raise InvalidModelError(problem)
    return Part(path, size, start.version, header)


def bytes_part(header: bytes | memoryview, size: int, name: str) -> Part:
    buffer = memoryview(header)
    if buffer.format != "B" or buffer.ndim != 1:
        buffer = buffer.cast("B")
    if len(buffer) > size:
        raise ValueError(f"{len(buffer)} bytes given for a file of {size}")
    partial = len(buffer) < size
    start = _check_start(bytes(buffer[:_HEADER_SIZE]), size, name, partial=partial)
    return Part(Path(name), size, start.version, _parse(buffer, size, name, start, partial=partial))


def local_parts(given: Part) -> list[Part]:
    """Every part of the split model ``given`` belongs to, found by llama.cpp's naming in its folder."""
    count, number = given.split_count, given.split_no + 1
    match = SHARD_NAME.match(given.name)
    if match is None or int(match["count"]) != count or int(match["no"]) != number:
        raise InvalidModelError(
            f"{quoted(given.name)} is part {number} of {count} of a model split into several files, but its "
            f"name does not end in “-{number:05d}-of-{count:05d}.gguf”, so its other parts cannot be found. "
            "Keep the names the parts were published with.")
    parts: list[Part] = []
    for other in range(1, count + 1):
        if other == number:
            parts.append(given)
            continue
        sibling = given.path.with_name(split_part_name(given.name, other) or "")
        if not sibling.is_file():
            raise InvalidModelError(
                f"{quoted(given.name)} is part {number} of {count}, but part {other} ({sibling.name}) is not in "
                f"the same folder. Put all {count} parts together.")
        part = read_local_part(sibling)
        if part.split_count != count or part.split_no + 1 != other:
            said = (f"part {part.split_no + 1} of {part.split_count}" if part.split_count > 1
                    else "a whole model, not a part")
            raise InvalidModelError(
                f"{quoted(sibling.name)} does not belong with {quoted(given.name)}: its header says it is {said}.")
        parts.append(part)
    return parts


def metadata_string(metadata: Metadata, key: str) -> str | None:
    value_type, value = metadata.get(key, (-1, None))
    if value_type != GGUFValueType.STRING or not isinstance(value, bytes):
        return None
    return value.decode("utf-8", errors="replace")


def metadata_int(metadata: Metadata, key: str) -> int | None:
    """An integer fact; per-layer arrays (some architectures vary head counts by layer) give their
    largest value, the one that bounds memory use."""
    value_type, value = metadata.get(key, (-1, None))
    if value_type in INT_TYPES and isinstance(value, int):
        return value
    if isinstance(value, Array) and value.item_type in INT_TYPES and value.items:
        return max(value.items)
    return None


def per_layer_array(metadata: Metadata, key: str) -> tuple[int | None, tuple[int, ...] | None]:
    """The length and items of an integer or boolean array (items ``None`` when too long to have been
    kept; both ``None`` for a scalar or a missing key)."""
    value = metadata.get(key, (-1, None))[1]
    if not isinstance(value, Array) or value.item_type not in _KEPT_ITEM_TYPES:
        return None, None
    return value.length, value.items
