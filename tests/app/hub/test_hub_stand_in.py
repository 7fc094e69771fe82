"""The Hub stand-in, driven by the real huggingface_hub (no mocks): search, info, trees, downloads through the
CDN redirect, and what each injected fault does to huggingface_hub, so the app's own code knows what to expect."""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
from pathlib import Path

import httpx2
import pytest
from gguf import GGUFReader
from huggingface_hub import (
    HfApi,
    RepoFile,
    constants,
    get_hf_file_metadata,
    hf_hub_download,
    hf_hub_url,
    is_offline_mode,
    snapshot_download,
)
from huggingface_hub.errors import (
    GatedRepoError,
    HfHubHTTPError,
    LocalEntryNotFoundError,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

import tests.helpers.hub_stand_in as stand_in
from tests.helpers.hub_stand_in import (
    TOKEN,
    Fault,
    HubRepo,
    HubStandIn,
    LoggedRequest,
    MiB,
    gguf_summary,
    hub_fixture,  # noqa: F401  (the `hub` fixture)
    loadable_big_gguf,
    tiny_model,
    write_big_gguf,
)

STORIES_SHA256 = "270cba1bd5109f42d03350f60406024560464db173c0e387d91f0426d3bd256d"
REPO = "hearth-test/stories-GGUF"


def _sha256(path: Path | str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def big_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_big_gguf(tmp_path_factory.mktemp("big") / "big-Q8_0.gguf", 12 * MiB)


@pytest.fixture
def stories(hub: HubStandIn, big_gguf: Path) -> HubRepo:
    """The tiny model and a 12 MiB GGUF in one repo."""
    return hub.add_repo(REPO, {"stories260K.gguf": tiny_model(), "big/big-Q8_0.gguf": big_gguf},
                        downloads=42, likes=7, tags=["llama"])


def _cdn_gets(hub: HubStandIn, name: str) -> list[LoggedRequest]:
    return hub.requests(method="GET", origin="cdn", path=name)


# --- the environment ----------------------------------------------------------------------------------------------


def test_huggingface_hub_is_online_against_the_stand_in(hub: HubStandIn, tmp_path: Path) -> None:
    assert not is_offline_mode()
    assert constants.ENDPOINT == hub.url == os.environ["HF_ENDPOINT"]
    assert os.environ["HF_HUB_OFFLINE"] == "0" and os.environ["HF_HUB_DISABLE_XET"] == "1"
    assert Path(constants.HF_HUB_CACHE).is_relative_to(tmp_path)
    assert hf_hub_url("a/b", "c.gguf").startswith(hub.url)
    assert HfApi().whoami(token=TOKEN)["name"] == "stand-in"
    with pytest.raises(HfHubHTTPError):
        HfApi().whoami(token="hf_wrong")
    answer = httpx2.get(f"{hub.url}/api/agent-harnesses")
    assert answer.json() == {"standardEnvVars": [], "harnesses": {}}
    assert all(r.path != "/api/agent-harnesses" for r in hub.log[:-1])  # telemetry is off: never asked by itself


# --- browsing -----------------------------------------------------------------------------------------------------


def test_search_filters_sorts_and_follows_pages(hub: HubStandIn) -> None:
    hub.page_size = 2
    for name, downloads, likes, trending in [("llama-a", 30, 1, 5), ("llama-b", 50, 9, 1), ("llama-c", 10, 4, 9),
                                             ("mistral-d", 99, 2, 2), ("llama-e", 20, 0, 3)]:
        hub.add_repo(f"org/{name}-GGUF", {f"{name}.Q4_K_M.gguf": b"GGUF" + name.encode()},
                     downloads=downloads, likes=likes, trending_score=trending)
    hub.add_repo("org/llama-f-hf", {"model.safetensors": b"{}"}, library_name="transformers", downloads=1000)
    api = HfApi()

    found = list(api.list_models(search="llama", filter="gguf", sort="downloads", limit=3))
    assert [m.id for m in found] == ["org/llama-b-GGUF", "org/llama-a-GGUF", "org/llama-e-GGUF"]
    pages = hub.requests(method="GET", path="/api/models")
    assert [p.query.get("cursor") for p in pages] == [None, ["2"]]
    assert pages[0].query == {"search": ["llama"], "filter": ["gguf"], "sort": ["downloads"], "limit": ["3"]}
    assert found[0].downloads == 50 and found[0].library_name == "gguf" and "gguf" in (found[0].tags or [])

    every = [m.id for m in api.list_models(filter="gguf", sort="likes")]  # all pages, no limit
    assert every == ["org/llama-b-GGUF", "org/llama-c-GGUF", "org/mistral-d-GGUF", "org/llama-a-GGUF",
                     "org/llama-e-GGUF"]
    assert [m.id for m in api.list_models(filter="gguf", sort="trending_score", limit=2)] == [
        "org/llama-c-GGUF", "org/llama-a-GGUF"]
    assert [m.id for m in api.list_models(sort="created_at", limit=2)] == ["org/llama-f-hf", "org/llama-e-GGUF"]
    assert [m.id for m in api.list_models(filter=["gguf", "text-generation"], search="mistral",
                                          pipeline_tag="text-generation", author="org")] == ["org/mistral-d-GGUF"]
    assert list(api.list_models(author="nobody")) == []

    expanded = next(iter(api.list_models(search="llama-c", expand=["gguf", "downloads", "siblings"])))
    assert expanded.downloads == 10 and expanded.likes is None
    assert [s.rfilename for s in expanded.siblings or []] == ["README.md", "llama-c.Q4_K_M.gguf"]
    full = next(iter(api.list_models(search="llama-c", full=True)))
    assert full.sha == hub.repo("org/llama-c-GGUF").sha and full.siblings is not None


def test_model_info_gives_sizes_hashes_and_the_gguf_summary(hub: HubStandIn, stories: HubRepo,
                                                            big_gguf: Path) -> None:
    api = HfApi()
    info = api.model_info(REPO, files_metadata=True)
    assert info.sha == hub.repo(REPO).sha and len(info.sha) == 40
    files = {s.rfilename: s for s in info.siblings or []}
    assert set(files) == {"README.md", "stories260K.gguf", "big/big-Q8_0.gguf"}
    tiny = files["stories260K.gguf"]
    assert tiny.size == tiny_model().stat().st_size and tiny.lfs is not None
    assert tiny.lfs.sha256 == STORIES_SHA256 and tiny.lfs.size == tiny.size and tiny.blob_id
    assert files["big/big-Q8_0.gguf"].lfs.sha256 == _sha256(big_gguf)  # type: ignore[union-attr]
    assert files["README.md"].lfs is None and files["README.md"].size
    assert info.gguf == gguf_summary(hub.repo(REPO).files.values())
    assert info.gguf is not None and info.gguf["architecture"] == "llama"
    assert info.downloads == 42 and info.likes == 7 and info.library_name == "gguf"
    assert hub.requests(path=f"/api/models/{REPO}")[-1].query == {"blobs": ["true"]}

    hub.add_repo("ggml-org/stories", {"stories260K.gguf": tiny_model()})
    small = api.model_info("ggml-org/stories", expand=["gguf"]).gguf
    reader = GGUFReader(tiny_model())
    assert small == {"total": sum(int(t.n_elements) for t in reader.tensors), "architecture": "llama",
                     "context_length": int(reader.fields["llama.context_length"].parts[-1][0])}

    assert api.model_info(REPO, revision=info.sha).sha == info.sha
    with pytest.raises(RevisionNotFoundError):
        api.model_info(REPO, revision="v9")
    with pytest.raises(RepositoryNotFoundError):
        api.model_info("nobody/nothing")
    assert hub.requests(path="/api/models/nobody/nothing")[0].status == 401

    hub.add_repo("hearth-test/secret", {"s.gguf": b"GGUF"}, private=True)
    with pytest.raises(RepositoryNotFoundError):
        api.model_info("hearth-test/secret")
    assert api.model_info("hearth-test/secret", token=TOKEN).private is True
    assert [m.id for m in api.list_models(search="secret")] == []
    assert [m.id for m in api.list_models(search="secret", token=TOKEN)] == ["hearth-test/secret"]


def test_trees_and_paths_info(hub: HubStandIn) -> None:
    content = {"Q4/model-00001-of-00002.gguf": b"GGUF1", "Q4/model-00002-of-00002.gguf": b"GGUF2",
               "model.Q8_0.gguf": b"GGUF8", "docs/deep/notes.txt": b"hello"}
    hub.add_repo("org/split-GGUF", content)
    api = HfApi()
    top = {e.path: type(e).__name__ for e in api.list_repo_tree("org/split-GGUF")}
    assert top == {"Q4": "RepoFolder", "docs": "RepoFolder", "README.md": "RepoFile", "model.Q8_0.gguf": "RepoFile"}
    inside = list(api.list_repo_tree("org/split-GGUF", path_in_repo="Q4"))
    assert [e.path for e in inside] == ["Q4/model-00001-of-00002.gguf", "Q4/model-00002-of-00002.gguf"]
    for entry in inside:
        assert isinstance(entry, RepoFile) and entry.lfs is not None and entry.size == 5
        assert entry.lfs.sha256 == hashlib.sha256(content[entry.path]).hexdigest()
    assert hub.requests(path="*/tree/main/Q4")[0].query == {"recursive": ["false"], "expand": ["false"]}
    expanded = list(api.list_repo_tree("org/split-GGUF", path_in_repo="docs", recursive=True, expand=True))
    assert [e.path for e in expanded] == ["docs/deep", "docs/deep/notes.txt"]
    assert expanded[1].last_commit.oid == hub.repo("org/split-GGUF").sha  # type: ignore[union-attr]
    with pytest.raises(RemoteEntryNotFoundError):
        list(api.list_repo_tree("org/split-GGUF", path_in_repo="nope"))

    hub.tree_page_size = 2
    hub.reset_log()
    assert api.list_repo_files("org/split-GGUF") == ["Q4/model-00001-of-00002.gguf", "Q4/model-00002-of-00002.gguf",
                                                    "README.md", "docs/deep/notes.txt", "model.Q8_0.gguf"]
    assert len(hub.requests(path="*/tree/*")) == 4  # 8 entries (with the folders), 2 a page

    info = api.get_paths_info("org/split-GGUF", ["model.Q8_0.gguf", "Q4", "missing.gguf"])
    assert [(e.path, type(e).__name__) for e in info] == [("model.Q8_0.gguf", "RepoFile"), ("Q4", "RepoFolder")]
    posted = hub.requests(method="POST")[0]
    assert posted.path == "/api/models/org/split-GGUF/paths-info/main"
    assert posted.body == b"paths=model.Q8_0.gguf&paths=Q4&paths=missing.gguf&expand=false"

    folder = snapshot_download("org/split-GGUF", allow_patterns=["Q4/*"])
    assert sorted(p.name for p in Path(folder, "Q4").iterdir()) == ["model-00001-of-00002.gguf",
                                                                  "model-00002-of-00002.gguf"]


# --- downloading --------------------------------------------------------------------------------------------------


def test_downloads_go_through_the_cdn_redirect(hub: HubStandIn, stories: HubRepo, big_gguf: Path,
                                               tmp_path: Path) -> None:
    sha = hub.repo(REPO).sha
    tiny = hf_hub_download(REPO, "stories260K.gguf", local_dir=tmp_path / "models", token=TOKEN)
    big = hf_hub_download(REPO, "big/big-Q8_0.gguf", local_dir=tmp_path / "models", token=TOKEN)
    assert Path(tiny) == tmp_path / "models" / "stories260K.gguf" and _sha256(tiny) == STORIES_SHA256
    assert Path(big).read_bytes() == big_gguf.read_bytes()

    head = hub.requests(method="HEAD", path="stories260K.gguf")[0]
    assert (head.origin, head.status, head.authorization) == ("hub", 302, f"Bearer {TOKEN}")
    gets = _cdn_gets(hub, "stories260K.gguf")
    assert len(gets) == 1 and gets[0].status == 200 and gets[0].range is None
    assert gets[0].authorization is None  # the token stays on the hub's origin
    assert gets[0].path == hub.cdn_path(REPO, "stories260K.gguf")
    assert hub.bytes_sent_for("stories260K.gguf") == tiny_model().stat().st_size
    assert hub.bytes_sent_for("big-Q8_0.gguf") == big_gguf.stat().st_size  # 12 MiB: two 10 MiB chunks, one GET
    assert not hub.requests(method="GET", origin="hub")

    metadata = get_hf_file_metadata(hf_hub_url(REPO, "big/big-Q8_0.gguf"))
    assert (metadata.commit_hash, metadata.etag, metadata.size) == (sha, _sha256(big_gguf), big_gguf.stat().st_size)
    assert metadata.location.startswith(hub.cdn_url)
    readme = get_hf_file_metadata(hf_hub_url(REPO, "README.md"))
    assert readme.etag == hub.repo(REPO).files["README.md"].blob_id and readme.location.startswith(hub.url)
    card = hf_hub_download(REPO, "README.md")  # into the cache, served by the hub itself
    assert Path(card).read_text().startswith("---\nlibrary_name: gguf\n")
    assert hub.requests(method="GET", path="README.md")[0].origin == "hub"

    hub.reset_log()
    again = hf_hub_download(REPO, "README.md", revision=sha)  # cached under the commit: no request at all
    assert Path(again).read_bytes() == Path(card).read_bytes() and hub.log == []


def test_a_dropped_connection_is_resumed_within_the_call(hub: HubStandIn, stories: HubRepo, big_gguf: Path,
                                                         tmp_path: Path) -> None:
    rule = hub.fail("*/big-Q8_0.gguf", Fault.drop(after=11 * MiB))
    path = hf_hub_download(REPO, "big/big-Q8_0.gguf", local_dir=tmp_path)
    assert Path(path).read_bytes() == big_gguf.read_bytes() and rule.hits == 1
    first, second = _cdn_gets(hub, "big-Q8_0.gguf")
    assert (first.status, first.bytes_sent, first.faults) == (200, 11 * MiB, [str(rule.fault)])
    assert (second.range, second.status) == (f"bytes={10 * MiB}-", 206)  # resumes at the last whole 10 MiB chunk
    assert second.bytes_sent == big_gguf.stat().st_size - 10 * MiB
    assert hub.bytes_sent_for("big-Q8_0.gguf") == big_gguf.stat().st_size + MiB


def test_a_reset_connection_is_not_resumed(hub: HubStandIn, stories: HubRepo, tmp_path: Path) -> None:
    """A clean close is retried with Range (above), a TCP reset mid-body is not: httpx2.ReadError escapes."""
    hub.fail("*/big-Q8_0.gguf", Fault.drop(after=11 * MiB, reset=True))
    with pytest.raises(httpx2.ReadError):
        hf_hub_download(REPO, "big/big-Q8_0.gguf", local_dir=tmp_path)
    assert len(_cdn_gets(hub, "big-Q8_0.gguf")) == 1 and not (tmp_path / "big" / "big-Q8_0.gguf").exists()


def test_missing_repos_and_files(hub: HubStandIn, stories: HubRepo, tmp_path: Path) -> None:
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("nobody/nothing", "x.gguf", local_dir=tmp_path)
    with pytest.raises(RemoteEntryNotFoundError):
        hf_hub_download(REPO, "missing.Q4_K_M.gguf", local_dir=tmp_path)
    assert hub.requests(path="missing.Q4_K_M.gguf")[0].status == 404
    hub.fail("*/stories260K.gguf", Fault.entry_not_found())
    with pytest.raises(RemoteEntryNotFoundError):
        hf_hub_download(REPO, "stories260K.gguf", local_dir=tmp_path)
    hub.fail("*/stories260K.gguf", "repo_not_found")
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download(REPO, "stories260K.gguf", local_dir=tmp_path)
    hub.fail("*/stories260K.gguf", 401)  # no X-Error-Code: http:// endpoints get no 401 -> RepoNotFound mapping
    with pytest.raises(HfHubHTTPError) as raised:
        hf_hub_download(REPO, "stories260K.gguf", local_dir=tmp_path)
    assert type(raised.value) is HfHubHTTPError and raised.value.response.status_code == 401
    assert not list(tmp_path.glob("*.gguf"))


def test_gated_repos(hub: HubStandIn, tmp_path: Path) -> None:
    hub.add_repo("meta/gated-GGUF", {"m.gguf": tiny_model()}, gated="manual")
    api = HfApi()
    assert api.model_info("meta/gated-GGUF").gated == "manual"  # the card is public, the files are not
    with pytest.raises(GatedRepoError):
        hf_hub_download("meta/gated-GGUF", "m.gguf", local_dir=tmp_path)
    assert hub.requests(method="HEAD")[-1].status == 401
    assert _sha256(hf_hub_download("meta/gated-GGUF", "m.gguf", local_dir=tmp_path, token=TOKEN)) == STORIES_SHA256
    hub.revoke("meta/gated-GGUF")
    with pytest.raises(GatedRepoError):
        hf_hub_download("meta/gated-GGUF", "m.gguf", local_dir=tmp_path / "again", token=TOKEN)
    assert hub.requests(method="HEAD")[-1].status == 403

    hub.add_repo("org/open-GGUF", {"m.gguf": b"GGUF"})
    hub.fail("*/m.gguf", "gated", method="HEAD")
    with pytest.raises(GatedRepoError):
        hf_hub_download("org/open-GGUF", "m.gguf", local_dir=tmp_path / "open")


def test_rate_limits_are_waited_out(hub: HubStandIn, stories: HubRepo, tmp_path: Path,
                                    caplog: pytest.LogCaptureFixture) -> None:
    hub.fail("*/stories260K.gguf", Fault.rate_limited(retry_after=0), method="HEAD")
    hub.fail("*/stories260K.gguf", Fault.rate_limited(retry_after=0), origin="cdn")
    with caplog.at_level(logging.WARNING, logger="huggingface_hub"):
        assert _sha256(hf_hub_download(REPO, "stories260K.gguf", local_dir=tmp_path)) == STORIES_SHA256
    # The HEAD's 429 is asked again at once (no local copy to fall back on); the CDN's is waited out for as long as
    # its Retry-After says, plus the second huggingface_hub adds, not for a backoff of its own. What it says it
    # waits, not a stopwatch.
    waits = [record.getMessage() for record in caplog.records if "Rate limited" in record.getMessage()]
    assert len(waits) == 1 and "Waiting 1.0s before retry" in waits[0], waits
    heads = hub.requests(method="HEAD", path="stories260K.gguf")
    assert [h.status for h in heads] == [429, 302]
    gets = _cdn_gets(hub, "stories260K.gguf")
    assert [g.status for g in gets] == [429, 200]
    error_body = len(b'{"error": "Too many requests"}')
    assert hub.bytes_sent_for("stories260K.gguf") == tiny_model().stat().st_size + error_body


def test_server_errors_and_refusals(hub: HubStandIn, stories: HubRepo, tmp_path: Path) -> None:
    hub.fail("*/stories260K.gguf", Fault.server_error(), origin="cdn")
    with pytest.raises(HfHubHTTPError) as raised:
        hf_hub_download(REPO, "stories260K.gguf", local_dir=tmp_path)
    assert raised.value.response.status_code == 500 and len(_cdn_gets(hub, "stories260K.gguf")) == 1  # no retry
    hub.fail("*/stories260K.gguf", "forbidden", origin="cdn")  # an expired signed URL
    with pytest.raises(HfHubHTTPError) as raised:
        hf_hub_download(REPO, "stories260K.gguf", local_dir=tmp_path)
    assert raised.value.response.status_code == 403
    hub.fail(f"/api/models/{REPO}", 503)
    with pytest.raises(HfHubHTTPError):
        HfApi().model_info(REPO)  # model_info does not retry
    assert len(hub.requests(path=f"/api/models/{REPO}")) == 1
    hub.fail("*/stories260K.gguf", Fault.no_commit())
    with pytest.raises(LocalEntryNotFoundError):
        hf_hub_download(REPO, "stories260K.gguf", local_dir=tmp_path)
    hub.fail("*/stories260K.gguf", Fault.reset(), method="HEAD")
    with pytest.raises(httpx2.TransportError):  # not wrapped in a huggingface_hub error
        hf_hub_download(REPO, "stories260K.gguf", local_dir=tmp_path)
    hub.fail("*/stories260K.gguf", Fault.truncate(1000))
    with pytest.raises(OSError, match="Consistency check failed"):
        hf_hub_download(REPO, "stories260K.gguf", local_dir=tmp_path)
    assert not (tmp_path / "stories260K.gguf").exists()


def test_wrong_bytes_are_accepted_by_huggingface_hub(hub: HubStandIn, stories: HubRepo) -> None:
    """huggingface_hub checks the size only: the app's downloader has to check the SHA-256 itself."""
    hub.fail("*/stories260K.gguf", Fault.corrupt(count=64, offset=4096))
    path = Path(hf_hub_download(REPO, "stories260K.gguf"))
    original = tiny_model().read_bytes()
    body = path.read_bytes()
    assert len(body) == len(original) and _sha256(path) != STORIES_SHA256
    assert [i for i, (a, b) in enumerate(zip(body, original, strict=True)) if a != b] == list(range(4096, 4160))
    assert path.resolve().name == STORIES_SHA256  # stored under the *expected* hash
    check = HfApi().verify_repo_checksums(REPO)
    assert [m["path"] for m in check.mismatches] == ["stories260K.gguf"]


def test_a_server_that_ignores_range_makes_the_download_start_over(hub: HubStandIn, stories: HubRepo,
                                                                   big_gguf: Path, tmp_path: Path) -> None:
    drop = hub.fail("*/big-Q8_0.gguf", Fault.drop(after=11 * MiB))
    hub.fail("*/big-Q8_0.gguf", Fault.ignore_range())
    path = hf_hub_download(REPO, "big/big-Q8_0.gguf", local_dir=tmp_path)
    assert Path(path).read_bytes() == big_gguf.read_bytes()
    first, second = _cdn_gets(hub, "big-Q8_0.gguf")
    assert first.faults == [str(drop.fault)]  # ignore_range waits for a request that has a Range
    assert (second.range, second.status, second.faults) == (f"bytes={10 * MiB}-", 200, ["ignore_range"])
    assert second.bytes_sent == big_gguf.stat().st_size


class _Clock:
    """The stand-in's clock in a test: a sleep moves it on at once, and is added up in ``slept``."""

    def __init__(self) -> None:
        self.now = self.slept = 0.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.slept += seconds


def test_slow_answers(hub: HubStandIn, stories: HubRepo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Throttled and delayed answers still arrive whole; how long the stand-in waits is read from its clock, which
    only its sleeps move on, so it is exact, however busy the machine."""
    clock = _Clock()
    monkeypatch.setattr(stand_in, "time", clock)
    size = tiny_model().stat().st_size
    hub.fail("*/stories260K.gguf", Fault.slow(bytes_per_second=4 * MiB), origin="cdn")
    assert _sha256(hf_hub_download(REPO, "stories260K.gguf", local_dir=tmp_path / "a")) == STORIES_SHA256
    assert clock.slept == pytest.approx(size / (4 * MiB))
    assert _cdn_gets(hub, "stories260K.gguf")[-1].faults == [str(Fault.slow(bytes_per_second=4 * MiB))]
    clock.slept = 0.0
    hub.fail("*/stories260K.gguf", "delay", seconds=0.3, origin="cdn")
    assert _sha256(hf_hub_download(REPO, "stories260K.gguf", local_dir=tmp_path / "b")) == STORIES_SHA256
    assert clock.slept == pytest.approx(0.3)
    assert _cdn_gets(hub, "stories260K.gguf")[-1].faults == [str(Fault.delay(0.3))]


def test_a_child_process_finds_the_stand_in_through_the_environment(hub: HubStandIn, stories: HubRepo,
                                                                    tmp_path: Path) -> None:
    script = ("import sys; from huggingface_hub import hf_hub_download, constants; "
              f"print(constants.ENDPOINT, hf_hub_download({REPO!r}, 'stories260K.gguf', local_dir=sys.argv[1]))")
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True,
                          timeout=60, check=True)
    assert done.stdout.split() == [hub.url, str(tmp_path / "stories260K.gguf")]
    assert _sha256(tmp_path / "stories260K.gguf") == STORIES_SHA256
    assert len(_cdn_gets(hub, "stories260K.gguf")) == 1


# --- the wire and the fault rules ----------------------------------------------------------------------------------


def test_ranges_heads_and_connection_faults_on_the_wire(hub: HubStandIn, stories: HubRepo) -> None:
    url = f"{hub.cdn_url}{hub.cdn_path(REPO, 'stories260K.gguf')}"
    original = tiny_model().read_bytes()
    size = len(original)
    with httpx2.Client() as client:
        part = client.get(url, headers={"Range": "bytes=10-19"})
        assert (part.status_code, part.content, part.headers["Content-Range"]) == (206, original[10:20],
                                                                                  f"bytes 10-19/{size}")
        assert client.get(url, headers={"Range": "bytes=-4"}).content == original[-4:]
        assert client.get(url, headers={"Range": f"bytes={size}-"}).status_code == 416
        head = client.head(url)
        assert head.headers["ETag"] == f'"{STORIES_SHA256}"' and head.headers["X-Repo-Commit"] == hub.repo(REPO).sha
        # Error answers to HEAD carry no body, so the connection stays usable for the next request.
        assert client.head(f"{hub.url}/nobody/nothing/resolve/main/x.gguf").status_code == 401
        resolve = client.head(hub.resolve_url(REPO, "stories260K.gguf"))
        assert resolve.status_code == 302 and resolve.headers["X-Linked-Etag"] == f'"{STORIES_SHA256}"'
        assert resolve.headers["X-Linked-Size"] == str(size) and resolve.headers["Location"].startswith(hub.cdn_url)
        hub.fail("/repos/*", "reset")
        with pytest.raises(httpx2.TransportError):
            client.get(url)
        hub.fail("/repos/*", "drop", after=1000)
        with pytest.raises(httpx2.RemoteProtocolError):
            client.get(url)
    assert [r.status for r in hub.log][-2:] == [None, 200]


def test_fault_rules_match_paths_methods_origins_and_counts(hub: HubStandIn, stories: HubRepo) -> None:
    url = hub.resolve_url(REPO, "stories260K.gguf")
    forever = hub.fail(lambda r: r.query.get("x") == ["1"], 500, times=None)
    on_post = hub.fail("*", 418, method="POST")
    drop_on_head = hub.fail("*/stories260K.gguf", Fault.drop(after=10))  # HEADs and 302s carry no file body
    with httpx2.Client() as client:
        assert [client.get(f"{hub.url}/api/models?x=1").status_code for _ in range(3)] == [500, 500, 500]
        assert client.head(url).status_code == 302 and client.get(url).status_code == 302
        assert client.post(f"{hub.url}/api/models/{REPO}/paths-info/main", data={"paths": "README.md"}).status_code \
            == 418
        assert client.post(f"{hub.url}/api/models/{REPO}/paths-info/main", data={"paths": "README.md"}).json()
    assert (forever.hits, on_post.hits, drop_on_head.hits) == (3, 1, 0)
    assert hub.requests(method="POST")[0].faults == ["status 418"]
    with pytest.raises(ValueError, match="unknown fault"):
        hub.fail("*", "explode")
    hub.clear_faults()
    assert httpx2.get(f"{hub.url}/api/models?x=1").status_code == 200


def test_replacing_a_repo_makes_a_new_commit(hub: HubStandIn, tmp_path: Path) -> None:
    old = hub.add_repo("org/m-GGUF", {"m.gguf": b"GGUF-1"}).sha
    path = hf_hub_download("org/m-GGUF", "m.gguf", local_dir=tmp_path)
    new = hub.add_repo("org/m-GGUF", {"m.gguf": b"GGUF-2"}).sha
    assert old != new and len(new) == 40
    assert Path(hf_hub_download("org/m-GGUF", "m.gguf", local_dir=tmp_path)).read_bytes() == b"GGUF-2" == \
        Path(path).read_bytes()
    with pytest.raises(RevisionNotFoundError):
        HfApi().model_info("org/m-GGUF", revision=old)


# --- the GGUF helpers ---------------------------------------------------------------------------------------------


def test_generated_gguf_files_cross_the_10_mib_chunks(big_gguf: Path, tmp_path: Path) -> None:
    assert big_gguf.stat().st_size > 12 * MiB
    reader = GGUFReader(big_gguf)
    assert reader.fields["general.architecture"].parts[-1].tobytes() == b"llama"
    loadable = loadable_big_gguf(tmp_path)
    assert loadable.stat().st_size > 10 * MiB
    assert {t.name for t in GGUFReader(loadable).tensors} >= {"token_embd.weight", "blk.3.ffn_down.weight"}
