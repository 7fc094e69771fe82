"""The right side of the Compare page: one comparison, running or finished, as columns side by side (one per
model, in the order the comparison shows them), with each model's figures, the vote, the chart, and what can
be done with it. It shows what it is given and says what the person asks for; the page does the work."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from app.compare.figures import (
    STATUS_WORDS,
    concurrency_note,
    label,
    shown_entries,
    shown_figures,
    verdict_text,
)
from app.compare.spec import KIND_WORDS
from app.gguf.kind import BASE_MODEL_NOTE
from app.history import ComparisonRecord, EntryRecord
from app.outcomes import FINISHED, RunStatus
from app.words import format_bytes
from ui.compare.chart import CompareChart
from ui.widgets.labels import elide_words, result_heading, show_notice, wrapped

RENDER_INTERVAL_MS = 50
VOTE_NAME_WIDTH = 170  # pixels of a model name on its vote button
MEMORY_KEYS = ("estimate_bytes", "peak_rss_bytes")


def _size(value: Any) -> str:
    return format_bytes(int(value)) if value else "–"


def schedule_words(record: ComparisonRecord, groups: list[list[int]], free_bytes: int | None) -> str:
    """How the models take turns, from the comparer's groups: "Running both at once: they fit in the 5.2 GB
    free", "One after another: not enough free memory to run them together"."""
    free = f" in the {format_bytes(free_bytes)} free" if free_bytes and free_bytes > 0 else " in the free memory"
    count = len(record.entries)
    if len(groups) == 1 and len(groups[0]) > 1:
        together = "both" if count == 2 else f"all {count}"
        return (f"Running {together} at once, as you asked: they fit{free}. They share the processor, so each "
                "writes slower than it would alone.")
    if all(len(group) == 1 for group in groups):
        if record.settings.get("one_at_a_time"):
            return ("One after another: each model has the computer to itself, so every speed is the model's own "
                    "and they compare fairly.")
        room = f" ({format_bytes(free_bytes)} free)" if free_bytes and free_bytes > 0 else ""
        return f"One after another: not enough free memory to run them together{room}."
    by_position = {entry.position: entry for entry in record.entries}
    rounds = ", then ".join(" and ".join(label(record, by_position[p]) for p in group) for group in groups)
    return f"In {len(groups)} rounds ({rounds}): not all of them fit{free} at once."


def settings_words(record: ComparisonRecord) -> str:
    """"Deterministic (temperature 0) · seed 1234 · blind"."""
    s = record.settings
    parts = ["Deterministic (temperature 0)" if s.get("deterministic") else f"Temperature {s.get('temperature')}",
             f"seed {s.get('seed')}"]
    if s.get("blind"):
        parts.append("blind")
    if not s.get("one_at_a_time", True):
        parts.append("run at the same time")
    return " · ".join(str(part) for part in parts)


def entry_figures(record: ComparisonRecord, entry: EntryRecord) -> list[tuple[str, str, str]]:
    """(key, title, value) for every figure the comparison shows now (``shown_figures``); the two memory figures
    share one row, "Memory": "forecast 1.1 GB · measured 1.2 GB"."""
    rows: list[tuple[str, str, str]] = []
    for figure in shown_figures(record):
        if figure.key in MEMORY_KEYS:
            if not any(key == "peak_rss_bytes" for key, _t, _v in rows):
                m = entry.metrics
                rows.append(("peak_rss_bytes", "Memory", f"forecast {_size(m.get('estimate_bytes'))} · measured "
                                                         f"{_size(m.get('peak_rss_bytes'))}"))
            continue
        rows.append((figure.key, figure.title, figure.show(entry.metrics.get(figure.key))))
    return rows


def best_positions(record: ComparisonRecord) -> dict[str, int]:
    """For each figure, the position of the model that did best, when at least two have the figure and one
    is better as shown (not by a hair that the page does not show)."""
    best: dict[str, int] = {}
    for figure in shown_figures(record):
        values = [(float(e.metrics[figure.key]), e.position) for e in record.entries
                  if e.status == RunStatus.DONE and isinstance(e.metrics.get(figure.key), int | float)]
        if len(values) < 2:
            continue
        values.sort(reverse=figure.better == "higher")
        if figure.show(values[0][0]) != figure.show(values[1][0]):  # not when they read the same
            best[figure.key] = values[0][1]
    return best


