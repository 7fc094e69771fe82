"""Typing in Discover's search box filters the built-in catalog at once, with no network."""

from __future__ import annotations

import pytest
from pytestqt.qtbot import QtBot

from app.hub.catalog import load_builtin
from ui.discover.discover_view import DiscoverView

pytestmark = pytest.mark.gui


def _names(view: DiscoverView) -> list[str]:
    return [view.results.item(row).text().split("  ·  ")[0] for row in range(view.results.count())]


def test_typing_filters_the_catalog_and_recommended_clears_it(qtbot: QtBot) -> None:
    entries = list(load_builtin().entries())
    view = DiscoverView()
    qtbot.addWidget(view)
    view.set_catalog(entries)
    assert len(_names(view)) == len(entries)
    qtbot.keyClicks(view.query, "phi")
    assert _names(view) == ["Phi-3.5 mini Instruct", "Phi-4 mini Instruct"]
    assert "2 of" in view.status.text() and "Press Enter" in view.status.text()
    view.query.setText("qwen 0.5b")
    assert _names(view) == ["Qwen2.5 0.5B Instruct"]
    view.query.setText("no such model")
    assert _names(view) == [] and "No well-known model matches" in view.status.text()
    view._back_to_catalog()
    assert view.query.text() == "" and len(_names(view)) == len(entries)
