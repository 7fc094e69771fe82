"""Small GGUF files, good and bad, written on demand so the repository holds no binary fixtures.

Each function writes one file into the folder it is given and returns its path; names differ, so several
can share a ``tmp_path``. Import them as ``from tests.helpers.gguf_fixtures import ...``.
"""

from __future__ import annotations

import random
import struct
from pathlib import Path
from typing import Any

import numpy as np
from gguf import GGUFReader, GGUFValueType, GGUFWriter
from gguf.gguf_reader import ReaderField

__all__ = [
    "CHATML_TEMPLATE",
    "absurd_header",
    "bad_magic",
    "corrupted_tensor_data",
    "duplicate_tokens",
    "empty",
    "hostile_array",
    "huge_metadata",
    "many_keys",
    "many_tensors",
    "not_gguf",
    "odd_metadata",
    "sparse_huge",
    "truncated",
    "with_chat_template",
    "wrong_version",
]

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

_ARCHITECTURE_KEY = "general.architecture"
_ALIGNMENT_KEY = "general.alignment"


def with_chat_template(src: Path, dest: Path, template: str = CHATML_TEMPLATE) -> Path:
    """A byte-faithful copy of ``src`` (every KV, tensor, type and the alignment) plus a chat template,
    so llama.cpp loads and runs it exactly like the original."""
    out = dest / f"{src.stem}-with-template.gguf"
    reader = GGUFReader(src)
    arch_field = reader.fields[_ARCHITECTURE_KEY]
    writer = GGUFWriter(out, bytes(arch_field.parts[arch_field.data[0]]).decode())
    if _ALIGNMENT_KEY in reader.fields:
        writer.add_custom_alignment(int(reader.alignment))
    for name, found in reader.fields.items():
        if name.startswith("GGUF.") or name in (_ARCHITECTURE_KEY, _ALIGNMENT_KEY, "tokenizer.chat_template"):
            continue
        value, kind, sub_kind = _field_value(found)
        writer.add_key_value(name, value, kind, sub_type=sub_kind)
    writer.add_chat_template(template)
    for tensor in reader.tensors:
        writer.add_tensor(tensor.name, tensor.data, raw_dtype=tensor.tensor_type,
                          tensor_endianess=reader.endianess)
    _finish(writer)
    return out


def _field_value(found: ReaderField) -> tuple[Any, GGUFValueType, GGUFValueType | None]:
    # Strings stay bytes so tokens that are not valid UTF-8 survive the copy unchanged.
    kind = found.types[0]
    if kind == GGUFValueType.ARRAY:
        sub_kind = found.types[1]
        if sub_kind == GGUFValueType.ARRAY:
            raise NotImplementedError(f"nested array in {found.name}")
        return [_scalar(found.parts[i], sub_kind) for i in found.data], kind, sub_kind
    return _scalar(found.parts[found.data[0]], kind), kind, None


def _scalar(part: np.ndarray[Any, Any], kind: GGUFValueType) -> Any:
    return bytes(part) if kind == GGUFValueType.STRING else part.tolist()[0]


def _finish(writer: GGUFWriter) -> None:
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def odd_metadata(dest: Path) -> Path:
    """Valid, but unlike any converter's output: made-up architecture, none of the usual facts, and
    every awkward value type, so the reader has to cope with what it does not expect."""
    out = dest / "odd-metadata.gguf"
    writer = GGUFWriter(out, "hearthtest")
    writer.add_key_value("hearthtest.numbers", [3, -1, 4, 1, -5], GGUFValueType.ARRAY,
                         sub_type=GGUFValueType.INT32)
    writer.add_key_value("hearthtest.flags", [True, False, True], GGUFValueType.ARRAY,
                         sub_type=GGUFValueType.BOOL)
    writer.add_key_value("hearthtest.grid", [[1, 2], [3, 4]], GGUFValueType.ARRAY)
    writer.add_key_value("hearthtest.attention.head_count_kv", [2, 4, 2], GGUFValueType.ARRAY,
                         sub_type=GGUFValueType.UINT32)
    writer.add_key_value("hearthtest.deeply.nested.key.that.means.nothing", 7, GGUFValueType.INT8)
    writer.add_key_value("hearthtest.big", 2**63 + 5, GGUFValueType.UINT64)
    writer.add_key_value("hearthtest.ratio", 0.1, GGUFValueType.FLOAT64)
    writer.add_key_value("hearthtest.embedding_length", "sixty-four", GGUFValueType.STRING)
    writer.add_key_value("hearthtest.ready", True, GGUFValueType.BOOL)
    writer.add_key_value("général.ünïcode.clé", "värde ✓", GGUFValueType.STRING)
    writer.add_key_value("general.tags", ["odd", "tiny", "test"], GGUFValueType.ARRAY,
                         sub_type=GGUFValueType.STRING)
    writer.add_tensor("a.weight", np.arange(32, dtype=np.float32).reshape(4, 8))
    writer.add_tensor("b.weight", np.ones(16, dtype=np.float16))
    _finish(writer)
    return out


