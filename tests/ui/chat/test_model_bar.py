"""The chat's model bar: the models by the names people know, and a plain warning where a base model is chosen."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from app.gguf.kind import BASE_MODEL_WARNING

from tests.helpers.gguf_fixtures import with_chat_template
from tests.helpers.windows import TIMEOUT, MakeWindow

pytestmark = pytest.mark.engine


def test_choosing_a_base_model_says_it_will_not_answer(qtbot: QtBot, make_window: MakeWindow,
                                                       test_model_path: Path, real_model_path: Path,
                                                       tmp_path: Path) -> None:
    window = make_window()
    models = [test_model_path, real_model_path, with_chat_template(test_model_path, tmp_path)]
    for count, path in enumerate(models, start=1):
        window.library.import_model(path, copy=False)
        qtbot.waitUntil(lambda count=count: window.chat.view.model_bar.combo.count() == count, timeout=TIMEOUT)
    bar = window.chat.view.model_bar
    names = [bar.combo.itemText(i) for i in range(bar.combo.count())]
    assert "SmolLM2 135M Instruct · Q4_1" in names and "stories260K · F32" in names  # not "Smollm2 … Mix1 Ep2"
    by_name = {bar.combo.itemText(i): bar.combo.itemData(i) for i in range(bar.combo.count())}

    bar.select(by_name["stories260K · F32"].id)  # TinyStories: no template, nothing says it was tuned to chat
    assert bar.base_warning.isVisibleTo(bar) and bar.base_warning.text() == BASE_MODEL_WARNING
    assert BASE_MODEL_WARNING in bar.combo.toolTip()
    bar.select(by_name["SmolLM2 135M Instruct · Q4_1"].id)
    assert not bar.base_warning.isVisibleTo(bar)
    templated = next(name for name in names if "Template" in name)
    bar.select(by_name[templated].id)  # the same weights with a chat template: treated as made to chat
    assert not bar.base_warning.isVisibleTo(bar)
    assert bar.combo.itemData(0, Qt.ItemDataRole.ToolTipRole).startswith(names[0])
