"""The one settings object, stored as JSON beside the other user files.

A hand-written dataclass rather than a settings library: the set is small, and a typed dataclass with
validation on load gives the same safety without another dependency. An unreadable file or a value of the
wrong type falls back to the default (and is logged) instead of stopping the app from starting.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import tempfile
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant. Answer clearly and concisely."
ZOOM_STEPS = (50, 67, 75, 80, 90, 100, 110, 125, 150, 175, 200, 250, 300)  # the conversation's text size, in %


@dataclass(frozen=True)
class Samplers:
    """The samplers besides temperature and top-p, as llama.cpp names them; the defaults are llama.cpp's, with a
    repeat penalty (over the last 64 tokens) that stops small models from looping."""

    top_k: int = 40
    min_p: float = 0.05
    repeat_penalty: float = 1.1
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0


# Named sets of the samplers, as the conversation settings offer them ("Balanced" is the defaults). Each sets every
# sampler, Hearth's as the user's own, so that a name shown always means the same values.
SAMPLER_NAMES = ("temperature", "top_p", "top_k", "min_p", "repeat_penalty", "presence_penalty", "frequency_penalty")
_NO_PENALTIES = {"presence_penalty": 0.0, "frequency_penalty": 0.0}
PRESETS: dict[str, dict[str, float]] = {
    "Precise": {"temperature": 0.2, "top_p": 0.9, "top_k": 40, "min_p": 0.05, "repeat_penalty": 1.1, **_NO_PENALTIES},
    "Balanced": {"temperature": 0.7, "top_p": 0.95, "top_k": 40, "min_p": 0.05, "repeat_penalty": 1.1,
                 **_NO_PENALTIES},
    "Creative": {"temperature": 1.0, "top_p": 0.98, "top_k": 100, "min_p": 0.02, "repeat_penalty": 1.15,
                 **_NO_PENALTIES},
}
CUSTOM = "Custom"  # what the settings call samplers that match no preset; no preset of the user's takes the name


@dataclass
class GenerationSettings:
    """How a conversation talks to its model; each conversation keeps its own copy."""

    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    temperature: float = 0.7
    top_p: float = 0.95
    # The samplers people know from llama.cpp and the other apps, with their defaults; the repeat penalty
    # keeps small models out of loops ("Section 42 … Section 80"), which none was set against before.
    top_k: int = 40
    min_p: float = 0.05
    repeat_penalty: float = 1.1
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    max_tokens: int = 512
    context_length: int = 4096
    seed: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def preset(self, own: Mapping[str, Mapping[str, float]] | None = None) -> str | None:
        """The name of the preset these settings match, if any: Hearth's first, then the user's ``own``."""
        for name, values in [*PRESETS.items(), *(own or {}).items()]:
            if all(abs(float(getattr(self, key)) - value) < 1e-6 for key, value in values.items()):
                return name
        return None

    def with_samplers(self, values: Mapping[str, float]) -> GenerationSettings:
        """These settings with the samplers of a preset (Hearth's or the user's), within their ranges."""
        chosen = {key: int(value) if key == "top_k" else float(value)
                  for key, value in values.items() if key in SAMPLER_NAMES}
        return dataclasses.replace(self, **chosen).validated()  # type: ignore[arg-type]

    def sampler_values(self) -> dict[str, float]:
        """The samplers as a preset keeps them."""
        return {key: getattr(self, key) for key in SAMPLER_NAMES}

    def samplers(self) -> Samplers:
        return Samplers(self.top_k, self.min_p, self.repeat_penalty, self.presence_penalty, self.frequency_penalty)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> GenerationSettings:
        return _load_dataclass(cls, data or {})

    def validated(self) -> GenerationSettings:
        """Clamp values into the ranges llama.cpp accepts."""
        return dataclasses.replace(
            self,
            temperature=min(max(float(self.temperature), 0.0), 2.0),
            top_p=min(max(float(self.top_p), 0.01), 1.0),
            top_k=min(max(int(self.top_k), 0), 1000),
            min_p=min(max(float(self.min_p), 0.0), 1.0),
            repeat_penalty=min(max(float(self.repeat_penalty), 1.0), 2.0),
            presence_penalty=min(max(float(self.presence_penalty), -2.0), 2.0),
            frequency_penalty=min(max(float(self.frequency_penalty), -2.0), 2.0),
            max_tokens=min(max(int(self.max_tokens), 1), 32768),
            context_length=min(max(int(self.context_length), 256), 131072),
        )


@dataclass
class Settings:
    generation: GenerationSettings = field(default_factory=GenerationSettings)
    threads: int | None = None  # None: llama.cpp's choice (the physical cores)
    gpu_layers: int | None = None  # None: as many as fit on the graphics card
    last_model_id: int | None = None
    copy_imported_models: bool = True
    work_offline: bool = False
    catalog_url: str = ""  # where a newer model catalog is published (https); empty: the built-in one only
    # Keep each document's text in the task history; off: only its name, size and SHA-256 are kept.
    save_document_text: bool = True
    welcome_done: bool = False  # the welcome page was left once; it then no longer opens by itself
    # The user's own sampler presets by name (each with every one of SAMPLER_NAMES), offered beside Hearth's.
    sampler_presets: dict[str, dict[str, float]] = field(default_factory=dict)
    chat_zoom: int = 100  # the conversation's text size, in % of the app's (one of ZOOM_STEPS)
    # The models (their files) whose chat template failed, for which the person chose ChatML instead.
    chatml_models: list[str] = field(default_factory=list)
    # The models (their files) that the graphics card could not take, by the card's name: they load on the processor.
    processor_only: dict[str, str] = field(default_factory=dict)
    server_port: int = 8089  # the local server's port (hearth serve takes --port)
    server_network: bool = False  # other computers may use the local server, with its API key
    server_keep_history: bool = False  # the local server's answers are kept as conversations (``served_history``)
    # The other computers' servers the person added, their base URL to the name shown (``app.remote.computers``),
    # and the context length confirmed for one whose server does not say.
    remote_computers: dict[str, str] = field(default_factory=dict)
    remote_contexts: dict[str, int] = field(default_factory=dict)
    # Qt's saveGeometry(), base64: Qt's restoreGeometry() puts a window saved on a screen that is gone on one that
    # is there, which plain numbers would have to do by hand.
    window_geometry: str = ""
    splitter_states: dict[str, str] = field(default_factory=dict)  # QSplitter.saveState(), base64, by object name

    def gpu_layers_for(self, model_path: str | Path, card: str | None) -> int | None:
        """The graphics card layers to plan a load of this model with: none where this card could not take it
        before (``processor_only``), else the person's choice."""
        if card is not None and self.processor_only.get(_model_key(model_path)) == card:
            return 0
        return self.gpu_layers

    def card_failed(self, model_path: str | Path, card: str) -> None:
        """This card could not take the model: later loads of it go to the processor without trying."""
        self.processor_only[_model_key(model_path)] = card

    def uses_chatml(self, model_path: str | Path) -> bool:
        """ChatML was chosen for this model after its own chat template failed."""
        return _model_key(model_path) in self.chatml_models

    @classmethod
    def load(cls, path: Path) -> Settings:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls()
        except (OSError, ValueError):
            log.warning("settings file %s is unreadable; using defaults", path, exc_info=True)
            return cls()
        if not isinstance(data, dict):
            return cls()
        settings = _load_dataclass(cls, {key: value for key, value in data.items() if key != "sampler_presets"})
        settings.generation = GenerationSettings.from_dict(data.get("generation"))
        settings.sampler_presets = own_presets(data.get("sampler_presets"))
        return settings

    def save(self, path: Path) -> None:
        """Write atomically, so a crash mid-write never leaves a half file. Each save has its own temporary
        file: two saves running at once on the thread pool must not move each other's file away."""
        path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(dataclasses.asdict(self), indent=2)
        descriptor, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                handle.write(text)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise


