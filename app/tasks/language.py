"""Which language a text is in, for translating "from" it: py3langid (langid.py's maintained fork, its model
shipped in the wheel, offline), restricted to the languages Hearth offers. The model is left to translate: asked
which language plain English was, a small model answered "Indonesian"."""

from __future__ import annotations

from functools import cache
from typing import Any

from app.tasks.spec import LANGUAGES

CODES = {
    "English": "en", "Spanish": "es", "French": "fr", "German": "de", "Italian": "it", "Portuguese": "pt",
    "Dutch": "nl", "Polish": "pl", "Swedish": "sv", "Danish": "da", "Norwegian": "no", "Finnish": "fi",
    "Czech": "cs", "Greek": "el", "Turkish": "tr", "Russian": "ru", "Ukrainian": "uk", "Arabic": "ar",
    "Hebrew": "he", "Hindi": "hi", "Chinese": "zh", "Japanese": "ja", "Korean": "ko", "Vietnamese": "vi",
    "Indonesian": "id",
}
NAMES = {code: name for name, code in CODES.items()}
SAMPLE_CHARS = 2000  # enough to be sure; the identifier's time grows with the text
SURE = 0.5  # below this probability the text is too short or too mixed to say


@cache
def _identifier() -> Any:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    identifier.set_languages([CODES[name] for name in LANGUAGES])
    return identifier


def identify(text: str) -> str | None:
    """The language of ``text`` as Hearth names it ("French"), or ``None`` when it cannot be told."""
    if not text.strip():
        return None
    code, probability = _identifier().classify(text[:SAMPLE_CHARS])
    return NAMES.get(str(code)) if float(probability) >= SURE else None
