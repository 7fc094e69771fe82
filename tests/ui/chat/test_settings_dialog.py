"""The conversation settings: the samplers people expect, with presets that set them and say when they match."""

from __future__ import annotations

import pytest
from pytestqt.qtbot import QtBot

from app.settings import PRESETS, GenerationSettings, Samplers
from ui.chat.settings_dialog import CUSTOM, ConversationSettingsDialog

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
