"""The conversation settings: the samplers people expect, with presets that set them and say when they match."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from app.settings import PRESETS, GenerationSettings, Samplers, Settings
from ui.chat.settings_dialog import CUSTOM, ConversationSettingsDialog

from tests.helpers.windows import MakeWindow

pytestmark = pytest.mark.gui


def test_a_preset_sets_the_samplers_and_an_edit_makes_them_custom(qtbot: QtBot) -> None:
    dialog = ConversationSettingsDialog(GenerationSettings())
    qtbot.addWidget(dialog)
    assert dialog.preset.currentText() == "Balanced"
    dialog.apply_preset("Creative")
    chosen = dialog.result_settings()
    assert (chosen.temperature, chosen.top_k, chosen.repeat_penalty) == (1.0, 100, 1.15)
    assert dialog.preset.currentText() == "Creative"
    dialog.repeat_penalty.setValue(1.3)
    assert dialog.preset.currentText() == CUSTOM
    assert dialog.result_settings().samplers() == Samplers(top_k=100, min_p=0.02, repeat_penalty=1.3)


def test_defaults_have_a_repeat_penalty_and_old_conversations_get_it_too() -> None:
    old = {"system_prompt": "Be brief.", "temperature": 0.7, "top_p": 0.95, "max_tokens": 512,
           "context_length": 4096, "seed": None}  # saved before the samplers existed
    settings = GenerationSettings.from_dict(old)
    assert settings.repeat_penalty == 1.1 and settings.samplers() == Samplers()
    assert settings.preset() == "Balanced" and set(PRESETS) == {"Precise", "Balanced", "Creative"}
    assert GenerationSettings(repeat_penalty=9, top_k=-3).validated().samplers() == Samplers(top_k=0,
                                                                                             repeat_penalty=2.0)


def test_the_users_own_style_is_saved_picked_and_deleted_with_undo(qtbot: QtBot) -> None:
    dialog = ConversationSettingsDialog(GenerationSettings())
    qtbot.addWidget(dialog)
    dialog.show()
    saved: list[dict[str, dict[str, float]]] = []
    dialog.presetsChanged.connect(saved.append)
    dialog.apply_preset("Creative")
    dialog.temperature.setValue(0.85)
    dialog.presence_penalty.setValue(0.3)
    assert dialog.preset.currentText() == CUSTOM and not dialog.delete_preset_button.isVisible()

    qtbot.mouseClick(dialog.save_preset_button, Qt.MouseButton.LeftButton)
    assert dialog.focusWidget() is dialog.preset_name
    qtbot.keyClicks(dialog.preset_name, "Balanced")
    assert not dialog.confirm_preset_button.isEnabled() and "one of Hearth's own" in dialog.preset_note.text()
    qtbot.keyClick(dialog.preset_name, Qt.Key.Key_Return)
    assert dialog.isVisible() and saved == []
    dialog.preset_name.clear()
    qtbot.keyClicks(dialog.preset_name, "Story time")
    qtbot.keyClick(dialog.preset_name, Qt.Key.Key_Return)
    assert dialog.isVisible(), "Enter saved the style, not the whole dialog"
    values = {"temperature": 0.85, "top_p": 0.98, "top_k": 100, "min_p": 0.02, "repeat_penalty": 1.15,
              "presence_penalty": 0.3, "frequency_penalty": 0.0}
    assert saved == [{"Story time": pytest.approx(values)}]
    assert [dialog.preset.itemText(i) for i in range(dialog.preset.count())] == [
        "Precise", "Balanced", "Creative", "Story time", CUSTOM]
    assert dialog.preset.currentText() == "Story time" and dialog.delete_preset_button.isVisible()

    # saving the same values again under another name is refused, with the reason
    qtbot.mouseClick(dialog.save_preset_button, Qt.MouseButton.LeftButton)
    dialog.preset_name.setText("Again")
    assert not dialog.confirm_preset_button.isEnabled()
    assert dialog.preset_note.text() == "These values are already the style “Story time”."

    # another conversation, another day: the style is offered and sets every sampler
    later = ConversationSettingsDialog(GenerationSettings(), presets=saved[-1])
    qtbot.addWidget(later)
    later.show()
    later.preset.setCurrentText("Story time")
    later.preset.textActivated.emit("Story time")
    assert later.result_settings().sampler_values() == pytest.approx(values)
    later.presetsChanged.connect(saved.append)
    qtbot.mouseClick(later.delete_preset_button, Qt.MouseButton.LeftButton)
    assert saved[-1] == {} and later.preset.findText("Story time") < 0
    assert later.preset.currentText() == CUSTOM, "the values stay; they are no style any more"
    assert later.undo_row.isVisible() and "Story time" in later.undo_label.text()
    qtbot.mouseClick(later.undo_button, Qt.MouseButton.LeftButton)
    assert saved[-1] == {"Story time": pytest.approx(values)} and later.preset.currentText() == "Story time"
    assert not later.undo_row.isVisible()


def test_own_styles_are_kept_with_the_settings_and_a_damaged_one_is_left_out(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    settings = Settings(sampler_presets={"Mine": GenerationSettings(temperature=0.3).sampler_values()})
    settings.save(path)
    assert Settings.load(path).sampler_presets == settings.sampler_presets
    data = json.loads(path.read_text(encoding="utf-8"))
    data["sampler_presets"] |= {"Broken": {"temperature": "hot"}, "Balanced": data["sampler_presets"]["Mine"],
                                "Too hot": {**data["sampler_presets"]["Mine"], "temperature": 9}}
    path.write_text(json.dumps(data), encoding="utf-8")
    loaded = Settings.load(path).sampler_presets
    assert set(loaded) == {"Mine", "Too hot"} and loaded["Too hot"]["temperature"] == 2.0
    assert GenerationSettings(temperature=0.3).preset(loaded) == "Mine"


def test_a_style_saved_in_the_dialog_is_kept_for_the_next_start_even_if_the_dialog_is_cancelled(
        qtbot: QtBot, make_window: MakeWindow, monkeypatch: pytest.MonkeyPatch) -> None:
    def save_a_style_then_cancel(dialog: ConversationSettingsDialog) -> int:
        dialog.top_k.setValue(12)
        dialog.ask_preset_name()
        qtbot.keyClicks(dialog.preset_name, "Few words")
        qtbot.mouseClick(dialog.confirm_preset_button, Qt.MouseButton.LeftButton)
        return ConversationSettingsDialog.DialogCode.Rejected.value

    monkeypatch.setattr(ConversationSettingsDialog, "exec", save_a_style_then_cancel)
    window = make_window()
    window.chat.edit_settings()
    path = window.services.paths.settings_file
    qtbot.waitUntil(lambda: path.exists() and "Few words" in json.loads(path.read_text("utf-8"))["sampler_presets"])
    assert window.settings.generation.top_k == 40, "the conversation's settings were not saved"
    window.close()
    assert make_window().settings.sampler_presets["Few words"]["top_k"] == 12
