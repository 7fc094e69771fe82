"""The welcome page: this computer in plain words, three catalog models that fit it, and a model from disk.

It shows what ``WelcomePage`` gives it (``set_content``) and says what the person chose through signals; the
choosing of models is ``app.suggestions.suggest`` and the words about the computer ``app.hardware.describe``.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from app.words import format_bytes
from ui.widgets.labels import section_title, wrapped

if TYPE_CHECKING:  # built at start, before the catalog (and what suggests from it) is imported
    from app.hub.catalog import CatalogEntry
    from app.hub.suggestions import Suggestion

CONTENT_WIDTH = 760  # the column's widest; lines of text longer than this are hard to read

OFFLINE_NOTE = ("You are working offline, so models cannot be downloaded now. Add a model file you already have, "
                "or turn off File → Work offline to get one of these.")
ONLINE_NOTE = ("Sizes and speeds are estimates for this computer; Discover shows the exact file and whether it fits "
               "before you download.")
SLOW_NOTE = ("Few models answer quickly on this computer, so these are the fastest in Hearth's list. Sizes and speeds "
             "are estimates; Discover shows the exact file before you download.")
MEASURING_NOTE = "Measuring how fast this computer is, to suggest models that answer quickly here (a second or two)…"
NO_CATALOG_NOTE = ("Hearth's list of suggested models could not be read. You can still add a model file from "
                   "disk, or search the Hugging Face Hub on Discover.")
NONE_FIT_NOTE = ("None of the models Hearth suggests fits comfortably in the memory that is free right now. "
                 "Closing other apps frees memory; a small model file from disk may also do.")


class WelcomeView(QWidget):
    getRequested = Signal(object)  # CatalogEntry: show it on Discover
    addFromDiskRequested = Signal()
    closeRequested = Signal()  # Skip for now / Start chatting / Esc

    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("welcomePage")
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        scroll = QScrollArea()
        scroll.setObjectName("welcomeScroll")
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        outer.addWidget(scroll)
        page = QWidget()
        page.setObjectName("welcomeContent")
        centre = QHBoxLayout(page)
        centre.setContentsMargins(32, 20, 32, 16)
        column_widget = QWidget()
        column_widget.setMaximumWidth(CONTENT_WIDTH)
        centre.addStretch(1)
        centre.addWidget(column_widget, 100)
        centre.addStretch(1)
        scroll.setWidget(page)

        self.column = QVBoxLayout(column_widget)
        self.column.setContentsMargins(0, 0, 0, 0)
        self.column.setSpacing(10)
        title = QLabel("Welcome to Hearth")
        title.setObjectName("welcomeTitle")
        self.column.addWidget(title)
        intro = wrapped("Models run right here, so what you type stays on this computer. To begin, get one that "
                         "fits.", "hint")
        self.column.addWidget(intro)

        self.column.addSpacing(4)
        self.column.addWidget(section_title("This computer"))
        self.machine_card = QFrame()
        self.machine_card.setObjectName("welcomeCard")
        self.machine_lines = QVBoxLayout(self.machine_card)
        self.machine_lines.setContentsMargins(14, 10, 14, 10)
        self.machine_lines.setSpacing(4)
        self.column.addWidget(self.machine_card)

        self.disk_row = QFrame()
        self.disk_row.setObjectName("welcomeCard")
        disk = QHBoxLayout(self.disk_row)
        disk.setContentsMargins(14, 10, 14, 10)
        disk.addWidget(wrapped("Already have a model file (.gguf)? Hearth checks it and adds it to your library; "
                                "no connection needed."), 1)
        self.add_button = QPushButton("Add a model from disk…")
        self.add_button.setToolTip("Choose a .gguf file on this computer (Ctrl+I)")
        self.add_button.setAccessibleName("Add a model from disk")
        self.add_button.clicked.connect(self.addFromDiskRequested)
        disk.addWidget(self.add_button, 0, Qt.AlignmentFlag.AlignVCenter)

        self.suggestions_title = section_title("Models that fit this computer")
        self.note = wrapped("", "hint")
        self.cards = QHBoxLayout()
        self.cards.setSpacing(10)
        self.suggestions_box = QWidget()
        box = QVBoxLayout(self.suggestions_box)
        box.setContentsMargins(0, 0, 0, 0)
        box.setSpacing(8)
        box.addWidget(self.suggestions_title)
        box.addWidget(self.note)
        box.addLayout(self.cards)

        self.column.addSpacing(4)
        self.column.addWidget(self.suggestions_box)
        self.column.addWidget(self.disk_row)
        bottom = QHBoxLayout()
        bottom.addStretch(1)
        self.close_button = QPushButton("Skip for now")
        self.close_button.setToolTip("Go to the chat page (Esc). Help → Welcome brings this page back.")
        self.close_button.clicked.connect(self.closeRequested)
        bottom.addWidget(self.close_button)
        self.column.addLayout(bottom)
        self.column.addStretch(1)

        self.get_buttons: list[QPushButton] = []
        self.offline = False

    # --- content ---

    def set_content(self, machine_lines: Sequence[str], suggestions: Sequence[Suggestion], *,
                    catalog_available: bool, offline: bool, has_models: bool, measuring: bool = False) -> None:
        """Show this computer, the suggested models and whether they can be downloaded now.

        Offline, adding a file from disk comes first and is the main action; the suggestions stay, to say what
        to get once connected, with their buttons off. ``measuring``: the suggestions wait for this computer's
        memory speed, which decides which models answer quickly here."""
        from app.hub.suggestions import answers_usefully  # here: the first paint imports no catalog

        self.offline = offline
        _clear(self.machine_lines)
        for line in machine_lines:
            self.machine_lines.addWidget(wrapped(line))

        _clear(self.cards)
        self.get_buttons = []
        for suggestion in suggestions:
            card, button = self._card(suggestion, offline)
            self.cards.addWidget(card, 1)
            self.get_buttons.append(button)
        if not catalog_available:
            note = NO_CATALOG_NOTE
        elif measuring:
            note = MEASURING_NOTE
        elif not suggestions:
            note = NONE_FIT_NOTE
        elif offline:
            note = OFFLINE_NOTE
        else:
            note = ONLINE_NOTE if all(answers_usefully(s.speed) for s in suggestions) else SLOW_NOTE
        self.note.setText(note)

        disk_first = offline or (not suggestions and not measuring)
        self.column.removeWidget(self.disk_row)
        at = self.column.indexOf(self.suggestions_box)
        self.column.insertWidget(at if disk_first else at + 1, self.disk_row)
        self.add_button.setObjectName("primary" if disk_first else "")
        self.add_button.style().unpolish(self.add_button)
        self.add_button.style().polish(self.add_button)
        self.close_button.setText("Start chatting" if has_models else "Skip for now")
        self.close_button.setAccessibleName(self.close_button.text())
        chain = [self.add_button, *self.get_buttons] if disk_first else [*self.get_buttons, self.add_button]
        chain.append(self.close_button)
        for before, after in pairwise(chain):
            QWidget.setTabOrder(before, after)

    def first_action(self) -> QPushButton:
        """The button keyboard focus starts on: the first enabled "Get it", else "Add a model from disk"."""
        return next((b for b in self.get_buttons if b.isEnabled()), self.add_button)

    def _card(self, suggestion: Suggestion, offline: bool) -> tuple[QFrame, QPushButton]:
        entry = suggestion.entry
        card = QFrame()
        card.setObjectName("suggestionCard")
        lines = QVBoxLayout(card)
        lines.setContentsMargins(14, 12, 14, 12)
        lines.setSpacing(4)
        lines.addWidget(wrapped(entry.name, "suggestionName"))
        lines.addWidget(wrapped(f"About {format_bytes(suggestion.file_size)} to download", "hint"))
        if suggestion.speed is not None:
            lines.addWidget(wrapped(f"Answers at {suggestion.speed.words()} here", "hint"))
        lines.addWidget(wrapped(entry.good_at), 1, Qt.AlignmentFlag.AlignTop)
        button = QPushButton("Get it")
        button.setObjectName("primary")
        button.setAccessibleName(f"Get {entry.name}")
        button.setEnabled(not offline)
        button.setToolTip("Downloads need a connection: turn off File → Work offline first." if offline else
                          f"Open {entry.name} on Discover, with the recommended file ({entry.recommended_quant}) "
                          "chosen, to download it")
        button.clicked.connect(lambda _checked=False, e=entry: self._get(e))
        lines.addSpacing(4)
        lines.addWidget(button, 0, Qt.AlignmentFlag.AlignLeft)
        return card, button

    def _get(self, entry: CatalogEntry) -> None:
        self.getRequested.emit(entry)

    # --- keys ---

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Escape:
            self.closeRequested.emit()
            event.accept()
            return
        super().keyPressEvent(event)


def _clear(layout: QVBoxLayout | QHBoxLayout) -> None:
    while layout.count():
        item = layout.takeAt(0)
        widget = item.widget() if item is not None else None
        if widget is not None:
            widget.deleteLater()
