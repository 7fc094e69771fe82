"""Search, file lists and downloads through the real huggingface_hub against the project's Hub stand-in."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.engine import EngineClient
from app.hub import search as hub_api
from app.hub.downloads import DownloadManager, JobState, resolve_file
from app.library import Library

from tests.helpers import ROOT
from tests.helpers.command import hearth
from tests.helpers.hub_stand_in import Fault, HubStandIn, hub_fixture, write_big_gguf  # noqa: F401

MIB = 1 << 20


def _manager(tmp_path: Path) -> DownloadManager:
    return DownloadManager(tmp_path / "models" / ".downloads", tmp_path / "models")


@pytest.fixture
def big(tmp_path: Path) -> Path:
    return write_big_gguf(tmp_path / "big-Q4_K_M.gguf", size=24 * MIB)


def test_search_sorts_and_summarises(hub: HubStandIn, test_model_path: Path) -> None:
    hub.add_repo("ggml-org/stories-GGUF", {"stories260K-F32.gguf": test_model_path}, downloads=500, likes=3)
    hub.add_repo("someone/popular-GGUF", {"popular-Q4_K_M.gguf": test_model_path}, downloads=9000, likes=1)
    found = hub_module_search("")
    assert [m.repo_id for m in found][:2] == ["someone/popular-GGUF", "ggml-org/stories-GGUF"]
    assert found[1].architecture == "llama" and found[1].context_length == 2048
    assert hub_module_search("", sort="likes")[0].repo_id == "ggml-org/stories-GGUF"


def hub_module_search(query: str, sort: str = "downloads") -> list[hub_api.HubModel]:
    return hub_api.search_models(query, sort=sort, limit=10)


def test_files_are_grouped_by_quantization(hub: HubStandIn, test_model_path: Path) -> None:
    data = test_model_path.read_bytes()
    hub.add_repo("owner/mixed-GGUF", {"m-Q8_0.gguf": data + data, "m-Q4_K_M-00001-of-00002.gguf": data[:600_000],
                                      "m-Q4_K_M-00002-of-00002.gguf": data[600_000:], "mmproj-m-F16.gguf": data,
                                      "README.md": "# card"})
    groups = hub_api.repo_files("owner/mixed-GGUF")
    assert [(g.quant, len(g.files), g.projector) for g in groups] == [
        ("Q4_K_M", 2, False), ("Q8_0", 1, False), ("F16", 1, True)]
    assert groups[0].size == len(data) and all(f.sha256 for g in groups for f in g.files)
    assert hub_api.pick_group(groups).quant == "Q4_K_M"
    with pytest.raises(hub_api.HubError, match="Available: Q4_K_M, Q8_0"):
        hub_api.pick_group(groups, quant="Q2_K")


def test_a_dropped_connection_resumes_and_the_file_is_verified(hub: HubStandIn, tmp_path: Path, big: Path) -> None:
    hub.add_repo("owner/big-GGUF", {big.name: big})
    hub.fail(f"*/{big.name}", Fault.drop(after=5 * MIB, reset=True))
    hub.fail(f"*/{big.name}", Fault.rate_limited(retry_after=0))
    downloads = _manager(tmp_path)
    final = downloads.wait(downloads.enqueue("owner/big-GGUF", [big.name]), 120)
    assert final.state is JobState.DONE and final.result is not None
    assert final.result.read_bytes() == big.read_bytes()
    assert downloads.fetched_bytes(final.job_id) <= big.stat().st_size + MIB  # resumed, not restarted
    assert any(r.range and r.range.startswith("bytes=") for r in hub.requests(method="GET"))


@pytest.mark.parametrize(("fault", "words"), [
    (Fault.gated(), "accept its licence"),
    (Fault.repo_not_found(), "There is no model called"),
    (Fault.entry_not_found(), "has no file called"),
])
def test_refusals_end_in_plain_words(hub: HubStandIn, tmp_path: Path, big: Path, fault: Fault, words: str) -> None:
    hub.add_repo("owner/big-GGUF", {big.name: big})
    hub.fail("*", fault, times=99)
    downloads = _manager(tmp_path)
    final = downloads.wait(downloads.enqueue("owner/big-GGUF", [big.name]), 60)
    assert final.state is JobState.FAILED and final.error is not None and words in final.error


def test_wrong_bytes_are_caught_by_the_checksum(hub: HubStandIn, tmp_path: Path, big: Path) -> None:
    hub.add_repo("owner/big-GGUF", {big.name: big})
    hub.fail(f"*/{big.name}", Fault.corrupt(count=64, offset=MIB))
    downloads = _manager(tmp_path)
    final = downloads.wait(downloads.enqueue("owner/big-GGUF", [big.name]), 60)
    assert final.state is JobState.FAILED and final.error is not None and "damaged" in final.error
    assert not (tmp_path / "models" / big.name).exists()
    downloads.retry(final.job_id)
    assert downloads.wait(final.job_id, 60).state is JobState.DONE


def test_server_errors_give_up_with_a_message(hub: HubStandIn, tmp_path: Path, big: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import app.hub.downloads as downloads_module

    monkeypatch.setattr(downloads_module, "BACKOFF_S", (0.01,) * 5)
    hub.add_repo("owner/big-GGUF", {big.name: big})
    hub.fail(f"*/{big.name}", Fault.server_error(), times=99, origin="cdn")
    downloads = _manager(tmp_path)
    final = downloads.wait(downloads.enqueue("owner/big-GGUF", [big.name]), 60)
    assert final.state is JobState.FAILED and final.error is not None
    assert "kept failing" in final.error and "Retry" in final.error


def test_killed_process_resumes_in_a_new_one(hub: HubStandIn, tmp_path: Path, big: Path) -> None:
    hub.add_repo("owner/big-GGUF", {big.name: big})
    hub.fail(f"*/{big.name}", Fault.slow(bytes_per_second=8 * MIB), times=1)
    home = tmp_path / "home"
    script = (f"import sys; sys.path[:0] = [{str(ROOT)!r}]\n"
              "from pathlib import Path\nfrom app.hub.downloads import DownloadManager\n"
              f"m = DownloadManager(Path({str(home / 'models' / '.downloads')!r}), Path({str(home / 'models')!r}))\n"
              f"m.wait(m.enqueue('owner/big-GGUF', [{big.name!r}]))\n")
    child = subprocess.Popen([sys.executable, "-c", script], env=os.environ.copy())
    partial = home / "models" / ".downloads"
    while child.poll() is None and sum(p.stat().st_size for p in partial.glob("*.part")) < 6 * MIB:
        time.sleep(0.05)  # until it is part of the way through (throttled, it needs seconds for the whole file)
    child.send_signal(signal.SIGKILL)
    child.wait(10)
    have = sum(p.stat().st_size for p in partial.glob("*.part"))
    assert 0 < have < big.stat().st_size

    downloads = DownloadManager(partial, home / "models")
    [job] = downloads.restore()
    downloads.resume(job)
    final = downloads.wait(job, 60)
    assert final.state is JobState.DONE and final.result is not None
    assert final.result.read_bytes() == big.read_bytes()
    assert downloads.fetched_bytes(job) == big.stat().st_size - have  # no completed byte fetched again


@pytest.mark.engine
def test_a_downloaded_model_loads_and_answers(hub: HubStandIn, tmp_path: Path, test_model_path: Path) -> None:
    from app.history import HistoryStore, open_database

    hub.add_repo("ggml-org/stories-GGUF", {"stories260K-F32.gguf": test_model_path})
    assert resolve_file("ggml-org/stories-GGUF", "stories260K-F32.gguf").sha256 is not None
    downloads = _manager(tmp_path)
    final = downloads.wait(downloads.enqueue("ggml-org/stories-GGUF", ["stories260K-F32.gguf"]), 60)
    assert final.state is JobState.DONE and final.result is not None
    library = Library(HistoryStore(open_database(tmp_path / "history.sqlite3")), tmp_path / "models")
    record = library.register_download(final.result)
    assert not record.in_place and library.models() == [record]
    engine = EngineClient()
    engine.start()
    try:
        engine.load_blocking(record.path, context_length=512)
        answer = engine.chat_blocking([{"role": "user", "content": "Once upon a time"}], max_tokens=8)
        assert answer.text.strip()
    finally:
        engine.shutdown()


def test_cli_lists_files_and_pulls_into_the_library(hub: HubStandIn, tmp_path: Path) -> None:
    from tests.helpers.hub_stand_in import loadable_big_gguf

    (tmp_path / "served").mkdir()
    model = loadable_big_gguf(tmp_path / "served")
    hub.add_repo("owner/big-GGUF", {"big-Q4_K_M.gguf": model, "big-Q8_0.gguf": model})
    listed = hearth(tmp_path / "home", "models", "files", "owner/big-GGUF")
    assert listed.returncode == 0, listed.stderr
    assert "Q4_K_M" in listed.stdout and "Runs well" in listed.stdout
    pulled = hearth(tmp_path / "home", "models", "pull", "owner/big-GGUF")
    assert pulled.returncode == 0, pulled.stderr
    assert "into the library" in pulled.stdout and "big-Q4_K_M.gguf" in pulled.stderr  # the progress bar
    assert (tmp_path / "home" / "models" / "owner" / "big-GGUF" / "big-Q4_K_M.gguf").read_bytes() == model.read_bytes()
    again = hearth(tmp_path / "home", "models", "pull", "owner/big-GGUF", "--quant", "Q4_K_M")
    assert again.returncode == 0, again.stderr
    listed = hearth(tmp_path / "home", "models", "list", "--json")
    assert len(__import__("json").loads(listed.stdout)) == 1


def test_search_pages_on_demand(hub: HubStandIn, test_model_path: Path) -> None:
    for i in range(10):
        hub.add_repo(f"owner/model-{i}-GGUF", {"m-Q4_K_M.gguf": test_model_path}, downloads=100 - i)
    pager = hub_api.SearchPager("model", page_size=4)
    pages = [pager.next_page(), pager.next_page(), pager.next_page()]
    assert [len(p) for p in pages] == [4, 4, 2] and pager.exhausted
    assert [m.repo_id for p in pages for m in p] == [f"owner/model-{i}-GGUF" for i in range(10)]


def _pull(downloads: DownloadManager, repo: str, name: str) -> Path:
    final = downloads.wait(downloads.enqueue(repo, [name]), 60)
    assert final.state is JobState.DONE and final.result is not None, final.error
    return final.result


def test_the_same_file_name_in_two_repositories_never_overwrites_a_model(
        hub: HubStandIn, tmp_path: Path, test_model_path: Path) -> None:
    from app.history import HistoryStore, open_database

    from tests.helpers.gguf_fixtures import with_chat_template

    theirs = with_chat_template(test_model_path, tmp_path)  # a different model under the same file name
    hub.add_repo("alice/tiny-GGUF", {"tiny-Q4_K_M.gguf": test_model_path})
    hub.add_repo("bob/tiny-GGUF", {"tiny-Q4_K_M.gguf": theirs})
    downloads = _manager(tmp_path)
    library = Library(HistoryStore(open_database(tmp_path / "history.sqlite3")), tmp_path / "models")
    alices = library.register_download(_pull(downloads, "alice/tiny-GGUF", "tiny-Q4_K_M.gguf"))
    bobs = library.register_download(_pull(downloads, "bob/tiny-GGUF", "tiny-Q4_K_M.gguf"))
    assert alices.path != bobs.path and len(library.models()) == 2
    assert Path(alices.path).read_bytes() == test_model_path.read_bytes()
    assert Path(bobs.path).read_bytes() == theirs.read_bytes()
    assert Path(alices.path) == tmp_path / "models" / "alice" / "tiny-GGUF" / "tiny-Q4_K_M.gguf"

    fetched = len(hub.requests(method="GET", path="tiny-Q4_K_M.gguf"))
    again = _pull(downloads, "alice/tiny-GGUF", "tiny-Q4_K_M.gguf")  # a pull again is a no-op
    assert again == Path(alices.path) and library.register_download(again) == alices
    assert len(hub.requests(method="GET", path="tiny-Q4_K_M.gguf")) == fetched and len(library.models()) == 2


def test_a_new_version_of_a_file_never_overwrites_the_one_in_the_library(
        hub: HubStandIn, tmp_path: Path, test_model_path: Path) -> None:
    from tests.helpers.gguf_fixtures import with_chat_template

    hub.add_repo("alice/tiny-GGUF", {"tiny-Q4_K_M.gguf": test_model_path})
    downloads = _manager(tmp_path)
    first = _pull(downloads, "alice/tiny-GGUF", "tiny-Q4_K_M.gguf")
    hub.add_repo("alice/tiny-GGUF", {"tiny-Q4_K_M.gguf": with_chat_template(test_model_path, tmp_path)})
    newer = _pull(downloads, "alice/tiny-GGUF", "tiny-Q4_K_M.gguf")
    assert newer != first and newer.name == first.name and newer.parent.parent == first.parent
    assert first.read_bytes() == test_model_path.read_bytes()


def test_a_model_an_earlier_hearth_downloaded_keeps_working(hub: HubStandIn, tmp_path: Path,
                                                            test_model_path: Path) -> None:
    """Hearth used to put downloads straight into the models folder; those files and their entries stay valid."""
    from app.history import HistoryStore, open_database

    from tests.helpers.gguf_fixtures import with_chat_template

    old = tmp_path / "models" / "tiny-Q4_K_M.gguf"
    old.parent.mkdir(parents=True)
    old.write_bytes(test_model_path.read_bytes())
    library = Library(HistoryStore(open_database(tmp_path / "history.sqlite3")), tmp_path / "models")
    kept = library.register_download(old)
    hub.add_repo("alice/tiny-GGUF", {"tiny-Q4_K_M.gguf": test_model_path})
    hub.add_repo("bob/tiny-GGUF", {"tiny-Q4_K_M.gguf": with_chat_template(test_model_path, tmp_path)})
    downloads = _manager(tmp_path)
    assert _pull(downloads, "alice/tiny-GGUF", "tiny-Q4_K_M.gguf") == old  # already there: nothing fetched
    assert hub.requests(method="GET", path="tiny-Q4_K_M.gguf") == []
    bobs = _pull(downloads, "bob/tiny-GGUF", "tiny-Q4_K_M.gguf")
    assert bobs != old and old.read_bytes() == test_model_path.read_bytes()
    assert library.models() == [kept] and library.register_download(bobs).path == str(bobs.resolve())
