"""Reading model facts over HTTP: only the header is fetched, through ranges, redirects and refusals."""

from __future__ import annotations

import itertools
import re
import shutil
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx2
import numpy as np
import pytest
from gguf import GGUFWriter
from huggingface_hub import constants

from app.errors import HearthError, InvalidModelError
from app.gguf.facts import ModelFacts, read_facts
from app.gguf.remote import RemoteModelError, fetch_header, hub_file_url, parse_model_reference, write_sparse_copy

from tests.helpers.range_server import RangeServer, serve_folder

BIG_VOCAB = "big-vocab.gguf"
HEAVY = "heavy.gguf"
STORIES = "stories260K.gguf"


def _finish(writer: GGUFWriter) -> None:
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def _big_vocab(path: Path, n_tokens: int = 100_000) -> Path:
    """A model whose 100k-token vocabulary makes a header of about 3.5 MB (so the default first range of
    1 MiB has to grow twice), with little weight data behind it."""
    writer = GGUFWriter(path, "llama")
    writer.add_context_length(4096)
    writer.add_block_count(1)
    writer.add_embedding_length(8)
    writer.add_head_count(2)
    writer.add_head_count_kv(1)
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list([f"tok-{i:06d}-{'x' * 16}" for i in range(n_tokens)])  # 35 bytes each
    writer.add_tensor("token_embd.weight", np.zeros((n_tokens, 8), dtype=np.float16))
    writer.add_tensor("blk.0.attn_q.weight", np.zeros((8, 8), dtype=np.float32))
    writer.add_tensor("output_norm.weight", np.zeros(8, dtype=np.float32))
    _finish(writer)
    return path


def _heavy(path: Path) -> Path:
    """A small header in front of 48 MB of weights."""
    writer = GGUFWriter(path, "llama")
    writer.add_name("Heavy")
    writer.add_context_length(2048)
    writer.add_block_count(2)
    writer.add_embedding_length(1024)
    writer.add_head_count(8)
    writer.add_tensor("token_embd.weight", np.zeros((4096, 1024), dtype=np.float32))
    for il in range(2):
        writer.add_tensor(f"blk.{il}.ffn_up.weight", np.zeros((4096, 1024), dtype=np.float32))
    _finish(writer)
    return path


def _split(folder: Path) -> list[Path]:
    writer = GGUFWriter(folder / "pair.gguf", "llama", split_max_tensors=2)
    writer.add_context_length(512)
    writer.add_block_count(2)
    writer.add_embedding_length(16)
    writer.add_head_count(4)
    writer.add_tensor("token_embd.weight", np.ones((32, 16), dtype=np.float32))
    for il in range(2):
        writer.add_tensor(f"blk.{il}.attn_q.weight", np.ones((16, 16), dtype=np.float32))
    writer.add_tensor("output.weight", np.ones((32, 16), dtype=np.float32))
    _finish(writer)
    return sorted(folder.glob("pair-*.gguf"))


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory, test_model_path: Path) -> Path:
    folder = tmp_path_factory.mktemp("served")
    shutil.copy(test_model_path, folder / STORIES)
    _big_vocab(folder / BIG_VOCAB)
    _heavy(folder / HEAVY)
    (folder / "split").mkdir()
    _split(folder / "split")
    (folder / "page.gguf").write_text("<!DOCTYPE html><html><body>Sign in</body></html>", encoding="utf-8")
    return folder


@pytest.fixture
def server(models: Path) -> Iterator[RangeServer]:
    with serve_folder(models) as running:
        yield running


@pytest.fixture
def client() -> Iterator[httpx2.Client]:
    """A plain client: the shared huggingface_hub one refuses every request while HF_HUB_OFFLINE is set,
    as it is for the whole test run (see ``test_default_session_is_huggingface_hubs``)."""
    with httpx2.Client() as session:
        yield session


def _comparable(facts: ModelFacts) -> dict[str, object]:
    data = facts.to_dict()
    del data["path"], data["shards"]
    return data | {"tensors": facts.tensors}


@pytest.mark.parametrize("name", [STORIES, BIG_VOCAB, HEAVY])
def test_remote_facts_equal_local_facts(models: Path, server: RangeServer, client: httpx2.Client, name: str) -> None:
    local_path = models / name
    local = read_facts(local_path)
    remote = fetch_header(server.url(name), session=client)
    assert _comparable(remote.facts) == _comparable(local)
    assert remote.facts.path == Path(name)
    assert remote.file_size == local_path.stat().st_size
    # The header up to where the tensor data starts (the first tensor's offset; checked against
    # gguf.GGUFReader in test_gguf_facts).
    assert remote.header == local_path.read_bytes()[:min(t.offset for t in local.tensors)]
    assert remote.parts[0].header == remote.header


