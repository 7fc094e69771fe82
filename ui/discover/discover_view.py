"""The Discover page's layout: the curated catalog and Hub search, a model's files by quantization with a fit badge
for this computer, and the download queue (pause, resume, cancel, retry) with progress. It shows and asks
(``searchRequested``, ``downloadRequested``, …); ``DiscoverPage`` decides."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QSignalBlocker, Qt, Signal, SignalInstance
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from app.hub.downloads import JobChanged, JobState
from app.hub.search import HubFailure
from app.words import format_bytes, format_count, rough_duration
from ui.qt import theme
from ui.qt.qt_models import verdict_label
from ui.widgets.labels import wrapped

if TYPE_CHECKING:  # the page is drawn before the core is imported (see ui/main.py)
    from app.hardware.machine import Machine
    from app.hub.catalog import CatalogEntry
    from app.hub.search import FileGroup, HubModel

ENTRY_ROLE = Qt.ItemDataRole.UserRole + 1
OFFLINE_NOTICE = ("Working offline: Hearth asks the Hugging Face Hub nothing. The list below still says how big each "
                  "model is and whether it fits; work online to search the Hub and download.")


class DiscoverView(QWidget):
    searchRequested = Signal(str, str)  # query, sort
    moreRequested = Signal()
    repoChosen = Signal(str)  # repo id
    downloadRequested = Signal(str, object)  # repo id, FileGroup
    fileChosen = Signal(str, object)  # repo id, FileGroup: the page reads its header for an exact forecast
    pauseRequested = Signal(int)
    resumeRequested = Signal(int)
    cancelRequested = Signal(int)
    addFromDiskRequested = Signal()
    retryRequested = Signal()  # ask the Hub again what could not be asked
    offlineRequested = Signal(bool)  # True: work offline (the app's switch); False: work online again

    def __init__(self) -> None:
        super().__init__()
        self.machine: Machine | None = None
        self.recommended: dict[str, str] = {}  # repo -> recommended quant (from the catalog)
        self.current_repo: str | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(24, 16, 24, 16)
        title = QLabel("Discover models")
        title.setObjectName("pageTitle")
        layout.addWidget(title)
        row = QHBoxLayout()
        self.query = QLineEdit()
        self.query.setPlaceholderText("Search the Hugging Face Hub for GGUF models (Enter), or pick one below")
        self.query.returnPressed.connect(self._search)
        self.query.textChanged.connect(self._filter_catalog)
        self.sort = QComboBox()
        for label, key in (("Most downloaded", "downloads"), ("Most liked", "likes"), ("Trending", "trending")):
            self.sort.addItem(label, key)
        search = QPushButton("Search")
        search.clicked.connect(self._search)
        catalog = QPushButton("Recommended")
        catalog.setToolTip("Back to Hearth's list of well-known small models")
        catalog.clicked.connect(self._back_to_catalog)
        row.addWidget(self.query, 1)
        row.addWidget(self.sort)
        row.addWidget(search)
        row.addWidget(catalog)
        layout.addLayout(row)
        self.status = QLabel()
        self.status.setObjectName("hint")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        layout.addWidget(self._build_notice())

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.setObjectName("discoverSplitter")  # the window keeps where it was left
        self.results = QListWidget()
        self.results.setObjectName("discoverResults")
        self.results.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)  # its lines wrap
        self.results.setWordWrap(True)
        # The selection, not the current item: Qt moves the current item by itself when the list is cleared or
        # takes the focus (as when the Retry button hides), and each move would ask the Hub for a model's files.
        self.results.itemSelectionChanged.connect(self._chosen)
        results_panel = QWidget()
        results_layout = QVBoxLayout(results_panel)
        results_layout.setContentsMargins(0, 0, 0, 0)
        results_layout.addWidget(self.results, 1)
        self.more_button = QPushButton("Load more")
        self.more_button.clicked.connect(self.moreRequested)
        self.more_button.hide()
        results_layout.addWidget(self.more_button)
        splitter.addWidget(results_panel)
        files_panel = QWidget()
        files_layout = QVBoxLayout(files_panel)
        files_layout.setContentsMargins(0, 0, 0, 0)
        self.repo_label = QLabel("Choose a model to see its files.")
        self.repo_label.setWordWrap(True)
        self.repo_label.setOpenExternalLinks(True)
        files_layout.addWidget(self.repo_label)
        self.files = QTableWidget(0, 4)
        self.files.setTabKeyNavigation(False)
        self.files.setHorizontalHeaderLabels(["Quantization", "Size", "On this computer", "Files"])
        self.files.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.files.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.files.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.files.verticalHeader().hide()
        self.files.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.files.horizontalHeader().setStretchLastSection(True)
        self.files.itemSelectionChanged.connect(self._update_buttons)
        self.files.itemSelectionChanged.connect(self._file_chosen)
        self.files.doubleClicked.connect(lambda _i: self._download())
        files_layout.addWidget(self.files, 1)
        self.file_details = QLabel()
        self.file_details.setWordWrap(True)
        self.file_details.setObjectName("modelDetails")
        self.file_details.hide()
        files_layout.addWidget(self.file_details)
        self.card = QTextBrowser()
        self.card.setOpenExternalLinks(True)
        self.card.setPlaceholderText("The model card appears here.")
        files_layout.addWidget(self.card, 1)
        self.download_button = QPushButton("Download")
        self.download_button.setObjectName("primary")
        self.download_button.clicked.connect(self._download)
        files_layout.addWidget(self.download_button, 0, Qt.AlignmentFlag.AlignRight)
        splitter.addWidget(files_panel)
        splitter.setSizes([380, 620])
        layout.addWidget(splitter, 3)

        layout.addWidget(QLabel("Downloads"))
        self.jobs = QListWidget()
        self.jobs.setMaximumHeight(140)
        self.jobs.currentItemChanged.connect(lambda *_: self._update_buttons())
        layout.addWidget(self.jobs, 1)
        job_row = QHBoxLayout()
        job_row.addStretch(1)
        self.pause_button = QPushButton("Pause")
        self.resume_button = QPushButton("Resume")
        self.cancel_button = QPushButton("Cancel download")
        self.pause_button.clicked.connect(lambda: self._job_action(self.pauseRequested))
        self.resume_button.clicked.connect(lambda: self._job_action(self.resumeRequested))
        self.cancel_button.clicked.connect(lambda: self._job_action(self.cancelRequested))
        for button in (self.pause_button, self.resume_button, self.cancel_button):
            job_row.addWidget(button)
        layout.addLayout(job_row)
        self._job_items: dict[int, QListWidgetItem] = {}
        self._job_states: dict[int, JobChanged] = {}
        self._groups: list[FileGroup] = []
        self._catalog: list[CatalogEntry] = []
        self._showing_catalog = True  # the list shows the catalog (typing filters it), not Hub results
        self._update_buttons()

    def _build_notice(self) -> QFrame:
        """What stands between the person and the Hub (no network, Work offline), in plain words, with what helps:
        Retry, Work offline or online, and a model from disk."""
        self.notice = QFrame()
        self.notice.setObjectName("hubNotice")
        row = QHBoxLayout(self.notice)
        row.setContentsMargins(12, 8, 8, 8)
        self.notice_text = wrapped("", "hubNoticeText")
        row.addWidget(self.notice_text, 1)
        self.retry_button = QPushButton("Retry")
        self.retry_button.setToolTip("Ask the Hugging Face Hub again")
        self.retry_button.clicked.connect(self._retry)
        self.work_offline_button = QPushButton("Work offline")
        self.work_offline_button.setToolTip("Stop every network request (File → Work offline); models you have and "
                                            "Hearth's list of models still work")
        self.work_offline_button.clicked.connect(lambda: self.offlineRequested.emit(True))
        self.work_online_button = QPushButton("Work online")
        self.work_online_button.setToolTip("Let Hearth ask the Hugging Face Hub again (File → Work offline)")
        self.work_online_button.clicked.connect(lambda: self.offlineRequested.emit(False))
        self.disk_button = QPushButton("Add a model from disk…")
        self.disk_button.setToolTip("Choose a .gguf file on this computer (Ctrl+I)")
        self.disk_button.clicked.connect(self.addFromDiskRequested)
        for button in (self.retry_button, self.work_offline_button, self.work_online_button, self.disk_button):
            row.addWidget(button, 0, Qt.AlignmentFlag.AlignVCenter)
        self.notice.hide()
        return self.notice

    def show_problem(self, text: str, failure: HubFailure) -> None:
        """Say why the Hub could not be asked, with the buttons that help with this ``failure``."""
        self.notice_text.setText(text)
        self.notice.setProperty("failure", failure.value)
        for widget in (self.notice, self.notice_text):  # the text's colour follows its frame's property
            widget.style().unpolish(widget)
            widget.style().polish(widget)
        self.retry_button.setVisible(failure in (HubFailure.NO_NETWORK, HubFailure.UNAVAILABLE))
        self.work_offline_button.setVisible(failure in (HubFailure.NO_NETWORK, HubFailure.UNAVAILABLE))
        self.work_online_button.setVisible(failure is HubFailure.WORKING_OFFLINE)
        self.disk_button.setVisible(failure is not HubFailure.REFUSED)
        self.notice.show()

    def hide_problem(self) -> None:
        self.notice.hide()

    def _retry(self) -> None:
        self.hide_problem()
        self.show_status("Asking the Hugging Face Hub again…")
        self.retryRequested.emit()

    # --- lists ---

    def set_catalog(self, entries: list[CatalogEntry]) -> None:
        self._catalog = entries
        self.recommended = {e.repo: e.recommended_quant for e in entries}
        self.show_catalog()

    def show_catalog(self) -> None:
        """The catalog, filtered by what is typed in the search box (every word must match)."""
        self.more_button.hide()
        self._clear_results()
        self._showing_catalog = True
        query = self.query.text().strip()
        shown = [entry for entry in self._catalog if entry.matches(query)]
        for entry in shown:
            item = QListWidgetItem(f"{entry.name}  ·  {entry.parameters_label}{self._size_and_fit(entry)}\n"
                                   f"{entry.good_at}")
            item.setData(ENTRY_ROLE, entry.repo)
            gated = " (accept it on the Hub first)" if entry.gated else ""
            item.setToolTip(f"{entry.repo}\nLicence: {entry.license}{gated}")
            self.results.addItem(item)
        if not query:
            self.show_status(f"{len(self._catalog)} well-known small models. Search to find more.")
        elif shown:
            self.show_status(f"{len(shown)} of {len(self._catalog)} well-known models match “{query}”. "
                             "Press Enter to search the Hugging Face Hub too.")
        else:
            self.show_status(f"No well-known model matches “{query}”. Press Enter to search the Hugging Face Hub.")

    def _size_and_fit(self, entry: CatalogEntry) -> str:
        """The recommended file's size and whether it fits here, from the catalog alone (offline too)."""
        from app.forecast.estimate import size_verdict

        if entry.file_size is None:
            return ""
        fit = f"  ·  {verdict_label(size_verdict(entry.file_size, self.machine))}" if self.machine else ""
        return f"  ·  {format_bytes(entry.file_size)}{fit}"

    def _filter_catalog(self) -> None:
        if self._showing_catalog:
            self.show_catalog()

    def _back_to_catalog(self) -> None:
        self.query.clear()
        self.show_catalog()

    def show_entry(self, repo_id: str) -> None:
        """Show a catalog model's files (and then its recommended one chosen), as if it were clicked in the list."""
        self.show_catalog()
        for row in range(self.results.count()):
            item = self.results.item(row)
            if item.data(ENTRY_ROLE) == repo_id:
                self.results.setCurrentItem(item)  # reads its files through repoChosen
                self.results.scrollToItem(item)
                return
        self._open_repo(repo_id)  # a model no longer in the list: its files all the same

    def show_search(self, found: list[HubModel], *, more: bool = False, append: bool = False) -> None:
        self._showing_catalog = False
        if not append:
            self._clear_results()
        for model in found:
            facts = ", ".join(x for x in (format_count(model.parameters) if model.parameters else "",
                                          model.architecture or "") if x)
            item = QListWidgetItem(f"{model.repo_id}\n{model.downloads:,} downloads · {model.likes:,} likes"
                                   + (f" · {facts}" if facts else "") + (" · gated" if model.gated else ""))
            item.setData(ENTRY_ROLE, model.repo_id)
            self.results.addItem(item)
        shown = self.results.count()
        self.show_status(f"{shown} models shown." if shown else "Nothing found. Try other words.")
        self.more_button.setVisible(more)

    def _clear_results(self) -> None:
        """Empty the list without choosing a model: Qt selects the next row as each selected one goes."""
        with QSignalBlocker(self.results):
            self.results.clear()

    def show_status(self, text: str) -> None:
        self.status.setText(text)
        self.status.setVisible(bool(text))

    def show_files(self, repo_id: str, groups: list[FileGroup]) -> None:
        from app.forecast.estimate import Verdict, size_verdict

        if repo_id != self.current_repo:
            return
        self._groups = groups
        wanted = self.recommended.get(repo_id, "Q4_K_M")
        recommended_row = -1
        self.files.setRowCount(len(groups))
        for row, group in enumerate(groups):
            if group.projector:
                fit_text, color = "Vision add-on (not a model by itself)", QColor(theme.colors().ink_soft)
            else:
                verdict = size_verdict(group.size, self.machine) if self.machine else Verdict.RUNS_WELL
                fit_text, color = verdict_label(verdict), QColor(theme.verdict_color(verdict.name))
                if recommended_row < 0 and group.quant.upper() == wanted.upper() and verdict in (
                        Verdict.RUNS_WELL, Verdict.RUNS_SLOWLY):
                    recommended_row = row
            cells = [group.quant, format_bytes(group.size), fit_text,
                     group.first.name + (f" (+{len(group.files) - 1} parts)" if len(group.files) > 1 else "")]
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if column == 2:
                    item.setForeground(color)
                self.files.setItem(row, column, item)
        first_cell = self.files.item(recommended_row, 0) if recommended_row >= 0 else None
        if first_cell is not None:
            first_cell.setText(f"{groups[recommended_row].quant}  ★ recommended")
            reason = (f"Recommended: {groups[recommended_row].quant}, a good balance of quality and size that fits "
                      "this computer's memory.")
            first_cell.setToolTip(reason)
            self.repo_label.setText(self.repo_label.text() + f"<br>{reason}")
            self.files.selectRow(recommended_row)
        self._update_buttons()

    # --- downloads ---

    def job_changed(self, job: JobChanged) -> None:
        self._job_states[job.job_id] = job
        item = self._job_items.get(job.job_id)
        if item is None:
            item = QListWidgetItem()
            self._job_items[job.job_id] = item
            self.jobs.insertItem(0, item)
        item.setText(_job_text(job))
        self._update_buttons()

    def selected_job(self) -> JobChanged | None:
        item = self.jobs.currentItem()
        for job_id, known in self._job_items.items():
            if known is item:
                return self._job_states.get(job_id)
        return None

    # --- actions ---

    def _search(self) -> None:
        self.searchRequested.emit(self.query.text().strip(), self.sort.currentData())
        self.show_status("Searching…")

    def _chosen(self) -> None:
        chosen = self.results.selectedItems()
        if chosen:
            self._open_repo(chosen[0].data(ENTRY_ROLE))

    def _open_repo(self, repo: str) -> None:
        self.current_repo = repo
        self.files.setRowCount(0)
        self.card.clear()
        self.file_details.hide()
        self.repo_label.setText(f"<b>{repo}</b> — <a href='https://huggingface.co/{repo}'>page on the Hub</a>"
                                " · reading its files…")
        self.repoChosen.emit(repo)

    def files_loaded(self, repo_id: str) -> None:
        if repo_id == self.current_repo:
            self.repo_label.setText(f"<b>{repo_id}</b> — <a href='https://huggingface.co/{repo_id}'>page on the "
                                    "Hub</a>")

    def _file_chosen(self) -> None:
        rows = self.files.selectionModel().selectedRows()
        if not rows or rows[0].row() >= len(self._groups) or self.current_repo is None:
            self.file_details.hide()
            return
        group = self._groups[rows[0].row()]
        if group.projector:
            self.file_details.hide()
            return
        self.file_details.setText(f"Reading the header of {group.first.name} to work out what it needs…")
        self.file_details.show()
        self.fileChosen.emit(self.current_repo, group)

    def show_file_details(self, repo_id: str, filename: str, text: str) -> None:
        rows = self.files.selectionModel().selectedRows()
        if repo_id == self.current_repo and rows and rows[0].row() < len(self._groups) and \
                self._groups[rows[0].row()].first.name == filename:
            self.file_details.setText(text)
            self.file_details.show()

    def show_card(self, repo_id: str, markdown: str) -> None:
        if repo_id == self.current_repo:
            self.card.setMarkdown(markdown or "This repository has no model card.")

    def files_failed(self, repo_id: str) -> None:
        """The Hub did not list the files: what Hearth's own list knows about the model's recommended file."""
        from app.forecast.estimate import size_verdict

        if repo_id != self.current_repo:
            return
        entry = next((e for e in self._catalog if e.repo == repo_id), None)
        if entry is None or entry.file_size is None:
            self.repo_label.setText(f"<b>{repo_id}</b> — its files could not be read (see above).")
            return
        fit = f" {size_verdict(entry.file_size, self.machine).value} on this computer." if self.machine else ""
        self.repo_label.setText(f"<b>{entry.name}</b> — its recommended file ({entry.recommended_quant}) is about "
                                f"{format_bytes(entry.file_size)}.{fit} The list of its files comes from the Hub.")

    def _download(self) -> None:
        rows = self.files.selectionModel().selectedRows()
        if self.current_repo and rows and not self._groups[rows[0].row()].projector:
            self.downloadRequested.emit(self.current_repo, self._groups[rows[0].row()])

    def _job_action(self, signal: SignalInstance) -> None:
        job = self.selected_job()
        if job is not None:
            signal.emit(job.job_id)

    def _update_buttons(self) -> None:
        rows = self.files.selectionModel().selectedRows() if self.files.selectionModel() else []
        self.download_button.setEnabled(bool(rows) and not self._groups[rows[0].row()].projector
                                        if rows and rows[0].row() < len(self._groups) else False)
        job = self.selected_job()
        running = job is not None and job.state in (JobState.QUEUED, JobState.RESOLVING, JobState.DOWNLOADING)
        self.pause_button.setEnabled(running)
        self.resume_button.setEnabled(job is not None and job.state in (JobState.PAUSED, JobState.FAILED))
        self.resume_button.setText("Retry" if job is not None and job.state is JobState.FAILED else "Resume")
        self.cancel_button.setEnabled(job is not None and job.state not in (JobState.DONE, JobState.CANCELLED))


def _job_text(job: JobChanged) -> str:
    name = job.filenames[0] + (f" (+{len(job.filenames) - 1} parts)" if len(job.filenames) > 1 else "")
    share = f"{job.done_bytes * 100 // job.total_bytes}% of {format_bytes(job.total_bytes)}" if job.total_bytes else ""
    if job.state is JobState.DOWNLOADING:
        left = job.seconds_left
        eta = f" · {rough_duration(left)} left" if left is not None else ""
        return f"{name} — {share} · {format_bytes(int(job.bytes_per_s))}/s{eta}"
    label = {JobState.QUEUED: "waiting", JobState.RESOLVING: "starting", JobState.VERIFYING: "checking the file",
             JobState.PAUSED: "paused", JobState.DONE: "done, in your library", JobState.CANCELLED: "cancelled",
             JobState.FAILED: f"failed: {job.error}"}[job.state]
    return f"{name} — {label}" + (f" ({share})" if share and job.state is JobState.PAUSED else "")