def zoomed(percent: int, steps: int = 0) -> int:
    """The text size ``steps`` steps larger (or smaller) than ``percent``, which is first put on the nearest step
    (a hand-edited settings file may hold any number); within ZOOM_STEPS."""
    nearest = min(range(len(ZOOM_STEPS)), key=lambda i: abs(ZOOM_STEPS[i] - percent))
    return ZOOM_STEPS[min(max(nearest + steps, 0), len(ZOOM_STEPS) - 1)]


def own_presets(data: Any) -> dict[str, dict[str, float]]:
    """The user's presets as saved, each checked on its own: one that is damaged, or takes the name of one of
    Hearth's, is left out (and logged) and the others are kept."""
    presets: dict[str, dict[str, float]] = {}
    for name, values in (data.items() if isinstance(data, dict) else ()):
        named = isinstance(name, str) and bool(name.strip()) and name not in (*PRESETS, CUSTOM)
        if named and isinstance(values, dict) and all(_fits(values.get(key), float) for key in SAMPLER_NAMES):
            presets[name] = GenerationSettings().with_samplers(values).sampler_values()
        else:
            log.warning("sampler preset %r is unusable (%r); left out", name, values)
    return presets


def _load_dataclass(cls: type[T], data: dict[str, Any]) -> T:
    defaults = cls()
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name not in data or dataclasses.is_dataclass(getattr(defaults, f.name)):
            continue
        value = data[f.name]
        if _fits(value, hints[f.name]):
            values[f.name] = value
        else:
            log.warning("setting %s has the wrong type (%r); using the default", f.name, value)
    return dataclasses.replace(defaults, **values)  # type: ignore[type-var]


def _fits(value: Any, hint: Any) -> bool:
    if typing.get_origin(hint) is list:
        (item_hint,) = typing.get_args(hint)
        return isinstance(value, list) and all(_fits(item, item_hint) for item in value)
    if typing.get_origin(hint) is dict:
        key_hint, value_hint = typing.get_args(hint)
        return isinstance(value, dict) and all(_fits(k, key_hint) and _fits(v, value_hint) for k, v in value.items())
    allowed = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    for kind in allowed:
        if kind is type(None) and value is None:
            return True
        if kind is float and isinstance(value, int | float) and not isinstance(value, bool):
            return True
        if kind is int and isinstance(value, int) and not isinstance(value, bool):
            return True
        if kind in (str, bool) and isinstance(value, kind):
            return True
    return False


def _model_key(model_path: str | Path) -> str:
    """How the settings name a model: its file's resolved path."""
    return str(Path(model_path).resolve())