def truncated(src: Path, dest: Path, keep_fraction: float = 0.5) -> Path:
    """The first part of ``src``, like an interrupted download."""
    out = dest / f"{src.stem}-truncated.gguf"
    data = src.read_bytes()
    out.write_bytes(data[: int(len(data) * keep_fraction)])
    return out


def _tiny_model(out: Path) -> Path:
    writer = GGUFWriter(out, "hearthtest")
    writer.add_name("Tiny")
    writer.add_tensor("w", np.zeros((8, 8), dtype=np.float32))
    _finish(writer)
    return out


def bad_magic(dest: Path) -> Path:
    """A whole, otherwise valid file whose first four bytes are wrong."""
    out = _tiny_model(dest / "bad-magic.gguf")
    data = bytearray(out.read_bytes())
    data[:4] = b"GGUX"
    out.write_bytes(bytes(data))
    return out


def wrong_version(dest: Path, version: int = 1) -> Path:
    """A whole file that claims a GGUF version llama.cpp does not read."""
    out = _tiny_model(dest / f"version-{version}.gguf")
    data = bytearray(out.read_bytes())
    data[4:8] = struct.pack("<I", version)
    out.write_bytes(bytes(data))
    return out


def absurd_header(dest: Path) -> Path:
    """Right magic and version, but 2**40 tensors in a 4 KB file."""
    out = dest / "absurd-header.gguf"
    out.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 2**40, 0) + bytes(4096))
    return out


def hostile_array(dest: Path) -> Path:
    """Counts that pass the first check, then one KV claiming a 2**40-item array: the naive reader
    would loop over it for hours."""
    out = dest / "hostile-array.gguf"
    key = b"hearthtest.lots"
    entry = struct.pack("<Q", len(key)) + key + struct.pack("<IIQ", GGUFValueType.ARRAY,
                                                            GGUFValueType.UINT8, 2**40)
    out.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + entry + bytes(4096))
    return out


def duplicate_tokens(src: Path, dest: Path) -> Path:
    """A copy of ``src`` whose vocabulary lists one token twice: the header is sound, but llama.cpp aborts the
    process when it reads the vocabulary (``GGML_ASSERT(id_to_token.size() == token_to_id.size())``)."""
    reader = GGUFReader(src)
    arch_field = reader.fields[_ARCHITECTURE_KEY]
    out = dest / f"{src.stem}-duplicate-tokens.gguf"
    writer = GGUFWriter(out, bytes(arch_field.parts[arch_field.data[0]]).decode())
    for name, found in reader.fields.items():
        if name.startswith("GGUF.") or name in (_ARCHITECTURE_KEY, _ALIGNMENT_KEY):
            continue
        value, kind, sub_kind = _field_value(found)
        if name == "tokenizer.ggml.tokens":
            value = [*value[:301], value[300], *value[302:]]
        writer.add_key_value(name, value, kind, sub_type=sub_kind)
    for tensor in reader.tensors:
        writer.add_tensor(tensor.name, tensor.data, raw_dtype=tensor.tensor_type)
    _finish(writer)
    return out


def many_keys(src: Path, dest: Path, count: int) -> Path:
    """A copy of ``src`` with ``count`` more metadata keys: llama.cpp opens such a file in quadratic time."""
    return _copy_with(src, dest / f"{src.stem}-{count}-keys.gguf",
                      lambda writer: [writer.add_uint32(f"hearthtest.key.{i:07d}", i) for i in range(count)])


