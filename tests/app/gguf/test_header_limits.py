"""Absurd key counts, tensor counts, array lengths and string sizes are refused by the header reader, with a
sentence, before llama.cpp sees the file (it opens 16,000 keys in 5.5 s and 200,000 never); real models pass."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from app.errors import InvalidModelError
from app.gguf.facts import read_facts, read_facts_from_bytes

from tests.helpers.gguf_fixtures import huge_metadata, many_keys, many_tensors
from tests.helpers.model_builders import Vocabulary, llama_gqa

# The limits of ``app.gguf.header``, one past each (written out: they are what a person's file meets).
MAX_METADATA_KEYS, MAX_TENSORS = 4096, 16_384
MAX_ARRAY_ITEMS, MAX_STRING_BYTES, MAX_ITEM_BYTES = 1 << 24, 1 << 26, 1 << 16

Make = Callable[[Path, Path], Path]
ABSURD: dict[str, tuple[Make, str]] = {
    "keys": (lambda src, d: many_keys(src, d, MAX_METADATA_KEYS + 1), "metadata entries"),
    "tensors": (lambda src, d: many_tensors(src, d, MAX_TENSORS + 1), "tensors"),
    "array": (lambda src, d: huge_metadata(src, d, "array", MAX_ARRAY_ITEMS + 1),
              "16,777,217 items in one metadata array"),
    "string": (lambda src, d: huge_metadata(src, d, "string", MAX_STRING_BYTES + 1),
               "67,108,865 bytes in one metadata value"),
    "array item": (lambda src, d: huge_metadata(src, d, "item", MAX_ITEM_BYTES + 1),
                   "65,537 bytes in one item of a metadata array"),
}


@pytest.mark.parametrize("kind", list(ABSURD))
def test_absurd_headers_are_refused_in_a_sentence(test_model_path: Path, tmp_path: Path, kind: str) -> None:
    make, words = ABSURD[kind]
    path = make(test_model_path, tmp_path)
    with pytest.raises(InvalidModelError) as raised:
        read_facts(path)
    message = str(raised.value)
    assert message.startswith(f"“{path.name}” has an unreasonable header (") and words in message
    assert message.endswith(") and looks corrupted.")
    with pytest.raises(InvalidModelError, match="unreasonable header"):  # the first bytes of a file on the Hub too
        read_facts_from_bytes(path.read_bytes()[:1 << 20], file_size=path.stat().st_size, name=path.name)


def test_headers_just_within_the_limits_and_real_vocabularies_pass(
        test_model_path: Path, real_model_path: Path, tmp_path: Path) -> None:
    assert read_facts(many_keys(test_model_path, tmp_path, MAX_METADATA_KEYS - 100)).vocab_size == 512
    assert read_facts(huge_metadata(test_model_path, tmp_path, "item", 4096)).vocab_size == 512
    assert read_facts(real_model_path).vocab_size == 49152
    big = read_facts(llama_gqa(tmp_path, vocabulary=Vocabulary(262_144, "bpe")))  # Gemma 3's size, with merges
    assert big.vocab_size == 262_144 and big.merges_count > 250_000


def test_inspect_calls_a_file_with_too_many_keys_corrupted_not_runs_well(
        test_model_path: Path, tmp_path: Path) -> None:
    from tests.helpers.command import hearth

    path = many_keys(test_model_path, tmp_path, MAX_METADATA_KEYS + 1)
    result = hearth(tmp_path / "home", "inspect", str(path), "--json")
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith("hearth: ") and "unreasonable header" in result.stderr
    assert "Runs well" not in result.stderr and "Traceback" not in result.stderr
