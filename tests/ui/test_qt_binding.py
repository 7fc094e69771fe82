"""The Qt binding itself must not corrupt the interpreter: PySide6 6.12.0 dropped a reference to ``None`` on every
call of a void Qt method (``QWidget.update``, ``QApplication.processEvents``…) under Python 3.11, so a session
that made enough of them (a long answer re-rendered token by token, say) ended in "Fatal Python error:
deallocating None". pyproject.toml keeps that version out; this keeps it out for good.

The calls are counted in a fresh interpreter: inside the suite, the first ``processEvents`` also runs what earlier
tests left queued (deferred deletions, posted events), and every object freed then gives back its own references
to ``None``, which reads exactly like the bug."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.helpers import ROOT

CALLS = """
import sys

from PySide6.QtWidgets import QApplication, QLabel

app = QApplication([])
label = QLabel("x")
label.show()
app.processEvents()
before = sys.getrefcount(None)
for _ in range(1000):
    label.update()
    label.setText("y")
    app.processEvents()
print(before - sys.getrefcount(None))
"""


@pytest.mark.gui
def test_void_qt_calls_keep_none_alive() -> None:
    result = subprocess.run([sys.executable, "-c", CALLS], cwd=ROOT, capture_output=True, text=True, check=False,
                            env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) < 50, "each void Qt call dropped a reference to None"
