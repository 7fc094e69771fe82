"""The curated catalog: the built-in data, validation of any catalog (all or nothing, plain messages), fetching
a newer one over real HTTP on 127.0.0.1 through huggingface_hub's client, and the cached copy."""

from __future__ import annotations

import copy
import json
import logging
import re
import shutil
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import gguf
import jsonschema
import pytest
from huggingface_hub import constants
from huggingface_hub.utils import validate_repo_id

from app.hub import catalog as catalog_module
from app.hub.catalog import (
    BUILTIN,
    CACHE_FILE,
    MAX_CATALOG_BYTES,
    Catalog,
    CatalogError,
    cached_or_builtin,
    catalog_path,
    fetch_newer,
    load_builtin,
    load_cached,
    parse_catalog,
    save_to_cache,
    schema_path,
)

# (family, parameters label, a word of the display name): every model the issue asks for.
REQUIRED_CHAT_MODELS = [
    ("Llama 3.2", "1B", "Instruct"),
    ("Llama 3.2", "3B", "Instruct"),
    ("Llama 3.1", "8B", "Instruct"),
    ("Qwen2.5", "0.5B", "Instruct"),
    ("Qwen2.5", "1.5B", "Instruct"),
    ("Qwen2.5", "3B", "Instruct"),
    ("Qwen2.5", "7B", "Instruct"),
    ("Qwen3", "0.6B", "Qwen3"),
    ("Qwen3", "1.7B", "Qwen3"),
    ("Qwen3", "4B", "Qwen3"),
    ("Phi-3.5", "3.8B", "mini"),
    ("Phi-4", "3.8B", "mini"),
    ("Gemma 2", "2B", "Instruct"),
    ("Gemma 3", "1B", "Instruct"),
    ("Gemma 3", "4B", "Instruct"),
    ("Mistral", "7B", "v0.3"),
    ("Ministral", "8B", "Ministral"),
    ("SmolLM2", "135M", "Instruct"),
    ("SmolLM2", "360M", "Instruct"),
    ("SmolLM2", "1.7B", "Instruct"),
    ("TinyLlama", "1.1B", "Chat"),
    ("Zephyr", "7B", "beta"),
    ("Falcon 3", "1B", "Instruct"),
    ("Falcon 3", "3B", "Instruct"),
    ("Falcon 3", "7B", "Instruct"),
    ("StableLM 2", "1.6B", "Zephyr"),
]

# The quantization names llama.cpp itself knows, from the gguf package (LlamaFileType.MOSTLY_Q4_K_M, ...).
LLAMA_CPP_QUANTS = {name.split("_", 1)[1] for name in gguf.LlamaFileType.__members__ if name != "GUESSED"}

# The wording of jsonschema's own messages, which must never reach people.
LIBRARY_WORDING = ("is a required property", "does not match", "Failed validating", "is not of type",
                   "Traceback", "jsonschema")


@pytest.fixture(scope="module")
def builtin() -> Catalog:
    return load_builtin()


@pytest.fixture
def document() -> dict[str, Any]:
    """A fresh, valid catalog document (the built-in one) for a test to break."""
    return copy.deepcopy(json.loads(catalog_path().read_text(encoding="utf-8")))


def assert_plain(message: str) -> None:
    assert message.endswith(".") and "\n" not in message, message
    assert message.startswith(("The list of models from", "Hearth's built-in list of models")), message
    for wording in LIBRARY_WORDING:
        assert wording not in message, message


# ---------------------------------------------------------------------------------------------------------
# The built-in catalog


def test_builtin_catalog_validates(builtin: Catalog) -> None:
    assert builtin.source == BUILTIN and builtin.is_builtin
    assert builtin.updated <= date.today()
    assert len(builtin) == len(builtin.models) >= len(REQUIRED_CHAT_MODELS) + 1
    # The schema file itself is a valid JSON Schema.
    schema = json.loads(schema_path().read_text(encoding="utf-8"))
    jsonschema.validators.validator_for(schema).check_schema(schema)


@pytest.mark.parametrize(("family", "label", "word"), REQUIRED_CHAT_MODELS)
def test_builtin_has_every_required_model(builtin: Catalog, family: str, label: str, word: str) -> None:
    matches = [entry for entry in builtin.entries("chat")
               if entry.family == family and entry.parameters_label == label and word in entry.name]
    assert len(matches) == 1, (family, label, word)


