"""The source language of a translation comes from an offline identifier, not from the model."""

from __future__ import annotations

from app.tasks.language import CODES, identify
from app.tasks.spec import LANGUAGES


def test_plain_english_is_english_and_others_are_told_apart() -> None:
    # The model once called this text Indonesian.
    assert identify("The quarterly report shows that sales grew in every region, and the team expects the same "
                    "next year if the new shop opens on time.") == "English"
    assert identify("Le rapport trimestriel montre que les ventes ont augmenté dans toutes les régions.") == "French"
    assert identify("Der Quartalsbericht zeigt, dass der Umsatz in allen Regionen gestiegen ist.") == "German"
    assert identify("El informe trimestral muestra que las ventas crecieron en todas las regiones.") == "Spanish"


def test_nothing_to_tell_is_none_and_every_offered_language_has_a_code() -> None:
    assert identify("   ") is None
    assert set(CODES) == set(LANGUAGES)
