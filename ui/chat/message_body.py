"""A message's text: its Markdown, with each fenced code block set apart from the prose, highlighted by Pygments in
colours that suit the palette's tone, under a bar with the block's language and a Copy button.

The text is cut at its top-level fenced code blocks as markdown-it-py, a CommonMark parser, finds them (fences of
backticks or tildes, of any length, an unclosed one running to the end): a fence inside a list or a quote stays
with the prose around it, where Qt's Markdown shows it in monospace without colours, since cutting the list there
would restart its numbering. Prose parts are Markdown labels, code blocks labels of Pygments' HTML, all laid out
by height for width like one label was. While an answer streams, only the parts that changed are set again, and
an unclosed fence is a code block that grows.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, QSize, Qt, QTimer
from PySide6.QtGui import QFontDatabase, QGuiApplication, QPalette
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QSizePolicy, QVBoxLayout, QWidget

if TYPE_CHECKING:  # markdown-it-py and Pygments are imported when a first message is shown, not before the first paint
    from markdown_it import MarkdownIt
    from pygments.lexer import Lexer

COPIED_MS = 1500


@dataclass(frozen=True)
class Part:
    """Prose (``language`` None, ``text`` Markdown) or a fenced code block (``text`` the code itself, ``language``
    the fence's first word, "" when it names none)."""

    text: str
    language: str | None = None

    @property
    def is_code(self) -> bool:
        return self.language is not None


@functools.cache
def prepare() -> None:
    """Reads markdown-it-py and Pygments in advance, on a worker thread: the first message shown waited 40 ms for
    their imports on the GUI thread."""
    from pygments import highlight
    from pygments.formatters.html import HtmlFormatter

    split_markdown("Text\n\n```python\nx = 1\n```\n")
    highlight("x = 1", _lexer("python"), HtmlFormatter(style=LIGHT_CODE.style, noclasses=True, nowrap=True))
    highlight("x = 1", _lexer(""), HtmlFormatter(style=DARK_CODE.style, noclasses=True, nowrap=True))


@functools.cache
def _parser() -> MarkdownIt:
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark").disable("inline")  # only the blocks are wanted, in half the time


def split_markdown(text: str) -> list[Part]:
    """``text`` as prose and top-level fenced code blocks, in order; prose that is only blank lines is left out."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    parts: list[Part] = []
    start = 0

    def prose(end: int) -> None:
        chunk = "\n".join(lines[start:end]).strip("\n")
        if chunk.strip():
            parts.append(Part(chunk))

    for token in _parser().parse(text):
        if token.type == "fence" and token.level == 0 and token.map is not None:
            first, end = token.map
            prose(first)
            info = token.info.split()
            parts.append(Part(token.content.removesuffix("\n"), info[0] if info else ""))
            start = end
    prose(len(lines))
    return parts or [Part(text)]


@dataclass(frozen=True)
class CodeLook:
    """The colours of code blocks in one tone: a Pygments style whose every token colour has a contrast of at least
    4.5:1 (WCAG AA) on its background, and the block's own text, bar and border around it."""

    style: str
    ink: str  # code no token colour is given to
    soft_ink: str  # the language and the Copy button
    border: str
    hover: str

    @property
    def background(self) -> str:
        from pygments.styles import get_style_by_name

        return str(get_style_by_name(self.style).background_color)


LIGHT_CODE = CodeLook("default", ink="#1f2328", soft_ink="#57606a", border="#dcd6ce", hover="#ebe7e1")
DARK_CODE = CodeLook("github-dark", ink="#e6edf3", soft_ink="#9da7b3", border="#3d444d", hover="#262c36")


def code_look(palette: QPalette | None = None) -> CodeLook:
    """Dark blocks under a dark palette, light ones under a light one: the tone of the window's background."""
    palette = palette if palette is not None else QGuiApplication.palette()
    return DARK_CODE if palette.color(QPalette.ColorRole.Window).lightnessF() < 0.5 else LIGHT_CODE


@functools.lru_cache(maxsize=64)
def _lexer(language: str) -> Lexer:
    from pygments.lexers import get_lexer_by_name
    from pygments.lexers.special import TextLexer
    from pygments.util import ClassNotFound

    try:
        lexer: Lexer = get_lexer_by_name(language) if language else TextLexer()
    except ClassNotFound:
        lexer = TextLexer()
    return lexer


def language_name(language: str) -> str:
    """What the bar over a block calls its language: Pygments' name for it ("Python" for "py"), else as written."""
    from pygments.lexers.special import TextLexer

    if not language:
        return "Code"
    lexer = _lexer(language)
    return language if isinstance(lexer, TextLexer) else str(lexer.name)


@functools.lru_cache(maxsize=256)
def code_html(code: str, language: str, look: CodeLook) -> str:
    """Rich text for a QLabel: Pygments' spans with their colours inline, lines wrapped where they must be (a block
    as wide as its longest line would make the whole message as wide)."""
    from pygments import highlight
    from pygments.formatters.html import HtmlFormatter

    formatter = HtmlFormatter(style=look.style, noclasses=True, nowrap=True)
    spans = highlight(code, _lexer(language), formatter).removesuffix("\n")
    family = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont).family()
    return (f'<pre style="white-space: pre-wrap; margin: 0; color: {look.ink}; '
            f"font-family: '{family}', monospace\">{spans}</pre>")