def test_builtin_has_embedding_models(builtin: Catalog) -> None:
    embeddings = builtin.entries("embedding")
    assert {entry.id for entry in embeddings} >= {"nomic-embed-text-v1.5"}
    assert all(entry.kind == "embedding" for entry in embeddings)
    assert not set(embeddings) & set(builtin.entries())  # chat is the default kind
    assert len(builtin.entries(None)) == len(builtin.models)


def test_builtin_ids_are_unique_and_found(builtin: Catalog) -> None:
    ids = [entry.id for entry in builtin.models]
    assert len(ids) == len(set(ids))
    for entry in builtin.models:
        assert builtin.by_id(entry.id) is entry
    assert builtin.by_id("no-such-model") is None


def test_builtin_repos_are_owner_slash_name(builtin: Catalog) -> None:
    for entry in builtin.models:
        assert re.fullmatch(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*", entry.repo), entry.repo
        validate_repo_id(entry.repo)
        assert entry.page_url == f"https://huggingface.co/{entry.repo}"


def test_builtin_quants_are_llama_cpp_quants_and_match_the_file(builtin: Catalog) -> None:
    assert {"Q4_K_M", "Q8_0", "Q4_0", "F16", "IQ4_XS"} <= LLAMA_CPP_QUANTS  # the list is the real one
    for entry in builtin.models:
        assert entry.recommended_quant in LLAMA_CPP_QUANTS, entry.id
        assert entry.file_pattern is not None, entry.id
        assert entry.recommended_quant.lower() in entry.file_pattern.lower(), entry.id


def test_builtin_good_at_is_one_plain_sentence(builtin: Catalog) -> None:
    for entry in builtin.models:
        text = entry.good_at
        assert text[0].isupper() and text.endswith(".") and "\n" not in text, entry.id
        assert text.count(". ") == 0 and text.count(".") >= 1, entry.id  # one sentence
        assert 20 <= len(text) <= 200, entry.id
        assert not re.search(r"\b(GGUF|quantiz|tokens?|LLM|parameters)\b", text, re.IGNORECASE), entry.id


def test_builtin_entries_are_consistent(builtin: Catalog) -> None:
    schema = json.loads(schema_path().read_text(encoding="utf-8"))
    known_fields = set(schema["$defs"]["model"]["properties"])
    raw = json.loads(catalog_path().read_text(encoding="utf-8"))
    for item in raw["models"]:  # unknown fields are allowed in general, so a typo here would go unnoticed
        assert set(item) <= known_fields, item["id"]
    for entry in builtin.models:
        label = float(entry.parameters_label[:-1]) * (1e6 if entry.parameters_label.endswith("M") else 1e9)
        assert 0.5 <= entry.parameters / label <= 2, entry.id
        assert entry.languages and "multilingual" not in entry.languages[1:], entry.id
        assert entry.context_length is not None and entry.context_length >= 512, entry.id
        if entry.gated:
            assert entry.notes and "accept" in entry.notes, entry.id


def test_recommended_file_matching(builtin: Catalog) -> None:
    qwen7 = builtin.by_id("qwen2.5-7b-instruct")
    assert qwen7 is not None
    assert qwen7.matches_file("qwen2.5-7b-instruct-q4_k_m-00001-of-00002.gguf")
    assert qwen7.matches_file("qwen2.5-7b-instruct-q4_k_m-00002-of-00002.gguf")
    assert not qwen7.matches_file("qwen2.5-7b-instruct-q5_k_m-00001-of-00002.gguf")
    falcon = builtin.by_id("falcon3-7b-instruct")
    assert falcon is not None  # publishers mix the case of quant names: matching ignores it
    assert falcon.matches_file("Falcon3-7B-Instruct-q4_k_m.gguf")
    assert falcon.matches_file("Falcon3-7B-Instruct-Q4_K_M.gguf")
    gemma = builtin.by_id("gemma-3-4b-it")
    assert gemma is not None and gemma.gated
    assert not gemma.matches_file("mmproj-model-f16-4B.gguf")


def test_builtin_is_found_inside_a_bundle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          document: dict[str, Any]) -> None:
    bundled = tmp_path / "resources" / "catalog"
    bundled.mkdir(parents=True)
    shutil.copy(schema_path(), bundled / "catalog.schema.json")
    document["updated"] = "2001-01-01"
    (bundled / "catalog.json").write_text(json.dumps(document), encoding="utf-8")
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    assert catalog_path() == bundled / "catalog.json"
    assert load_builtin().updated == date(2001, 1, 1)


