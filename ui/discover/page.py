"""The Discover page: the curated catalog, searching the Hugging Face Hub, a model's files with the forecast for
each on this computer (read from the file's header before downloading it), and the download queue.

Every Hub call goes through ``BackgroundOp``; a download runs on the download manager's threads and reports through
the ``DownloadBridge``. A finished download is registered in the library (``modelAdded``). ``DiscoverView`` is the
page's layout; this is what it does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal

from app import network
from app.history import ModelRecord
from app.hub import search as hub
from app.words import format_bytes
from ui.discover.discover_view import OFFLINE_NOTICE, DiscoverView
from ui.qt.background import BackgroundOp

if TYPE_CHECKING:
    from app.forecast.model_check import Assessment
    from app.hub.catalog import Catalog
    from app.hub.downloads import JobChanged
    from app.settings import Settings
    from ui.qt.bridge import DownloadBridge
    from ui.services import Services


class DiscoverPage(QObject):
    """Made with the window, so that it paints at once; ``attach`` gives it the services once they are built."""

    modelAdded = Signal(object)  # ModelRecord: a download finished and is in the library
    failed = Signal(object)  # an error, for the window to show
    statusMessage = Signal(str, int)  # text, milliseconds: for the window's status bar
    offlineRequested = Signal(bool)  # the person chose to work offline (True) or online again: the app's switch

    services: Services

    def __init__(self, settings: Settings, parent: QObject) -> None:
        super().__init__(parent)
        self.settings = settings
        self._pager: hub.SearchPager | None = None
        self._retry: Callable[[], None] | None = None  # what the Hub could not answer, to ask again
        self.view = DiscoverView()

    def attach(self, services: Services, bridge: DownloadBridge) -> None:
        """The catalog, the view's requests and the downloads' progress, with the downloads already queued."""
        self.services = services
        self.view.machine = services.machine
        if services.catalog is not None:
            self.view.set_catalog(list(services.catalog.entries()))
        d, downloads = self.view, services.downloads
        d.searchRequested.connect(self.search_hub)
        d.moreRequested.connect(self.more_results)
        d.repoChosen.connect(self.show_repo_files)
        d.downloadRequested.connect(self.download)
        d.fileChosen.connect(self.assess_remote_file)
        d.pauseRequested.connect(downloads.pause)
        d.resumeRequested.connect(downloads.resume)
        d.cancelRequested.connect(downloads.cancel)
        d.retryRequested.connect(self.retry)
        d.offlineRequested.connect(self.offlineRequested)
        bridge.jobChanged.connect(self._download_changed)
        for job in downloads.jobs():
            d.job_changed(job)
        self.offline_changed(network.is_offline())

    def offline_changed(self, offline: bool) -> None:
        """The Work offline switch moved (here, in the File menu or on the Privacy page): offline, the page says so
        with a way back; online again, it asks the Hub what it could not ask before."""
        if offline:
            self.view.show_problem(OFFLINE_NOTICE, hub.HubFailure.WORKING_OFFLINE)
        else:
            self.view.hide_problem()
            self.retry()

    def retry(self) -> None:
        """Ask the Hub again what failed last (a search, more results, a model's files)."""
        again, self._retry = self._retry, None
        if again is not None:
            again()

    def _hub_failed(self, again: Callable[[], None]) -> Callable[[BaseException], None]:
        """A failure continuation: a Hub error in plain words with what helps, remembering ``again`` for Retry; any
        other error is a bug for the window to show."""
        def failed(error: BaseException) -> None:
            if not isinstance(error, hub.HubError):
                self.failed.emit(error)
                return
            if error.failure is not hub.HubFailure.REFUSED:
                self._retry = again
            self.view.show_problem(str(error), error.failure)
            self.view.show_status("")

        return failed

    def show_entry(self, repo_id: str) -> None:
        """A catalog entry with its files listed and the recommended one chosen (the welcome page's Get)."""
        self.view.show_entry(repo_id)

    def search_hub(self, query: str, sort: str) -> None:
        self.view.hide_problem()
        self._pager = hub.SearchPager(query, sort=sort, token=self.services.downloads.token)
        self._next_results(append=False)

    def more_results(self) -> None:
        if self._pager is not None:
            self._next_results(append=True)

    def _next_results(self, *, append: bool) -> None:
        pager = self._pager
        if pager is None:
            return

        def shown(found: list[hub.HubModel]) -> None:
            if pager is self._pager:
                self.view.hide_problem()
                self.view.show_search(found, more=not pager.exhausted, append=append)

        BackgroundOp(self, pager.next_page).success(shown) \
            .failure(self._hub_failed(lambda: self._next_results(append=append))).run()

    def show_repo_files(self, repo_id: str) -> None:
        def shown(groups: list[hub.FileGroup]) -> None:
            self.view.hide_problem()
            self.view.files_loaded(repo_id)
            self.view.show_files(repo_id, groups)

        report = self._hub_failed(lambda: self.show_repo_files(repo_id))

        def failed(error: BaseException) -> None:
            if repo_id == self.view.current_repo:  # not a model the person has since moved on from
                report(error)
                self.view.files_failed(repo_id)

        from app.forecast.model_check import model_card

        token = self.services.downloads.token
        BackgroundOp(self, model_card, repo_id, token=token) \
            .success(lambda text: self.view.show_card(repo_id, text)) \
            .failure(lambda _error: self.view.show_card(repo_id, "The model card could not be read.")).run()
        BackgroundOp(self, hub.repo_files, repo_id, token=token).success(shown).failure(failed).run()

    def update_catalog(self) -> None:
        """A newer catalog from the URL in the settings, if one is set and Hearth is online; the built-in one
        (or the last fetched) stays when anything goes wrong."""
        from app.hub.catalog import fetch_newer

        url, current = self.settings.catalog_url, self.services.catalog
        if not url or current is None or network.is_offline():
            return

        def newer(catalog: Catalog | None) -> None:
            if catalog is not None:
                self.services.catalog = catalog
                self.view.set_catalog(list(catalog.entries()))

        BackgroundOp(self, fetch_newer, url, current, cache_dir=self.services.paths.cache_dir).success(newer) \
            .failure(self.failed.emit).run()

    def assess_remote_file(self, repo_id: str, group: hub.FileGroup) -> None:
        """The exact forecast for a file before downloading it, from its header alone."""
        from app.forecast.model_check import assess_remote

        name = group.first.name
        machine, cache, token = self.services.machine, self.services.paths.cache_dir, self.services.downloads.token

        def shown(assessment: Assessment) -> None:
            result = assessment.forecast
            m = result.memory
            speed = f" Expected speed: {result.speed.words()}." if result.speed else ""
            self.view.show_file_details(repo_id, name, (
                f"<b>{result.verdict.value}.</b> {result.reason} It needs {format_bytes(m.ram_bytes)} with a "
                f"{result.plan.context_length:,}-token context"
                + (f" and {format_bytes(m.vram_bytes)} on the graphics card" if m.vram_bytes else "")
                + f"; the longest context that fits now is {result.max_context:,} tokens.{speed}"))

        def failed(error: BaseException) -> None:
            self.view.show_file_details(repo_id, name, f"Could not read this file's header: {error}")

        BackgroundOp(self, assess_remote, repo_id, name, machine, cache, token=token).success(shown) \
            .failure(failed).run()

    def download(self, repo_id: str, group: hub.FileGroup) -> None:
        self.services.downloads.enqueue(repo_id, [f.name for f in group.files])
        self.statusMessage.emit(f"Downloading {group.first.name}…", 4000)

    def _download_changed(self, job: JobChanged) -> None:
        from app.hub.downloads import JobState

        self.view.job_changed(job)
        if job.state is JobState.DONE and job.result is not None:
            def added(record: ModelRecord) -> None:
                self.statusMessage.emit(f"“{record.name}” is downloaded and in your library.", 6000)
                self.modelAdded.emit(record)

            BackgroundOp(self, self.services.library.register_download, job.result).success(added) \
                .failure(self.failed.emit).run()