class _Text(QLabel):
    """Word-wrapped text: the layout sizes it to its text, so the chat scrolls as one page (a QTextBrowser would
    need its height managed by hand and keeps a scroll area of its own)."""

    def __init__(self, text_format: Qt.TextFormat) -> None:
        super().__init__()
        self.setTextFormat(text_format)
        self.setWordWrap(True)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Minimum)
        self._heights: dict[int, int] = {}

    def setText(self, text: str) -> None:
        self._heights.clear()
        super().setText(text)

    def heightForWidth(self, width: int) -> int:
        """Kept for the widths it was asked for: QLabel lays its text out again on every ask, and each message
        added to a long conversation has every message above asked again (1.6 ms a message with 30 of them, 0.3 s a
        page added with 300)."""
        height = self._heights.get(width)
        if height is None:
            if len(self._heights) > 8:
                self._heights.clear()
            height = self._heights[width] = super().heightForWidth(width)
        return height

    def changeEvent(self, event: QEvent) -> None:
        if event.type() in (QEvent.Type.FontChange, QEvent.Type.StyleChange, QEvent.Type.LayoutDirectionChange):
            self._heights.clear()
        super().changeEvent(event)

    # QLabel answers these by laying its whole text out at other widths than the one it is given (an "ideal" one,
    # then the narrowest): two extra layouts of a long answer each time it grows. Its width comes from the
    # message (it expands) and its height from ``heightForWidth``, so the width it has is the answer to both.
    def sizeHint(self) -> QSize:
        return QSize(self.width(), self.heightForWidth(self.width()))

    def minimumSizeHint(self) -> QSize:
        return QSize(0, 0)


class Prose(_Text):
    def __init__(self) -> None:
        super().__init__(Qt.TextFormat.MarkdownText)
        self.setObjectName("messageBody")
        self.setOpenExternalLinks(True)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)


