"""What kind of model a file holds, as its names say: only pretrained (a base model), or tuned to chat.

Kept apart from the header parser so that what only shows records (the chat's model bar at the first paint) can
ask without importing the ``gguf`` package.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# Words that publishers put in the names of models tuned to follow instructions or to chat ("Llama-3.2-1B-Instruct",
# "gemma-2-2b-it", "TinyLlama-1.1B-Chat", "Mistral-7B-Instruct" as "inst"), and the tuning methods that make them.
_CHAT_TUNED_WORDS = frozenset({"instruct", "instruction", "chat", "it", "inst", "sft", "dpo", "rlhf", "assistant"})


def looks_like_base_model(*, has_chat_template: bool, names: Iterable[str]) -> bool:
    """Whether a model was only pretrained: it continues text instead of answering.

    Decided as people do from the outside, since no header key says it: no chat template, and none of its names
    (the header's name and fine-tune label, the file name) carries a word of chat or instruction tuning. A model
    whose name says "Instruct" but that has no template is an instruct model packed without one: it gets ChatML
    and answers, so it is not flagged.
    """
    if has_chat_template:
        return False
    words = {word for name in names for word in re.split(r"[^0-9a-z]+", name.casefold()) if word}
    return not words & _CHAT_TUNED_WORDS


BASE_MODEL_WARNING = "This is a base model: it continues text rather than answering; choose an instruct model to chat."
BASE_MODEL_TASK_WARNING = ("A base model: it continues text rather than following instructions, so it summarizes, "
                           "translates and labels poorly. An instruct model does these well.")
BASE_MODEL_NOTE = "A base model: it continues text rather than answering."  # beside its name (a comparison's column)
