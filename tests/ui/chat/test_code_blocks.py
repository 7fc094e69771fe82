"""Code blocks in the chat: set apart from the prose, highlighted in colours that read well in a light and a dark
palette, with a Copy button each, also while the answer streams."""

from __future__ import annotations

from datetime import datetime

import pytest
from pygments.styles import get_style_by_name
from pygments.token import Token
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from pytestqt.qtbot import QtBot

from app.history import MessageRecord
from app.outcomes import FinishReason
from ui.chat.chat_view import ChatView
from ui.chat.message_body import DARK_CODE, LIGHT_CODE, CodeBlock, CodeLook, Part, code_look, split_markdown
from ui.chat.message_view import MessageView

pytestmark = pytest.mark.gui

PYTHON = 'def greet(name: str) -> str:\n    """Say hello."""\n    return f"Hello, {name}!"  # friendly'
ANSWER = f"Here is a function:\n\n```python\n{PYTHON}\n```\n\nCall it with a name."


def _answer(text: str, message_id: int = 2, finished: bool = True) -> MessageRecord:
    return MessageRecord(message_id, 1, "assistant", text, datetime.now(), "model", None, None, None, None,
                         FinishReason.STOP if finished else None, None, 0)


def test_fenced_code_is_cut_from_the_prose_as_commonmark_reads_it() -> None:
    assert split_markdown(ANSWER) == [Part("Here is a function:"), Part(PYTHON, "python"),
                                      Part("Call it with a name.")]
    # a longer fence holds a shorter one; tildes fence too; the language is the info string's first word
    assert split_markdown("````md\n```\nx\n```\n````") == [Part("```\nx\n```", "md")]
    assert split_markdown("~~~ js title=a.js\nlet a;\n~~~") == [Part("let a;", "js")]
    # a fence inside a list stays in the list, which Qt's Markdown shows (cutting it would restart the numbering)
    listed = "1. Install:\n   ```sh\n   pip install x\n   ```\n2. Run it."
    assert split_markdown(listed) == [Part(listed)]
    # while an answer streams, an unclosed fence is a code block to the end
    assert split_markdown("Try:\n```py\nprint(1)\npri") == [Part("Try:"), Part("print(1)\npri", "py")]
    assert split_markdown("```\n```") == [Part("", "")]


def test_an_answer_shows_its_code_highlighted_with_a_copy_button(qtbot: QtBot) -> None:
    view = MessageView(_answer(ANSWER))
    qtbot.addWidget(view)
    view.resize(700, 400)
    view.show()
    [block] = view.body.code_blocks()
    assert [label.text() for label in view.body.prose()] == ["Here is a function:", "Call it with a name."]
    assert block.language_label.text() == "Python"
    html = block.text.text()
    keyword = get_style_by_name(code_look().style).style_for_token(Token.Keyword)["color"]
    assert f'color: #{keyword}; font-weight: bold">def</span>' in html  # Pygments' colours, inline
    assert "white-space: pre-wrap" in html  # long lines wrap instead of widening the message
    qtbot.mouseClick(block.copy_button, Qt.MouseButton.LeftButton)
    assert QGuiApplication.clipboard().text() == PYTHON  # the code alone, as written
    assert block.copy_button.text() == "Copied"
    qtbot.waitUntil(lambda: block.copy_button.text() == "Copy")


def _contrast(foreground: str, background: str) -> float:
    def luminance(color: str) -> float:
        channels = QColor(color if color.startswith("#") else f"#{color}").getRgbF()[:3]
        linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    light, dark = sorted((luminance(foreground), luminance(background)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


@pytest.mark.parametrize("look", [LIGHT_CODE, DARK_CODE], ids=["light", "dark"])
def test_every_colour_of_code_reads_well_on_its_background(look: CodeLook) -> None:
    """WCAG AA (4.5:1) for every token colour of the style and the block's own text; whitespace has no colour
    anyone sees."""
    style = get_style_by_name(look.style)
    colors = {str(token): (f"#{values['color']}", values["bgcolor"] and f"#{values['bgcolor']}")
              for token, values in style if values["color"] and token not in Token.Text.Whitespace}
    colors |= {"ink": (look.ink, None), "soft ink": (look.soft_ink, None)}
    poor = {name: round(_contrast(color, background or look.background), 2)
            for name, (color, background) in colors.items()
            if _contrast(color, background or look.background) < 4.5}
    assert not poor, f"{look.style}: {poor}"


def test_code_blocks_follow_the_palettes_tone(qtbot: QtBot) -> None:
    app = QGuiApplication.instance()
    assert isinstance(app, QGuiApplication)
    light = app.palette()
    view = MessageView(_answer(ANSWER))
    qtbot.addWidget(view)
    view.show()
    [block] = view.body.code_blocks()
    assert code_look(light) == LIGHT_CODE and LIGHT_CODE.background in block.styleSheet()
    dark = QPalette(light)
    for role, color in ((QPalette.ColorRole.Window, "#1e1b18"), (QPalette.ColorRole.Base, "#26221f"),
                        (QPalette.ColorRole.WindowText, "#f0e8df"), (QPalette.ColorRole.Text, "#f0e8df")):
        dark.setColor(role, QColor(color))
    try:
        app.setPalette(dark)
        qtbot.waitUntil(lambda: DARK_CODE.background in block.styleSheet())
        assert f"color: {DARK_CODE.ink}" in block.text.text()
    finally:
        app.setPalette(light)
    qtbot.waitUntil(lambda: LIGHT_CODE.background in block.styleSheet())


def test_a_streamed_code_block_grows_in_place(qtbot: QtBot) -> None:
    view = ChatView()
    qtbot.addWidget(view)
    view.resize(900, 700)
    view.show()
    view.show_conversation(1, [])
    view.answer_started(None, _answer("", finished=False))
    message = view.message_view(2)
    assert message is not None
    blocks: list[CodeBlock] = []
    text = ""
    for piece in ("Here is", " a function:\n\n```py", "thon\ndef greet", "(name: str) -> str:\n", "    return name\n",
                  "```\n\nDone."):
        text += piece
        view.answer_delta(2, text)
        qtbot.waitUntil(lambda text=text: message.body.parts() == split_markdown(text))
        blocks += [block for block in message.body.code_blocks() if block not in blocks]
    assert len(blocks) == 1, "the block was made once and filled as the answer came"
    assert blocks[0].code == "def greet(name: str) -> str:\n    return name" and blocks[0].language == "python"
    assert [label.text() for label in message.body.prose()] == ["Here is a function:", "Done."]