class CodeBlock(QFrame):
    """One fenced code block: its language and a Copy button over the highlighted code."""

    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("codeBlock")
        self.code = ""
        self.language = ""
        self._look: CodeLook | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 4, 6, 8)
        layout.setSpacing(2)
        bar = QHBoxLayout()
        self.language_label = QLabel()
        self.language_label.setObjectName("codeLanguage")
        self.copy_button = QPushButton("Copy")
        self.copy_button.setObjectName("codeCopy")
        self.copy_button.setToolTip("Copy this code")
        self.copy_button.clicked.connect(self.copy)
        bar.addWidget(self.language_label, 1)
        bar.addWidget(self.copy_button)
        layout.addLayout(bar)
        self.text = _Text(Qt.TextFormat.RichText)
        self.text.setObjectName("codeText")
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse
                                          | Qt.TextInteractionFlag.TextSelectableByKeyboard)
        layout.addWidget(self.text)

    def minimumSizeHint(self) -> QSize:
        return QSize(0, super().minimumSizeHint().height())

    def set_code(self, code: str, language: str, look: CodeLook) -> None:
        if (code, language, look) == (self.code, self.language, self._look):
            return
        if look != self._look:
            self.setStyleSheet(_sheet(look))
        if language != self.language or self._look is None:
            self.language_label.setText(language_name(language))
        self.code, self.language, self._look = code, language, look
        self.text.setText(code_html(code, language, look))

    def copy(self) -> None:
        QGuiApplication.clipboard().setText(self.code)
        self.copy_button.setText("Copied")
        QTimer.singleShot(COPIED_MS, self.copy_button, lambda: self.copy_button.setText("Copy"))


def _sheet(look: CodeLook) -> str:
    """The block's own colours, foreground and background together, whatever the app's style sheet and palette
    say around it (and a focus ring of its own, which a sheet that sets the button's border must give back)."""
    return (f"#codeBlock {{ background: {look.background}; border: 1px solid {look.border}; border-radius: 6px; }}"
            f" QLabel {{ color: {look.ink}; background: transparent; border: none; }}"
            f" #codeLanguage {{ color: {look.soft_ink}; }}"
            f" QPushButton {{ color: {look.soft_ink}; background: transparent; border: 1px solid transparent;"
            f" border-radius: 4px; padding: 1px 8px; }}"
            f" QPushButton:hover {{ color: {look.ink}; background: {look.hover}; }}"
            f" QPushButton:focus {{ color: {look.ink}; border: 1px solid {look.ink}; }}")


class MessageBody(QWidget):
    """``setMarkdown`` as a label has it; the parts are ``parts()``, their widgets ``code_blocks()`` and
    ``prose()``."""

    def __init__(self) -> None:
        super().__init__()
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setSpacing(6)
        self._parts: list[Part] = []
        self._widgets: list[Prose | CodeBlock] = []
        self._look = code_look()
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Minimum)

    def setMarkdown(self, text: str) -> None:
        parts = split_markdown(text)
        for i, part in enumerate(parts):
            if i < len(self._widgets) and self._widgets[i].__class__ is not (CodeBlock if part.is_code else Prose):
                self._drop_from(i)
            if i == len(self._widgets):
                widget: Prose | CodeBlock = CodeBlock() if part.is_code else Prose()
                self._layout.addWidget(widget)
                self._widgets.append(widget)
                self._parts.append(Part(""))
            if part != self._parts[i]:
                self._show(self._widgets[i], part)
                self._parts[i] = part
        self._drop_from(len(parts))

    def _drop_from(self, index: int) -> None:
        for widget in self._widgets[index:]:
            widget.setParent(None)
            widget.deleteLater()
        del self._widgets[index:]
        del self._parts[index:]

    def _show(self, widget: Prose | CodeBlock, part: Part) -> None:
        if isinstance(widget, CodeBlock):
            widget.set_code(part.text, part.language or "", self._look)
        else:
            widget.setText(part.text)

    def parts(self) -> list[Part]:
        return list(self._parts)

    def code_blocks(self) -> list[CodeBlock]:
        return [widget for widget in self._widgets if isinstance(widget, CodeBlock)]

    def prose(self) -> list[Prose]:
        return [widget for widget in self._widgets if isinstance(widget, Prose)]

    def minimumSizeHint(self) -> QSize:
        return QSize(0, 0)

    def changeEvent(self, event: QEvent) -> None:
        """A palette of the other tone (the system's turned dark, or light) recolours the code blocks."""
        super().changeEvent(event)
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange):
            look = code_look()
            if look != self._look:
                self._look = look
                for widget, part in zip(self._widgets, self._parts, strict=True):
                    if isinstance(widget, CodeBlock):
                        widget.set_code(part.text, part.language or "", look)