def status_line(entry: EntryRecord, detail: str = "") -> str:
    if entry.status == RunStatus.FAILED:
        return f"Failed: {entry.error}" if entry.error else "Failed"
    if entry.status in (RunStatus.RUNNING, "loading") and detail:
        return detail
    if entry.status == RunStatus.WAITING:
        return detail or "Waiting for its turn"
    return STATUS_WORDS.get(entry.status, entry.status)


class _Output(QPlainTextEdit):
    """A model's text. It asks for little room, so the columns fit the window with the chart under them; the
    room left over goes to it."""

    def sizeHint(self) -> QSize:
        return QSize(240, 100)


class EntryColumn(QFrame):
    """One model: its name (or "Model A"), what it is doing, its text, its figures and its vote button."""

    voteRequested = Signal(int)  # position

    def __init__(self, position: int) -> None:
        super().__init__()
        self.position = position
        self.setObjectName("compareColumn")
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 8, 10, 10)
        layout.setSpacing(4)
        self.title = QLabel()
        self.title.setObjectName("columnTitle")
        self.title.setWordWrap(True)
        layout.addWidget(self.title)
        self.base_note = wrapped(BASE_MODEL_NOTE, "taskNotice")
        self.base_note.setToolTip("It was not tuned to follow instructions, so it may go on from the prompt instead "
                                  "of answering it. Compare instruct models to see which answers better.")
        self.base_note.hide()
        layout.addWidget(self.base_note)
        self.status = QLabel()
        self.status.setObjectName("hint")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        self.output = _Output()
        self.output.setObjectName("compareOutput")
        self.output.setReadOnly(True)
        self.output.setMinimumHeight(80)
        layout.addWidget(self.output, 1)
        self.figures = QWidget()
        self.figure_grid = QGridLayout(self.figures)
        self.figure_grid.setContentsMargins(0, 4, 0, 0)
        self.figure_grid.setHorizontalSpacing(10)
        self.figure_grid.setVerticalSpacing(1)
        self.figure_labels: dict[str, tuple[QLabel, QLabel]] = {}
        layout.addWidget(self.figures)
        self.note = QLabel()
        self.note.setObjectName("figureNote")
        self.note.setWordWrap(True)
        layout.addWidget(self.note)
        self.vote_button = QPushButton()
        self.vote_button.setObjectName("voteButton")
        self.vote_button.setCheckable(True)
        self.vote_button.clicked.connect(lambda: self.voteRequested.emit(self.position))
        layout.addWidget(self.vote_button)
        self._text = ""
        self._render_timer = QTimer(self, singleShot=True, interval=RENDER_INTERVAL_MS)
        self._render_timer.timeout.connect(self._render)

    def set_label(self, text: str, tooltip: str) -> None:
        self.title.setText(text)
        self.title.setToolTip(tooltip)
        short = elide_words(text, self.vote_button.fontMetrics(), VOTE_NAME_WIDTH)
        self.vote_button.setText(f"{short} is better")
        self.vote_button.setToolTip(f"Vote for the answer of {text}")

    def set_status(self, text: str, failed: bool = False) -> None:
        self.status.setText(text)
        self.status.setObjectName("inputError" if failed else "hint")
        self.status.style().unpolish(self.status)
        self.status.style().polish(self.status)

    def set_text(self, text: str, *, now: bool = False) -> None:
        """Streamed text comes fast: it is drawn at most every 50 ms."""
        self._text = text
        if now:
            self._render_timer.stop()
            self._render()
        elif not self._render_timer.isActive():
            self._render_timer.start()

    def text(self) -> str:
        return self._text

    def _render(self) -> None:
        if self.output.toPlainText() == self._text:
            return
        bar = self.output.verticalScrollBar()
        at_end = bar.value() >= bar.maximum() - 4
        self.output.setPlainText(self._text)
        if at_end:
            bar.setValue(bar.maximum())

    def figure_keys(self) -> list[str]:
        return list(self.figure_labels) if self.figures.isVisibleTo(self) else []

    def set_figures(self, rows: list[tuple[str, str, str]] | None, best: set[str]) -> None:
        """``None`` hides the figures (the model has not finished). The rows follow ``rows``: a blind
        comparison shows fewer until its vote."""
        self.figures.setVisible(rows is not None)
        keys = [key for key, _title, _value in rows or []]
        if rows is not None and list(self.figure_labels) != keys:
            for name, shown in self.figure_labels.values():
                name.deleteLater()
                shown.deleteLater()
            self.figure_labels.clear()
        for key, title, value in rows or []:
            if key not in self.figure_labels:
                name, shown = QLabel(), QLabel()
                name.setObjectName("figureName")
                shown.setObjectName("figureValue")
                shown.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
                shown.setWordWrap(True)
                row = len(self.figure_labels)
                self.figure_grid.addWidget(name, row, 0, Qt.AlignmentFlag.AlignTop)
                self.figure_grid.addWidget(shown, row, 1)
                self.figure_grid.setColumnStretch(1, 1)
                self.figure_labels[key] = (name, shown)
            name, shown = self.figure_labels[key]
            name.setText(title)
            shown.setText(value)
            shown.setProperty("best", key in best)
            shown.setToolTip("The best of the models here" if key in best else "")
            shown.style().unpolish(shown)
            shown.style().polish(shown)

    def set_note(self, text: str | None) -> None:
        self.note.setText(text or "")
        self.note.setVisible(bool(text))