def many_tensors(src: Path, dest: Path, count: int) -> Path:
    """A copy of ``src`` with ``count`` more one-value tensors."""
    one = np.zeros(1, dtype=np.float32)
    return _copy_with(src, dest / f"{src.stem}-{count}-tensors.gguf", None,
                      lambda writer: [writer.add_tensor(f"hearthtest.{i:07d}", one) for i in range(count)])


def _copy_with(src: Path, out: Path, add_keys: Any, add_tensors: Any = None) -> Path:
    reader = GGUFReader(src)
    arch_field = reader.fields[_ARCHITECTURE_KEY]
    writer = GGUFWriter(out, bytes(arch_field.parts[arch_field.data[0]]).decode())
    for name, found in reader.fields.items():
        if not name.startswith("GGUF.") and name not in (_ARCHITECTURE_KEY, _ALIGNMENT_KEY):
            value, kind, sub_kind = _field_value(found)
            writer.add_key_value(name, value, kind, sub_type=sub_kind)
    if add_keys is not None:
        add_keys(writer)
    for tensor in reader.tensors:
        writer.add_tensor(tensor.name, tensor.data, raw_dtype=tensor.tensor_type)
    if add_tensors is not None:
        add_tensors(writer)
    _finish(writer)
    return out


def huge_metadata(src: Path, dest: Path, kind: str, size: int) -> Path:
    """A copy of ``src`` with one more metadata value of ``size``: an ``"array"`` of that many bytes, a ``"string"``
    of that many bytes, or an ``"item"``: an array holding one string that long. The value is zeros in a sparse
    stretch of the file, so a huge one costs no disk; the entry is inserted right after the fixed start and padded
    to the alignment, so the tensor data behind it stays aligned and the file stays valid."""
    data = src.read_bytes()
    tensor_count, kv_count = struct.unpack_from("<QQ", data, 8)
    kinds = {"array": struct.pack("<IIQ", GGUFValueType.ARRAY, GGUFValueType.UINT8, size),
             "string": struct.pack("<IQ", GGUFValueType.STRING, size),
             "item": struct.pack("<IIQQ", GGUFValueType.ARRAY, GGUFValueType.STRING, 1, size)}
    prefix = kinds[kind]
    key = b"hearthtest.huge"
    key += b"x" * (-(8 + len(key) + len(prefix) + size) % 32)  # keeps the tensor data aligned (32 bytes)
    out = dest / f"{src.stem}-huge-{kind}.gguf"
    with out.open("wb") as handle:
        handle.write(data[:8] + struct.pack("<QQ", tensor_count, kv_count + 1))
        handle.write(struct.pack("<Q", len(key)) + key + prefix)
        handle.seek(size, 1)
        handle.write(data[24:])
    return out


def empty(dest: Path) -> Path:
    out = dest / "empty.gguf"
    out.write_bytes(b"")
    return out


def not_gguf(dest: Path) -> Path:
    """Text saved under a model's name, as happens when a link points at a readme."""
    out = dest / "notes.gguf"
    out.write_text("These are my notes about language models.\nNot a model.\n", encoding="utf-8")
    return out


def corrupted_tensor_data(src: Path, dest: Path) -> Path:
    """``src`` with an intact header and random weights: reading facts must accept it."""
    out = dest / f"{src.stem}-garbage-weights.gguf"
    data = bytearray(src.read_bytes())
    start = int(GGUFReader(src).data_offset)
    data[start:] = random.Random(260).randbytes(len(data) - start)
    out.write_bytes(bytes(data))
    return out


def sparse_huge(dest: Path, n_bytes: int = 4 * 1024**3) -> Path:
    """A header for ``n_bytes`` of F32 weights followed by a sparse hole, to show reading facts never
    touches the weights."""
    out = dest / "sparse-huge.gguf"
    writer = GGUFWriter(out, "hearthtest")
    writer.add_context_length(4096)
    writer.add_tensor_info("huge.weight", (n_bytes // 4 // 1024, 1024), np.dtype(np.float32), n_bytes)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    writer.close()
    header_size = out.stat().st_size
    data_start = -(-header_size // 32) * 32
    with out.open("r+b") as handle:
        handle.truncate(data_start + n_bytes)
    return out