def test_missing_builtin_is_a_plain_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    with pytest.raises(CatalogError, match="built-in list of models is missing"):
        load_builtin()


# ---------------------------------------------------------------------------------------------------------
# Invalid catalogs


def _without(field_name: str, index: int) -> Callable[[dict[str, Any]], None]:
    def change(document: dict[str, Any]) -> None:
        del document["models"][index][field_name]
    return change


def _set(value: Any, *path: str | int) -> Callable[[dict[str, Any]], None]:
    def change(document: dict[str, Any]) -> None:
        target: Any = document
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return change


def _duplicate_id(document: dict[str, Any]) -> None:
    document["models"][5]["id"] = document["models"][1]["id"]


INVALID = [
    pytest.param(_without("repo", 2), "model 3 (“llama-3.1-8b-instruct”) has no “repo”", id="missing-field"),
    pytest.param(_set("1B", "models", 0, "parameters"),
                 "“parameters” of model 1 (“llama-3.2-1b-instruct”) should be a whole number", id="wrong-type"),
    pytest.param(_set("yes", "models", 13, "gated"), "“gated” of model 14 (“gemma-3-1b-it”) should be true or false",
                 id="wrong-type-bool"),
    pytest.param(_set(True, "models", 0, "parameters"), "“parameters” of model 1 (“llama-3.2-1b-instruct”) should "
                 "be a whole number", id="bool-is-not-a-number"),
    pytest.param(_duplicate_id, "models 2 and 6 have the same id “llama-3.2-3b-instruct”", id="duplicate-id"),
    pytest.param(_set(2, "schema_version"), "is made for a newer version of Hearth (catalog format 2; this "
                 "version reads format 1)", id="newer-schema-version"),
    pytest.param(_set("one", "schema_version"), "its catalog format (\"one\") is not one Hearth knows",
                 id="unknown-schema-version"),
    pytest.param(_set("Qwen2.5-7B-Instruct-GGUF", "models", 6, "repo"),
                 "“repo” of model 7 (“qwen2.5-7b-instruct”) should be a Hugging Face repository", id="repo-shape"),
    pytest.param(_set("Qwen/Qwen--2.5", "models", 6, "repo"),
                 "“repo” of model 7 (“qwen2.5-7b-instruct”) is not a Hugging Face repository id", id="repo-rules"),
    pytest.param(_set("Q4_K_X", "models", 0, "recommended_quant"),
                 "should be a llama.cpp quantization such as “Q4_K_M”, not \"Q4_K_X\"", id="unknown-quant"),
    pytest.param(_set("chats with you", "models", 0, "good_at"), "“good_at” of model 1 (“llama-3.2-1b-instruct”) "
                 "should be one sentence", id="not-a-sentence"),
    pytest.param(_set("vision", "models", 0, "kind"), "should be “chat” or “embedding”", id="unknown-kind"),
    pytest.param(_set("2026-02-30", "updated"), "“updated” should be a date written as YYYY-MM-DD", id="bad-date"),
    pytest.param(_set([], "models"), "“models” should be a list of at least one model", id="no-models"),
    pytest.param(_set("everything", "models"), "“models” should be a list", id="models-not-a-list"),
    pytest.param(_set([], "models", 3, "languages"), "“languages” of model 4", id="no-languages"),
    pytest.param(_set("Qwen2.5", "models", 3), "model 4 should be a group of named fields", id="model-not-object"),
]


@pytest.mark.parametrize(("change", "expected"), INVALID)
def test_invalid_catalog_is_refused_with_a_plain_message(document: dict[str, Any],
                                                         change: Callable[[dict[str, Any]], None],
                                                         expected: str) -> None:
    change(document)
    with pytest.raises(CatalogError) as caught:
        parse_catalog(json.dumps(document), "https://example.org/catalog.json")
    message = str(caught.value)
    assert expected in message
    assert_plain(message)


