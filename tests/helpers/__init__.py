"""What the tests share besides fixtures: builders of models and documents, a Hub stand-in, servers, probes.

Tests import them as ``tests.helpers.<module>``: pytest puts the repository root on the path (``pythonpath`` in
pyproject.toml), and the benchmarks, plain scripts, put it there themselves.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
"""The repository: where ``app/``, ``ui/`` and ``resources/`` are, and where a test starts ``hearth`` in."""
DATA = ROOT / "tests" / "data"
"""Files the tests read and never change: a history database per past schema version, recorded machines."""