def test_big_header_grows_the_range_without_fetching_twice(models: Path, server: RangeServer,
                                                           client: httpx2.Client) -> None:
    remote = fetch_header(server.url(BIG_VOCAB), session=client)
    assert len(remote.header) > 3 << 20
    ranges = [request.range for request in server.gets()]
    assert ranges == ["bytes=0-1048575", "bytes=1048576-2097151", "bytes=2097152-4194303"]
    server.wait_idle()
    assert server.bytes_sent == 4 << 20


def test_small_first_range_doubles_many_times(server: RangeServer, client: httpx2.Client) -> None:
    remote = fetch_header(server.url(BIG_VOCAB), session=client, start=16 << 10)
    spans = [tuple(int(n) for n in (request.range or "").split("=")[1].split("-")) for request in server.gets()]
    assert len(spans) >= 4
    assert spans[0] == (0, (16 << 10) - 1)
    assert all(later[0] == earlier[1] + 1 for earlier, later in itertools.pairwise(spans))
    server.wait_idle()
    assert server.bytes_sent < 2 * len(remote.header)


def test_only_the_header_of_a_large_file_is_transferred(models: Path, server: RangeServer,
                                                         client: httpx2.Client) -> None:
    size = (models / HEAVY).stat().st_size
    remote = fetch_header(server.url(HEAVY), session=client, start=64 << 10)
    server.wait_idle()
    assert remote.file_size == size > 48_000_000
    assert server.bytes_sent == 64 << 10
    assert len(server.gets()) == 1


@pytest.mark.parametrize("name", [HEAVY, BIG_VOCAB])
def test_server_that_ignores_range_is_read_only_as_far_as_needed(models: Path, server: RangeServer,
                                                                  client: httpx2.Client, name: str) -> None:
    server.ignore_range = True
    size = (models / name).stat().st_size
    remote = fetch_header(server.url(name), session=client, start=64 << 10)
    server.wait_idle()
    assert _comparable(remote.facts) == _comparable(read_facts(models / name))
    assert [request.status for request in server.gets()] == [200]  # one streamed answer, grown in place
    if name == HEAVY:
        assert server.bytes_sent < size // 20


def test_server_that_neither_reads_parts_nor_gives_sizes(server: RangeServer, client: httpx2.Client) -> None:
    server.ignore_range = server.hide_size = True
    expected = "The server does not allow reading part of the file “heavy.gguf”, and does not say how large it is."
    with pytest.raises(RemoteModelError, match=re.escape(expected)):
        fetch_header(server.url(HEAVY), session=client)
    assert [request.method for request in server.requests] == ["GET", "HEAD"]


def test_redirect_to_a_cdn_is_followed(models: Path, server: RangeServer, client: httpx2.Client) -> None:
    url = hub_file_url("owner/model", STORIES, endpoint=server.base_url)
    assert url == f"{server.base_url}/owner/model/resolve/main/{STORIES}"
    remote = fetch_header(url, session=client)
    assert remote.url == url
    assert _comparable(remote.facts) == _comparable(read_facts(models / STORIES))
    assert [(request.path, request.status) for request in server.gets()] == [
        (f"/owner/model/resolve/main/{STORIES}", 302), (f"/cdn/{STORIES}", 206)]


def test_token_reaches_the_server_but_not_the_cdn_on_another_origin(models: Path, server: RangeServer,
                                                                    client: httpx2.Client) -> None:
    with serve_folder(models) as cdn:
        server.redirect_base = cdn.base_url
        remote = fetch_header(server.url(f"resolve/{STORIES}"), session=client, token="secret")
        assert remote.facts.architecture == "llama"
        assert [request.authorization for request in server.gets()] == ["Bearer secret"]
        assert [request.authorization for request in cdn.gets()] == [None]


def test_token_opens_a_private_file(server: RangeServer, client: httpx2.Client) -> None:
    remote = fetch_header(server.url(f"private/{STORIES}"), session=client, token=server.token)
    assert remote.facts.block_count == 5


@pytest.mark.parametrize(("route", "token", "status", "words"), [
    ("missing.gguf", None, 404, "“missing.gguf” was not found on 127.0.0.1"),
    (f"private/{STORIES}", None, 401, f"“{STORIES}” needs a Hugging Face token: the model is gated or private"),
    (f"private/{STORIES}", "wrong", 401, f"127.0.0.1 did not accept the token for “{STORIES}”"),
    ("status/403/GatedRepo/model.gguf", None, 403, "is in a gated model on Hugging Face"),
    ("status/401/RepoNotFound/model.gguf", None, 401, "The model repository of “model.gguf” was not found"),
    ("status/404/EntryNotFound/model.gguf", None, 404, "“model.gguf” was not found"),
    ("status/503/model.gguf", None, 503, "127.0.0.1 had a problem (HTTP 503). Try again later."),
])
def test_refusals_are_explained(server: RangeServer, client: httpx2.Client, route: str, token: str | None,
                                status: int, words: str) -> None:
    with pytest.raises(RemoteModelError) as caught:
        fetch_header(server.url(route), session=client, token=token)
    assert caught.value.status == status
    assert words in str(caught.value)
    assert str(caught.value).endswith(".")