def test_missing_top_level_field(document: dict[str, Any]) -> None:
    del document["updated"]
    with pytest.raises(CatalogError) as caught:
        parse_catalog(json.dumps(document), "here")
    assert str(caught.value) == "The list of models from here cannot be used: it has no “updated”."


def test_several_problems_are_counted(document: dict[str, Any]) -> None:
    del document["models"][0]["repo"]
    del document["models"][4]["license"]
    with pytest.raises(CatalogError) as caught:
        parse_catalog(json.dumps(document), BUILTIN)
    assert str(caught.value) == ("Hearth's built-in list of models cannot be used: model 1 "
                                 "(“llama-3.2-1b-instruct”) has no “repo” (and 1 more problem).")


@pytest.mark.parametrize(("data", "expected"), [
    ("{\"schema_version\": 1, ", "it is not valid JSON (line 1, column"),
    ("", "it is not valid JSON (line 1, column 1)"),
    (b"\xff\xfe\xfa", "it is not"),
    ("[1, 2, 3]", "it is not a model catalog"),
    ("null", "it is not a model catalog"),
])
def test_not_a_catalog(data: bytes | str, expected: str) -> None:
    with pytest.raises(CatalogError) as caught:
        parse_catalog(data, "https://example.org/catalog.json")
    assert expected in str(caught.value)
    assert_plain(str(caught.value))


def test_one_bad_model_refuses_the_whole_catalog(document: dict[str, Any]) -> None:
    """All or nothing: a catalog whose last model is broken gives no catalog at all, not the others."""
    del document["models"][-1]["kind"]
    with pytest.raises(CatalogError, match=r"model \d+ \(“bge-small-en-v1.5”\) has no “kind”"):
        parse_catalog(json.dumps(document), "https://example.org/catalog.json")


def test_unknown_fields_are_ignored(document: dict[str, Any]) -> None:
    """A later catalog may add fields for later versions; this version reads what it knows."""
    document["publisher"] = "Hearth"
    document["models"][0]["vision"] = False
    parsed = parse_catalog(json.dumps(document).encode("utf-8"), "https://example.org/catalog.json")
    assert parsed.models[0].id == "llama-3.2-1b-instruct"
    assert parsed.source == "https://example.org/catalog.json"


def test_optional_fields_may_be_left_out(document: dict[str, Any]) -> None:
    for item in document["models"]:
        for name in ("file_pattern", "context_length", "notes"):
            item.pop(name, None)
    parsed = parse_catalog(json.dumps(document), "here")
    entry = parsed.models[0]
    assert entry.file_pattern is None and entry.context_length is None and entry.notes is None
    assert entry.matches_file("Llama-3.2-1B-Instruct-Q4_K_M.gguf")
    assert not entry.matches_file("Llama-3.2-1B-Instruct-Q8_0.gguf")


# ---------------------------------------------------------------------------------------------------------
# A newer catalog over HTTP


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"


@dataclass
class CatalogServer:
    """A threaded stdlib server on 127.0.0.1 that answers each path with a set reply and records requests."""

    base: str
    replies: dict[str, Reply] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"{self.base}/{path}"

    def publish(self, path: str, document: Any, status: int = 200) -> str:
        body = document if isinstance(document, bytes) else json.dumps(document).encode("utf-8")
        self.replies["/" + path] = Reply(status, body)
        return self.url(path)


@pytest.fixture
def server() -> Iterator[CatalogServer]:
    state = CatalogServer(base="")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.requests.append((self.path, {key.lower(): value for key, value in self.headers.items()}))
            reply = state.replies.get(self.path, Reply(404, b'{"error": "not found"}'))
            try:
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client stopped reading (a body it refused); nothing to do

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


@pytest.fixture
def hub_online(monkeypatch: pytest.MonkeyPatch) -> None:
    """tests/conftest.py sets HF_HUB_OFFLINE=1 for the run, and huggingface_hub's shared client then refuses
    every request (its request hook reads ``constants.HF_HUB_OFFLINE`` on each call): allow requests here."""
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)


def _dated(document: dict[str, Any], updated: date) -> dict[str, Any]:
    changed = copy.deepcopy(document)
    changed["updated"] = updated.isoformat()
    return changed


