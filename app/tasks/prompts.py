"""Task prompts, read from ``resources/prompts/*.toml`` and checked when read.

Prompts are data so they can be improved without touching code. Each file is one task (and, for
summaries, one length); every template is checked for the placeholders the code fills in, so a broken
edit fails with a message naming the file instead of producing a prompt with ``{text}`` left in it.
"""

from __future__ import annotations

import functools
import string
import tomllib
from dataclasses import dataclass

from app.errors import HearthError
from app.paths import resources_dir

SUMMARY_LENGTHS = ("short", "points", "detailed")

_REQUIRED: dict[str, dict[str, set[str]]] = {
    "summarize": {"map": {"text"}, "combine": {"text"}, "final": {"text"}},
    "translate": {"translate": {"text", "target"}},
    "classify": {"single": {"text", "labels"}, "multi": {"text", "labels"}},
}


class PromptError(HearthError):
    """A prompt file under resources/prompts is missing or broken."""


@dataclass(frozen=True)
class PromptSet:
    name: str
    system: str
    templates: dict[str, str]

    def user(self, stage: str, **values: str) -> str:
        return self.templates[stage].format(**values)

    def messages(self, stage: str, **values: str) -> list[dict[str, str]]:
        return [{"role": "system", "content": self.system}, {"role": "user", "content": self.user(stage, **values)}]


@functools.cache
def load(name: str) -> PromptSet:
    """``name`` is a file stem: ``summarize-points``, ``translate``, ``classify``."""
    path = resources_dir() / "prompts" / f"{name}.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise PromptError(f"The prompt file {path.name} cannot be read ({error}). Reinstall Hearth.") from error
    kind = name.split("-")[0]
    required = _REQUIRED.get(kind)
    if required is None:
        raise PromptError(f"There is no task called “{kind}”.")
    system = data.get("system")
    if not isinstance(system, str):
        raise PromptError(f"The prompt file {path.name} has no system prompt.")
    templates: dict[str, str] = {}
    for stage, fields in required.items():
        template = data.get(stage)
        if not isinstance(template, str):
            raise PromptError(f"The prompt file {path.name} has no “{stage}” prompt.")
        used = {field for _, field, _, _ in string.Formatter().parse(template) if field}
        if not fields <= used:
            missing = ", ".join("{" + name + "}" for name in sorted(fields - used))
            raise PromptError(f"The “{stage}” prompt in {path.name} must contain {missing}.")
        templates[stage] = template
    return PromptSet(name, system, templates)


def summary_prompts(length: str) -> PromptSet:
    if length not in SUMMARY_LENGTHS:
        raise PromptError(f"A summary can be {', '.join(SUMMARY_LENGTHS)}; not “{length}”.")
    return load(f"summarize-{length}")
