"""Where files live, and the one settings object."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.paths import Paths
from app.settings import GenerationSettings, Settings, zoomed


def test_hearth_home_puts_everything_under_one_folder(hearth_home: Path) -> None:
    paths = Paths.from_environment().ensure()
    for path in (paths.models_dir, paths.database, paths.logs_dir, paths.settings_file, paths.cache_dir):
        assert path.is_relative_to(hearth_home.resolve())
    assert paths.models_dir.is_dir() and paths.database.parent.is_dir() and paths.logs_dir.is_dir()


def test_without_hearth_home_the_platform_folders_are_used(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("HEARTH_HOME", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    paths = Paths.from_environment()
    assert "Hearth" in paths.database.parts and "Hearth" in paths.settings_file.parts
    if paths.database.is_relative_to(tmp_path):  # platformdirs follows XDG on Linux
        assert paths.settings_file.is_relative_to(tmp_path / "config")


def test_settings_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    settings = Settings(generation=GenerationSettings(temperature=0.2, seed=4), threads=2, last_model_id=7,
                        save_document_text=False, chat_zoom=125, window_geometry="AdnQywAD",
                        splitter_states={"taskSplitter": "AAAA/w=="},
                        sampler_presets={"Mine": GenerationSettings(top_k=7).sampler_values()})
    settings.save(path)
    assert Settings.load(path) == settings


def test_the_window_shape_and_text_size_fall_back_when_damaged(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"splitter_states": {"taskSplitter": 3}, "window_geometry": 5, "chat_zoom": "big"}))
    settings = Settings.load(path)
    assert (settings.splitter_states, settings.window_geometry, settings.chat_zoom) == ({}, "", 100)
    assert [zoomed(133), zoomed(100, 1), zoomed(300, 1), zoomed(110, -99), zoomed(7)] == [125, 110, 300, 50, 50]


def test_document_text_is_saved_unless_turned_off(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"threads": 2}))  # written before the setting existed
    assert Settings.load(path).save_document_text is True
    path.write_text(json.dumps({"save_document_text": "no"}))
    assert Settings.load(path).save_document_text is True


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", json.dumps({"threads": "many", "gpu_layers": 3})])
def test_bad_settings_fall_back_to_defaults(tmp_path: Path, content: str) -> None:
    path = tmp_path / "settings.json"
    path.write_text(content)
    settings = Settings.load(path)
    assert settings.threads is None
    assert settings.gpu_layers in (None, 3)


def test_generation_settings_are_clamped() -> None:
    wild = GenerationSettings(temperature=9, top_p=0, max_tokens=-5, context_length=10).validated()
    assert (wild.temperature, wild.top_p, wild.max_tokens, wild.context_length) == (2.0, 0.01, 1, 256)
    assert GenerationSettings.from_dict({"temperature": 1, "bogus": 1}).temperature == 1


def test_the_models_written_in_chatml_are_kept_and_a_damaged_list_falls_back(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    settings = Settings()
    settings.chatml_models.append("/models/broken-template.gguf")
    settings.save(path)
    assert Settings.load(path).chatml_models == ["/models/broken-template.gguf"]
    path.write_text(json.dumps({"chatml_models": ["/a.gguf", 3], "chat_zoom": 110}), encoding="utf-8")
    loaded = Settings.load(path)
    assert loaded.chatml_models == [] and loaded.chat_zoom == 110