@pytest.mark.usefixtures("hub_online")
def test_newer_catalog_is_accepted(server: CatalogServer, builtin: Catalog, document: dict[str, Any],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_secret_token_value")
    newer = _dated(document, builtin.updated + timedelta(days=1))
    newer["models"] = newer["models"][:3]
    url = server.publish("catalog.json", newer)
    fetched = fetch_newer(url, builtin)
    assert fetched is not None
    assert fetched.source == url and not fetched.is_builtin
    assert fetched.updated == builtin.updated + timedelta(days=1)
    assert [entry.id for entry in fetched.models] == [entry.id for entry in builtin.models[:3]]
    (path, headers), = server.requests
    assert path == "/catalog.json"
    assert "x-amzn-trace-id" in headers  # it went through huggingface_hub's client (its request hook)
    assert "authorization" not in headers  # and no Hub token leaves for another address


@pytest.mark.usefixtures("hub_online")
@pytest.mark.parametrize("days", [0, -1, -400])
def test_older_or_same_catalog_is_ignored(server: CatalogServer, builtin: Catalog, document: dict[str, Any],
                                          days: int) -> None:
    url = server.publish("catalog.json", _dated(document, builtin.updated + timedelta(days=days)))
    assert fetch_newer(url, builtin) is None
    assert len(server.requests) == 1


@pytest.mark.usefixtures("hub_online")
@pytest.mark.parametrize(("reply", "logged"), [
    pytest.param(b"<html>Not here</html>", "not valid JSON", id="not-json"),
    pytest.param(b"", "not valid JSON", id="empty"),
    pytest.param("missing-kind", "has no “kind”", id="invalid"),
    pytest.param("newer-format", "newer version of Hearth", id="newer-format"),
    pytest.param(b"x" * (MAX_CATALOG_BYTES + 1), "far more than a catalog", id="too-large"),
])
def test_invalid_catalog_is_ignored(server: CatalogServer, builtin: Catalog, document: dict[str, Any],
                                    caplog: pytest.LogCaptureFixture, reply: bytes | str, logged: str,
                                    tmp_path: Path) -> None:
    newer = _dated(document, builtin.updated + timedelta(days=30))
    if reply == "missing-kind":
        del newer["models"][-1]["kind"]
        body: bytes = json.dumps(newer).encode()
    elif reply == "newer-format":
        newer["schema_version"] = 2
        body = json.dumps(newer).encode()
    else:
        assert isinstance(reply, bytes)
        body = reply
    url = server.publish("catalog.json", body)
    with caplog.at_level(logging.WARNING, logger="app.hub.catalog"):
        assert fetch_newer(url, builtin, cache_dir=tmp_path) is None
    assert logged in caplog.text
    assert not (tmp_path / CACHE_FILE).exists()  # nothing of it is kept


@pytest.mark.usefixtures("hub_online")
@pytest.mark.parametrize("status", [404, 500, 403])
def test_http_errors_are_ignored(server: CatalogServer, builtin: Catalog, document: dict[str, Any],
                                 status: int, caplog: pytest.LogCaptureFixture) -> None:
    url = server.publish("catalog.json", _dated(document, builtin.updated + timedelta(days=1)), status=status)
    with caplog.at_level(logging.WARNING, logger="app.hub.catalog"):
        assert fetch_newer(url, builtin) is None
    assert str(status) in caplog.text


@pytest.mark.usefixtures("hub_online")
def test_unreachable_server_is_ignored(builtin: Catalog, caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with caplog.at_level(logging.WARNING, logger="app.hub.catalog"):
        assert fetch_newer(f"http://127.0.0.1:{port}/catalog.json", builtin, timeout=2) is None
    assert "not used" in caplog.text


def test_offline_switch_is_honoured(server: CatalogServer, builtin: Catalog, document: dict[str, Any],
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    url = server.publish("catalog.json", _dated(document, builtin.updated + timedelta(days=1)))
    assert fetch_newer(url, builtin) is None
    assert server.requests == []  # refused before anything was sent


@pytest.mark.usefixtures("hub_online")
@pytest.mark.parametrize("url", ["http://example.org/catalog.json", "ftp://127.0.0.1/catalog.json", "catalog.json",
                                 "https://", "file:///etc/passwd"])
def test_insecure_or_odd_urls_are_not_fetched(builtin: Catalog, url: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="app.hub.catalog"):
        assert fetch_newer(url, builtin) is None
    assert "only https://" in caplog.text


@pytest.mark.usefixtures("hub_online")
def test_a_given_session_is_used(server: CatalogServer, builtin: Catalog, document: dict[str, Any]) -> None:
    import httpx2

    url = server.publish("catalog.json", _dated(document, builtin.updated + timedelta(days=1)))
    with httpx2.Client() as session:
        assert fetch_newer(url, builtin, session=session) is not None
    assert "x-amzn-trace-id" not in server.requests[0][1]  # a plain client, not huggingface_hub's


# ---------------------------------------------------------------------------------------------------------
# The cached copy


@pytest.mark.usefixtures("hub_online")
def test_fetched_catalog_is_used_on_next_start(server: CatalogServer, builtin: Catalog, document: dict[str, Any],
                                               tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    assert cached_or_builtin(cache) == builtin  # nothing cached yet
    newer = _dated(document, builtin.updated + timedelta(days=7))
    newer["models"][0]["name"] = "Llama 3.2 1B Instruct (fetched)"
    url = server.publish("catalog.json", newer)
    fetched = fetch_newer(url, builtin, cache_dir=cache)
    assert fetched is not None and (cache / CACHE_FILE).is_file()
    assert list(cache.iterdir()) == [cache / CACHE_FILE]  # no temporary file left behind

    server.replies.clear()  # the next start needs no network
    started = cached_or_builtin(cache)
    assert started == fetched
    assert started.source == url
    assert started.models[0].name == "Llama 3.2 1B Instruct (fetched)"
    # Fetching the same catalog again changes nothing.
    server.publish("catalog.json", newer)
    assert fetch_newer(url, started, cache_dir=cache) is None


@pytest.mark.parametrize("content", [
    pytest.param("{not json", id="not-json"),
    pytest.param("", id="empty"),
    pytest.param(json.dumps(["source", "catalog"]), id="not-a-wrapper"),
    pytest.param(json.dumps({"catalog": {}}), id="no-source"),
    pytest.param("invalid-catalog", id="invalid-catalog"),
])
def test_corrupt_cache_falls_back_to_builtin(tmp_path: Path, builtin: Catalog, document: dict[str, Any],
                                             content: str, caplog: pytest.LogCaptureFixture) -> None:
    if content == "invalid-catalog":
        broken = _dated(document, builtin.updated + timedelta(days=7))
        del broken["models"][0]["repo"]
        content = json.dumps({"source": "https://example.org/catalog.json", "catalog": broken})
    (tmp_path / CACHE_FILE).write_text(content, encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="app.hub.catalog"):
        assert cached_or_builtin(tmp_path) == builtin
    assert "Ignoring the cached catalog" in caplog.text
    assert not (tmp_path / CACHE_FILE).exists()  # removed, so the warning is not repeated at every start


def test_cache_older_than_builtin_is_not_used(tmp_path: Path, builtin: Catalog, document: dict[str, Any]) -> None:
    """A new release can ship a newer list than one fetched long ago."""
    old = parse_catalog(json.dumps(_dated(document, builtin.updated - timedelta(days=1))), "https://example.org/c")
    save_to_cache(old, tmp_path)
    cached = load_cached(tmp_path)
    assert cached is not None and cached.source == "https://example.org/c"
    assert cached_or_builtin(tmp_path) == builtin


def test_failed_fetch_keeps_the_cached_copy(tmp_path: Path, builtin: Catalog, document: dict[str, Any],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    newer = parse_catalog(json.dumps(_dated(document, builtin.updated + timedelta(days=3))), "https://example.org/c")
    save_to_cache(newer, tmp_path)
    before = (tmp_path / CACHE_FILE).read_bytes()
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    assert fetch_newer("https://example.org/c", newer, cache_dir=tmp_path) is None
    assert (tmp_path / CACHE_FILE).read_bytes() == before
    assert cached_or_builtin(tmp_path) == newer


def test_validator_is_built_once() -> None:
    assert catalog_module._validator() is catalog_module._validator()