def test_unreachable_server(client: httpx2.Client) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(RemoteModelError, match=re.escape("Could not reach 127.0.0.1. Check the internet connection.")):
        fetch_header(f"http://127.0.0.1:{port}/model.gguf", session=client)


def test_a_web_page_is_not_a_model(server: RangeServer, client: httpx2.Client) -> None:
    with pytest.raises(InvalidModelError, match=re.escape("“page.gguf” is not a GGUF model file. It is a web page")):
        fetch_header(server.url("page.gguf"), session=client)


def test_header_longer_than_the_limit_is_refused(server: RangeServer, client: httpx2.Client) -> None:
    with pytest.raises(RemoteModelError, match=re.escape("The header of “big-vocab.gguf” is longer than 1.0 MB")):
        fetch_header(server.url(BIG_VOCAB), session=client, start=256 << 10, limit=1_000_000)


def test_default_session_is_huggingface_hubs(server: RangeServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(RemoteModelError, match="Hugging Face access is switched off on this computer"):
        fetch_header(server.url(STORIES))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    assert fetch_header(server.url(STORIES)).facts.block_count == 5


def test_split_model_fetches_every_part(models: Path, server: RangeServer, client: httpx2.Client,
                                        tmp_path: Path) -> None:
    parts = sorted((models / "split").glob("pair-*.gguf"))
    assert len(parts) == 2
    local = read_facts(parts[0])
    remote = fetch_header(server.url(f"split/{parts[1].name}"), session=client)
    assert _comparable(remote.facts) == _comparable(local)
    assert remote.url == server.url(f"split/{parts[0].name}")
    assert [part.name for part in remote.parts] == [p.name for p in parts]
    assert remote.facts.file_size == sum(p.stat().st_size for p in parts)

    copy = write_sparse_copy(remote, tmp_path)
    assert copy == tmp_path / parts[0].name
    assert [p.stat().st_size for p in sorted(tmp_path.glob("pair-*.gguf"))] == [p.stat().st_size for p in parts]
    assert _comparable(read_facts(copy)) == _comparable(local)


def test_sparse_copy_sizes_like_the_original(models: Path, server: RangeServer, client: httpx2.Client,
                                             tmp_path: Path) -> None:
    original = models / HEAVY
    remote = fetch_header(server.url(HEAVY), session=client)
    copy = write_sparse_copy(remote, tmp_path / "headers" / "copy.gguf")
    assert copy == tmp_path / "headers" / "copy.gguf"
    assert copy.stat().st_size == original.stat().st_size
    assert _comparable(read_facts(copy)) == _comparable(read_facts(original))
    assert not list(copy.parent.glob("*.partial"))
    if sys.platform != "win32":
        assert copy.stat().st_blocks * 512 < original.stat().st_size // 10  # a hole, not 48 MB of zeros


def test_sparse_copy_into_a_folder_keeps_the_remote_name(server: RangeServer, client: httpx2.Client,
                                                         tmp_path: Path) -> None:
    remote = fetch_header(server.url(STORIES), session=client)
    assert write_sparse_copy(remote, tmp_path) == tmp_path / STORIES


@pytest.mark.parametrize(("text", "expected"), [
    ("bartowski/Llama-3.2-1B-Instruct-GGUF/Llama-3.2-1B-Instruct-Q4_K_M.gguf",
     "https://huggingface.co/bartowski/Llama-3.2-1B-Instruct-GGUF/resolve/main/Llama-3.2-1B-Instruct-Q4_K_M.gguf"),
    ("  owner/name/Q4_K_M/model-00001-of-00002.gguf\n",
     "https://huggingface.co/owner/name/resolve/main/Q4_K_M/model-00001-of-00002.gguf"),
    ("https://huggingface.co/owner/name/resolve/abc123/model.gguf",
     "https://huggingface.co/owner/name/resolve/abc123/model.gguf"),
    ("https://huggingface.co/owner/name/blob/main/model.gguf",
     "https://huggingface.co/owner/name/resolve/main/model.gguf"),
    ("https://huggingface.co/owner/name/resolve/main/model.gguf?download=true",
     "https://huggingface.co/owner/name/resolve/main/model.gguf?download=true"),
    ("http://example.org/files/model.gguf", "http://example.org/files/model.gguf"),
    ("HTTPS://mirror.example/any/path", "HTTPS://mirror.example/any/path"),
    ("owner/name/model.bin", None),
    ("owner/model.gguf", None),  # a repository needs an owner and a name
    ("/home/me/models/owner/name/model.gguf", None),
    ("./owner/name/model.gguf", None),
    ("C:/Users/me/owner/name/model.gguf", None),
    ("owner/name/../secrets/model.gguf", None),
    ("own er/name/model.gguf", None),
    ("ftp://example.org/model.gguf", None),
    ("", None),
    ("just some words", None),
])
def test_parse_model_reference(text: str, expected: str | None) -> None:
    assert parse_model_reference(text) == expected


def test_remote_errors_are_hearth_errors() -> None:
    assert issubclass(RemoteModelError, HearthError)