@dataclass
class LiveState:
    """What a running comparison has shown that history does not hold yet: each model's status detail and
    the text of its current model call."""

    details: dict[int, str] = field(default_factory=dict)
    texts: dict[int, str] = field(default_factory=dict)
    schedule: str = ""


class ComparisonPanel(QWidget):
    voteRequested = Signal(str, object)  # verdict ("winner", "tie", "both_bad"), winner position or None
    saveRequested = Signal()
    runAgainRequested = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("resultPanel")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground)
        self.record: ComparisonRecord | None = None
        self.base_model_paths: frozenset[str] = frozenset()  # the library's base models, by file
        self.columns: dict[int, EntryColumn] = {}
        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 12, 16, 12)
        layout.setSpacing(6)
        heading = result_heading(layout)
        self.title, self.subtitle, self.notice = heading.title, heading.subtitle, heading.notice
        self.schedule = QLabel()
        self.schedule.setObjectName("planLine")
        self.schedule.setWordWrap(True)
        self.schedule.hide()
        layout.addWidget(self.schedule)

        self.stack = QStackedWidget()
        self.empty = QLabel()
        self.empty.setObjectName("emptyState")
        self.empty.setWordWrap(True)
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.stack.addWidget(self.empty)
        self.scroll_area = QScrollArea()
        self.scroll_area.setObjectName("compareScroll")
        self.scroll_area.setWidgetResizable(True)
        self.scroll_area.setFrameShape(QFrame.Shape.NoFrame)
        body = QWidget()
        body.setObjectName("compareBody")
        self.body = QVBoxLayout(body)
        self.body.setContentsMargins(0, 0, 0, 0)
        self.body.setSpacing(8)
        self.columns_row = QHBoxLayout()
        self.columns_row.setSpacing(10)
        self.body.addLayout(self.columns_row, 1)
        self.shared_note = QLabel()  # the concurrency note, once, when it is the same for every model
        self.shared_note.setObjectName("figureNote")
        self.shared_note.setWordWrap(True)
        self.shared_note.hide()
        self.body.addWidget(self.shared_note)
        vote = QHBoxLayout()
        vote.setSpacing(8)
        self.vote_label = QLabel("Which answer is better?")
        self.vote_label.setObjectName("sectionTitle")
        vote.addWidget(self.vote_label)
        self.tie_button = QPushButton("Tie")
        self.tie_button.setObjectName("voteButton")
        self.tie_button.setCheckable(True)
        self.tie_button.setToolTip("The answers are about as good as each other")
        self.tie_button.clicked.connect(lambda: self.voteRequested.emit("tie", None))
        self.bad_button = QPushButton("Both bad")
        self.bad_button.setObjectName("voteButton")
        self.bad_button.setCheckable(True)
        self.bad_button.clicked.connect(lambda: self.voteRequested.emit("both_bad", None))
        vote.addWidget(self.tie_button)
        vote.addWidget(self.bad_button)
        self.verdict = QLabel()
        self.verdict.setObjectName("verdictLine")
        self.verdict.setWordWrap(True)
        self.verdict.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.verdict.setToolTip("Click another button to change your vote")
        vote.addWidget(self.verdict, 1)
        self.body.addLayout(vote)
        self.chart = CompareChart()
        self.chart.hide()
        self.body.addWidget(self.chart)
        self.scroll_area.setWidget(body)
        self.stack.addWidget(self.scroll_area)
        layout.addWidget(self.stack, 1)

        actions = QHBoxLayout()
        self.save_button = QPushButton("Save report…")
        self.save_button.setToolTip("Save the comparison with its outputs, figures and chart as a web page or "
                                    "Markdown file (Ctrl+Shift+S)")
        self.save_button.clicked.connect(self.saveRequested)
        self.again_button = QPushButton("Run again")
        self.again_button.setToolTip("Put this comparison's input, models and options back into the form, to run "
                                     "it again (after a new download, say)")
        self.again_button.clicked.connect(self.runAgainRequested)
        actions.addWidget(self.save_button)
        actions.addWidget(self.again_button)
        actions.addStretch(1)
        layout.addLayout(actions)
        self.show_empty("")

    # --- what is on show ---

    def show_empty(self, text: str) -> None:
        self.record = None
        self._set_columns([])
        self.title.setText("")
        self.subtitle.setText("")
        self.title.hide()
        self.subtitle.hide()
        self.set_notice("")
        self.set_schedule("")
        self.chart.clear()
        self.chart.hide()
        self.empty.setText(text)
        self.stack.setCurrentWidget(self.empty)
        self.save_button.hide()
        self.again_button.hide()

    def show_record(self, record: ComparisonRecord, live: LiveState | None = None) -> None:
        """Show ``record`` whole (a finished one, or the running one with ``live``'s details and texts)."""
        self.record = record
        entries = shown_entries(record)
        self._set_columns([entry.position for entry in entries])
        self.stack.setCurrentWidget(self.scroll_area)
        self.title.show()
        self.subtitle.show()
        self.title.setText(record.title or "Comparison")
        when = record.created_at.astimezone()
        self.subtitle.setText(f"{KIND_WORDS.get(record.kind, record.kind)} · {when:%d %b %Y, %H:%M} · "
                              f"{settings_words(record)}")
        running = record.status == RunStatus.RUNNING
        self.set_schedule(live.schedule if live is not None and running else "")
        best = best_positions(record)
        for entry in entries:
            self._show_entry(record, entry, live, best)
        self._place_notes(record)
        self.set_notice(*self._notice(record))
        self._show_vote(record)
        if not running and self.chart.set_record(record):
            self.chart.show()
        else:
            self.chart.clear()
            self.chart.hide()
        self.save_button.show()
        self.again_button.show()
        self.save_button.setEnabled(not running)

    def update_entry(self, record: ComparisonRecord, entry: EntryRecord) -> None:
        """One model finished while the comparison runs."""
        self.record = record
        if entry.position in self.columns:
            self._show_entry(record, entry, None, best_positions(record))
            self._place_notes(record)

    def entry_changed(self, position: int, detail: str) -> None:
        column = self.columns.get(position)
        if column is not None:
            column.set_status(detail)

    def entry_text(self, position: int, text: str) -> None:
        column = self.columns.get(position)
        if column is not None:
            column.set_text(text)

    def set_schedule(self, text: str) -> None:
        self.schedule.setText(text)
        self.schedule.setVisible(bool(text))

    def set_notice(self, text: str, kind: str = "info") -> None:
        show_notice(self.notice, text, kind)

    def set_run_again_allowed(self, allowed: bool, why: str = "") -> None:
        self.again_button.setEnabled(allowed)
        if why:
            self.again_button.setToolTip(why)

    # --- parts ---

    def _set_columns(self, positions: list[int]) -> None:
        if list(self.columns) == positions:
            return
        for column in self.columns.values():
            self.columns_row.removeWidget(column)
            column.deleteLater()
        self.columns = {}
        for position in positions:
            column = EntryColumn(position)
            column.voteRequested.connect(lambda p: self.voteRequested.emit("winner", p))
            self.columns_row.addWidget(column, 1)
            self.columns[position] = column
        self.bad_button.setText("Both bad" if len(positions) <= 2 else "All bad")
        self.bad_button.setToolTip("Neither answer is good" if len(positions) <= 2 else "None of the answers is good")

    def _show_entry(self, record: ComparisonRecord, entry: EntryRecord, live: LiveState | None,
                    best: dict[str, int]) -> None:
        column = self.columns[entry.position]
        name = label(record, entry)
        column.set_label(name, "Names are shown after you vote" if record.names_hidden else entry.model_path)
        # Which model is a base model would give the names away: said once the vote shows them.
        column.base_note.setVisible(not record.names_hidden and entry.model_path in self.base_model_paths)
        detail = live.details.get(entry.position, "") if live is not None else ""
        if record.status != RunStatus.RUNNING and entry.status in (RunStatus.WAITING, RunStatus.RUNNING):
            entry_status = RunStatus.CANCELLED  # never started, or cut off: the comparison is over
            column.set_status(STATUS_WORDS[entry_status])
        else:
            column.set_status(status_line(entry, detail), failed=entry.status == RunStatus.FAILED)
        finished = entry.status in FINISHED or record.status != RunStatus.RUNNING
        if live is not None and not finished:
            column.set_text(live.texts.get(entry.position, ""), now=True)
        else:
            column.set_text(entry.output, now=True)
        shows_figures = entry.status in FINISHED and entry.status != RunStatus.FAILED
        column.set_figures(entry_figures(record, entry) if shows_figures else None,
                           {key for key, position in best.items() if position == entry.position})

    def _place_notes(self, record: ComparisonRecord) -> None:
        """Models run together all get the same note: it is said once, under the columns, when every model
        has it; otherwise under each model that has one."""
        notes = {entry.position: concurrency_note(entry)
                 if entry.status in FINISHED and entry.status != RunStatus.FAILED
                 else None for entry in record.entries}
        values = set(notes.values())
        shared = values.pop() if len(values) == 1 and len(notes) > 1 else None
        self.shared_note.setText(shared or "")
        self.shared_note.setVisible(bool(shared))
        for position, column in self.columns.items():
            column.set_note(None if shared else notes.get(position))

    def _show_vote(self, record: ComparisonRecord) -> None:
        can_vote = record.status != RunStatus.RUNNING and any(e.status == RunStatus.DONE or e.output
                                                               for e in record.entries)
        for column in self.columns.values():
            column.vote_button.setVisible(can_vote)
            column.vote_button.setChecked(record.verdict == "winner" and record.winner_position == column.position)
        for button, verdict in ((self.tie_button, "tie"), (self.bad_button, "both_bad")):
            button.setVisible(can_vote)
            button.setChecked(record.verdict == verdict)
        self.vote_label.setVisible(can_vote)
        self.vote_label.setText("Which answer is better?" if record.verdict is None else "Your vote:")
        self.verdict.setVisible(can_vote)
        if record.verdict is None:
            self.verdict.setText("Names are shown after you vote." if record.names_hidden else "")
        else:
            self.verdict.setText(f"{verdict_text(record)}.")

    def _notice(self, record: ComparisonRecord) -> tuple[str, str]:
        if record.status == RunStatus.CANCELLED:
            return "Stopped. What each model had written is kept; models that had not started did not run.", "info"
        if record.status == RunStatus.INTERRUPTED:
            return "Interrupted: Hearth closed before this comparison finished.", "info"
        if record.status == RunStatus.FAILED:
            return "No model finished. The reason is under each model's name.", "error"
        return "", "info"
