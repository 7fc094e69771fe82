"""The Hugging Face token in the system's password store, and gated models that need it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest

from app.hub import credentials
from app.hub.downloads import DownloadManager, JobState

from tests.helpers.hub_stand_in import TOKEN, HubStandIn, hub_fixture  # noqa: F401
from tests.helpers.memory_keyring import MemoryKeyring


@pytest.fixture
def store() -> Iterator[MemoryKeyring]:
    previous = keyring.get_keyring()
    memory = MemoryKeyring()
    keyring.set_keyring(memory)
    yield memory
    keyring.set_keyring(previous)


def test_token_round_trip(store: MemoryKeyring) -> None:
    assert credentials.get_token() is None
    credentials.set_token("  hf_abcdefghijkl ")
    assert credentials.get_token() == "hf_abcdefghijkl"
    assert store.saved == {("Hearth", "huggingface-token"): "hf_abcdefghijkl"}
    credentials.clear_token()
    credentials.clear_token()  # removing twice is fine
    assert credentials.get_token() is None


def test_a_wrong_token_is_refused(store: MemoryKeyring) -> None:
    with pytest.raises(credentials.CredentialsError, match="start with “hf_”"):
        credentials.set_token("password123")
    assert store.saved == {}


def test_no_password_store_is_said_plainly() -> None:
    from keyring.backends import fail

    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    try:
        assert credentials.get_token() is None
        with pytest.raises(credentials.CredentialsError, match="no password store"):
            credentials.set_token("hf_abcdefghijkl")
    finally:
        keyring.set_keyring(previous)


def test_gated_model_needs_the_token(hub: HubStandIn, tmp_path: Path, test_model_path: Path) -> None:
    hub.add_repo("meta/gated-GGUF", {"m-Q4_K_M.gguf": test_model_path}, gated="manual")
    hub.grant("meta/gated-GGUF", TOKEN)
    without = DownloadManager(tmp_path / "d1", tmp_path / "m1")
    refused = without.wait(without.enqueue("meta/gated-GGUF", ["m-Q4_K_M.gguf"]), 60)
    assert refused.state is JobState.FAILED and refused.error is not None
    assert "accept its licence" in refused.error and "Hugging Face token" in refused.error
    with_token = DownloadManager(tmp_path / "d2", tmp_path / "m2", token=TOKEN)
    done = with_token.wait(with_token.enqueue("meta/gated-GGUF", ["m-Q4_K_M.gguf"]), 60)
    assert done.state is JobState.DONE and done.result is not None
    assert done.result.read_bytes() == test_model_path.read_bytes()


def test_the_command_line_uses_the_token_saved_in_the_window(hub: HubStandIn, tmp_path: Path,
                                                             test_model_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.helpers.command import hearth
    from tests.helpers.keyrings import BACKEND, FILE_VARIABLE, FileKeyring

    hub.add_repo("meta/gated-GGUF", {"m-Q4_K_M.gguf": test_model_path}, gated="manual")
    hub.grant("meta/gated-GGUF", TOKEN)
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", BACKEND)
    monkeypatch.setenv(FILE_VARIABLE, str(tmp_path / "keyring.json"))
    home = tmp_path / "home"
    refused = hearth(home, "models", "pull", "meta/gated-GGUF")
    assert refused.returncode == 1 and "accept its licence" in refused.stderr

    FileKeyring().set_password(credentials.SERVICE, credentials.ACCOUNT, TOKEN)  # as File → Hugging Face token does
    pulled = hearth(home, "models", "pull", "meta/gated-GGUF")
    assert pulled.returncode == 0, pulled.stderr
    assert (home / "models" / "meta" / "gated-GGUF" / "m-Q4_K_M.gguf").read_bytes() == test_model_path.read_bytes()
    inspected = hearth(home, "inspect", "meta/gated-GGUF/m-Q4_K_M.gguf", "--json")
    assert inspected.returncode == 0, inspected.stderr
    assert __import__("json").loads(inspected.stdout)["facts"]["architecture"] == "llama"
