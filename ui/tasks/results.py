"""The right side of the Tasks page: a run as it happens and its result (a summary with the parts it was made
from, a translation beside its original, or a table of labels), with what can be done with it."""

from __future__ import annotations

from html import escape

from PySide6.QtCore import Qt, QTimer, QUrl, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QTableView,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from app.degenerate import Degeneration
from app.outcomes import RunStatus
from app.tasks.export import result_text, written_as_list
from app.tasks.spec import ClassifiedText, KeyPoint, Part, TaskResult
from ui.qt import theme
from ui.tasks.run_models import ClassifiedModel
from ui.widgets.labels import result_heading, show_notice

RENDER_INTERVAL_MS = 50
PAGES = {"empty": 0, "summarize": 1, "translate": 2, "classify": 3}


class ResultPanel(QWidget):
    copyRequested = Signal()
    saveRequested = Signal()
    exportRequested = Signal()
    chatRequested = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("resultPanel")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground)  # paint the style sheet's background
        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 12, 16, 12)
        layout.setSpacing(6)
        heading = result_heading(layout)
        self.title, self.subtitle, self.notice = heading.title, heading.subtitle, heading.notice

        self.stack = QStackedWidget()
        self.empty = QLabel()
        self.empty.setObjectName("emptyState")
        self.empty.setWordWrap(True)
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.stack.addWidget(self.empty)
        self.stack.addWidget(self._summary_page())
        self.stack.addWidget(self._translation_page())
        self.stack.addWidget(self._classify_page())
        layout.addWidget(self.stack, 1)

        self.metrics = QLabel()
        self.metrics.setObjectName("messageFigures")
        self.metrics.setWordWrap(True)
        self.metrics.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.metrics)
        actions = QHBoxLayout()
        self.copy_button = QPushButton("Copy")
        self.copy_button.setToolTip("Copy the result as text (Ctrl+Shift+C)")
        self.copy_button.clicked.connect(self.copyRequested)
        self.save_button = QPushButton("Save as…")
        self.save_button.setToolTip("Save the result as a Markdown, text or Word file (Ctrl+Shift+S)")
        self.save_button.clicked.connect(self.saveRequested)
        self.export_button = QPushButton("Export CSV…")
        self.export_button.setToolTip("Save the texts with their labels and confidences as a CSV file, for a "
                                      "spreadsheet (Ctrl+Shift+S)")
        self.export_button.clicked.connect(self.exportRequested)
        self.chat_button = QPushButton("Open in chat")
        self.chat_button.setToolTip("Start a conversation that begins with this result, to ask questions about it")
        self.chat_button.clicked.connect(self.chatRequested)
        for button in (self.copy_button, self.save_button, self.export_button, self.chat_button):
            actions.addWidget(button)
        actions.addStretch(1)
        layout.addLayout(actions)

        self.task = ""
        self.result: TaskResult | None = None
        self.parts: list[Part] = []
        self.highlighted_part: int | None = None
        self._finished_translation: list[str] = []
        self._stream = self._step = ""
        self._render_timer = QTimer(self, singleShot=True, interval=RENDER_INTERVAL_MS)
        self._render_timer.timeout.connect(self._render_stream)
        self._syncing = False
        self.show_empty("")

    # --- pages ---

    def _summary_page(self) -> QWidget:
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.setChildrenCollapsible(False)
        self.summary_view = QTextBrowser()
        self.summary_view.setObjectName("resultText")
        self.summary_view.setOpenLinks(False)
        self.summary_view.anchorClicked.connect(self._link_clicked)
        splitter.addWidget(self.summary_view)
        self.parts_box = QWidget()
        parts_layout = QVBoxLayout(self.parts_box)
        parts_layout.setContentsMargins(0, 6, 0, 0)
        parts_layout.setSpacing(4)
        self.parts_caption = QLabel("Parts read")
        self.parts_caption.setObjectName("sectionTitle")
        parts_layout.addWidget(self.parts_caption)
        self.parts_view = QTextBrowser()
        self.parts_view.setObjectName("partsList")
        self.parts_view.setOpenLinks(False)
        parts_layout.addWidget(self.parts_view, 1)
        splitter.addWidget(self.parts_box)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        return splitter

    def _translation_page(self) -> QWidget:
        page = QWidget()
        layout = QVBoxLayout(page)
        layout.setContentsMargins(0, 0, 0, 0)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.setChildrenCollapsible(False)
        self.source_caption = QLabel("Original")
        self.translation_caption = QLabel("Translation")
        self.source_view = QPlainTextEdit()
        self.translation_view = QPlainTextEdit()
        for caption, view in ((self.source_caption, self.source_view),
                              (self.translation_caption, self.translation_view)):
            box = QWidget()
            box_layout = QVBoxLayout(box)
            box_layout.setContentsMargins(0, 0, 0, 0)
            box_layout.setSpacing(4)
            caption.setObjectName("sectionTitle")
            view.setObjectName("resultText")
            view.setReadOnly(True)
            box_layout.addWidget(caption)
            box_layout.addWidget(view, 1)
            splitter.addWidget(box)
        self.source_view.verticalScrollBar().valueChanged.connect(
            lambda _v: self._sync_scroll(self.source_view, self.translation_view))
        self.translation_view.verticalScrollBar().valueChanged.connect(
            lambda _v: self._sync_scroll(self.translation_view, self.source_view))
        layout.addWidget(splitter, 1)
        return page

    def _classify_page(self) -> QWidget:
        self.classified = ClassifiedModel()
        self.table = QTableView()
        self.table.setTabKeyNavigation(False)  # Tab moves on to the next control; the arrows move between cells
        self.table.setModel(self.classified)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        return self.table

    # --- states ---

    def show_empty(self, text: str) -> None:
        self.task, self.result = "", None
        self.title.setText("")
        self.subtitle.setText("")
        self.title.hide()
        self.subtitle.hide()
        self.set_notice("")
        self.metrics.setText("")
        self.empty.setText(text)
        self.stack.setCurrentIndex(PAGES["empty"])
        self._set_actions(None)

    def begin(self, task: str, title: str, subtitle: str, source_text: str | None, multi: bool) -> None:
        """A run starts: an empty page of its kind that fills as parts arrive."""
        self.task, self.result = task, None
        self._heading(title, subtitle)
        self.set_notice("")
        self.metrics.setText("")
        self.parts, self.highlighted_part = [], None
        self._finished_translation, self._stream, self._step = [], "", ""
        self.summary_view.clear()
        self.parts_view.clear()
        self.parts_box.setVisible(task == "summarize")
        self.source_view.setPlainText(source_text or "")
        self.translation_view.clear()
        self.classified.set_rows([], multi)
        self.stack.setCurrentIndex(PAGES[task])
        self._set_actions(None)

    def stream(self, text: str, step: str = "") -> None:
        """The model call now running (``step``, in words) has written ``text`` so far; redrawn at most every
        50 ms."""
        self._stream, self._step = text, step
        if not self._render_timer.isActive():
            self._render_timer.start()

    def _render_stream(self) -> None:
        if self.result is not None:
            return
        if self.task == "summarize":
            note = ("The summary is written once every part has been read." if self._step.startswith("Reading part")
                    else "")
            self.summary_view.setHtml(
                f'<p style="color:{theme.colors().ink_soft}"><i>{escape(self._step or "Starting…")}</i>'
                + (f"<br>{escape(note)}" if note else "") + "</p>"
                + "<p>" + escape(self._stream.strip()).replace("\n", "<br>") + "</p>")
            self.summary_view.moveCursor(self.summary_view.textCursor().MoveOperation.End)
        elif self.task == "translate":
            self._set_translation("\n\n".join([*self._finished_translation, self._stream.strip()]).strip())

    def add_part(self, part: Part) -> None:
        if self.task == "translate":
            self._finished_translation.append(part.output.strip())
            self._stream = ""
            self._set_translation("\n\n".join(self._finished_translation))
        else:
            self.parts.append(part)
            self._render_parts()

    def add_row(self, row: ClassifiedText) -> None:
        self.classified.add_row(row)
        self.table.scrollToBottom()

    def show_result(self, task: str, title: str, subtitle: str, result: TaskResult | None, *,
                    source_text: str | None, multi: bool, metrics: str, detected: bool = False) -> None:
        """A finished run (or one from history), shown whole; ``result`` None: nothing was kept."""
        self._render_timer.stop()
        self.task, self.result = task, result
        self._heading(title, subtitle)
        self.metrics.setText(metrics)
        self.stack.setCurrentIndex(PAGES[task])
        self.highlighted_part = None
        parts = list(result.parts) if result else []
        if task == "summarize":
            self.parts = parts
            single = result is not None and result.chunks <= 1 and len(parts) <= 1
            self.parts_box.setVisible(bool(parts) and not single)
            self.parts_caption.setText(f"Parts read ({len(parts)} of {result.chunks})"
                                       if result and len(parts) < result.chunks else "Parts read")
            if single and result is not None and result.degeneration:
                self.summary_view.setHtml(_stopped_html(result))
            else:
                self.summary_view.setMarkdown(self._summary_markdown(result, single))
            self._render_parts()
        elif task == "translate":
            self.source_view.setPlainText(source_text if source_text is not None else
                                          "The original text was not kept in history (see “Keep document text”).")
            self.translation_view.setPlainText(result.text if result else "")
            language = result.source_language if result else None
            self.source_caption.setText(("Original (recognised as " if detected else "Original (") + f"{language})"
                                        if language else "Original")
        else:
            self.classified.set_rows(list(result.rows) if result else [], multi)
        self._set_actions(result)

    def _summary_markdown(self, result: TaskResult | None, single: bool) -> str:
        if result is None:
            return ""
        if result.finish_reason != RunStatus.DONE:
            return ("*The run stopped before the summary was written. The summaries of the parts read so far are "
                    "below.*" if self.parts else "*The run stopped before any part was read.*")
        if result.degeneration or (result.wrong_parts and len(result.wrong_parts) == len(result.parts)):
            return "*No summary. The summaries of the parts are below, with the ones that went wrong.*"
        if single:  # every point is from the one part there is: where it came from is said, not linked
            return result_text(result, lambda point: f" *({point.location})*")
        if not written_as_list(result.text):  # a link after each sentence: short, the part's place is below
            return result_text(result, lambda point: f" [(part {point.part})](part:{point.part})")
        return result_text(result, _part_link)

    def _render_parts(self) -> None:
        blocks = []
        for part in self.parts:
            soft = theme.colors().ink_soft
            shade = f' bgcolor="{theme.colors().accent_soft}"' if part.index == self.highlighted_part else ""
            text = escape(part.output.strip() or "(nothing written)").replace("\n", "<br>")
            wrong = ""
            if part.degeneration:  # said first, and what it wrote greyed: it is not part of the result
                wrong = (f'<br><span style="color:{theme.colors().error_text}"><b>Stopped:</b> '
                         f"{escape(Degeneration(part.degeneration).sentence)}. Left out of the result.</span>")
                text = f'<span style="color:{soft}">{text}</span>'
            blocks.append(
                f'<a name="part-{part.index}"></a><table width="100%" cellpadding="6" cellspacing="0"{shade}>'
                f'<tr><td><b>Part {part.index}</b> <span style="color:{soft}">· {escape(part.location)} · '
                f'{part.tokens:,} tokens</span>{wrong}<br>{text}</td></tr></table>')
        bar = self.parts_view.verticalScrollBar()
        at_bottom = bar.value() >= bar.maximum() - 8
        self.parts_view.setHtml("".join(blocks))
        if self.result is None and at_bottom:
            bar.setValue(bar.maximum())

    def highlight_part(self, index: int) -> None:
        """Shade the part a key point came from, and scroll to it."""
        if not any(part.index == index for part in self.parts):
            return
        self.highlighted_part = index
        self._render_parts()
        self.parts_view.scrollToAnchor(f"part-{index}")

    def _link_clicked(self, url: QUrl) -> None:
        if url.scheme() == "part" and url.path().isdigit():
            self.highlight_part(int(url.path()))

    def _set_translation(self, text: str) -> None:
        view = self.translation_view
        bar = view.verticalScrollBar()
        at_bottom = bar.value() >= bar.maximum() - 8
        view.setPlainText(text)
        if at_bottom:
            bar.setValue(bar.maximum())

    def _sync_scroll(self, moved: QPlainTextEdit, other: QPlainTextEdit) -> None:
        """Keep the original and its translation at the same place, in proportion (their lengths differ)."""
        if self._syncing:
            return
        source, target = moved.verticalScrollBar(), other.verticalScrollBar()
        self._syncing = True
        try:
            target.setValue(round(source.value() / max(source.maximum(), 1) * target.maximum()))
        finally:
            self._syncing = False

    def _heading(self, title: str, subtitle: str) -> None:
        self.title.setText(title)
        self.subtitle.setText(subtitle)
        self.title.setVisible(bool(title))
        self.subtitle.setVisible(bool(subtitle))

    def set_notice(self, text: str, kind: str = "info") -> None:
        show_notice(self.notice, text, kind)

    def _set_actions(self, result: TaskResult | None) -> None:
        has_text = _takes_away(result)
        classify = self.task == "classify"
        self.copy_button.setVisible(self.task != "")
        self.save_button.setVisible(self.task != "" and not classify)
        self.export_button.setVisible(classify)
        self.chat_button.setVisible(self.task != "")
        for button in (self.copy_button, self.save_button, self.export_button, self.chat_button):
            button.setEnabled(has_text)

    def set_chat_allowed(self, allowed: bool, why: str) -> None:
        """Open in chat sends a message, which waits for a running task; the tooltip says so."""
        self.chat_button.setEnabled(allowed and _takes_away(self.result))
        self.chat_button.setToolTip(
            "Start a conversation that begins with this result, to ask questions about it" if allowed else why)


def _stopped_html(result: TaskResult) -> str:
    """A summary that went wrong in its one pass: what the model wrote before it was stopped, greyed, under a line
    that says it is not a summary (the notice above says why)."""
    text = escape(result.text.strip() or "(nothing written)").replace("\n", "<br>")
    return (f'<p><i>No summary. What the model wrote before it was stopped:</i></p>'
            f'<p style="color:{theme.colors().ink_soft}">{text}</p>')


def _takes_away(result: TaskResult | None) -> bool:
    """Whether a result has something to copy, save or talk about: not a summary that went wrong in its one pass
    (what the model wrote then is shown, as what went wrong, but it is not a result)."""
    if result is None:
        return False
    if result.task == "classify":
        return bool(result.rows)
    return bool(result.text.strip()) and not (result.degeneration and result.chunks <= 1)


def _part_link(point: KeyPoint) -> str:
    return f" — [{point.location}](part:{point.part})"
