"""``hardware.json`` in the cache folder: what was measured or asked on this computer, kept between starts
(memory speed readings, the engine worker's own size, llama.cpp's answers about the machine)."""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

CACHE_FILE = "hardware.json"


def engine_baseline(cache_dir: Path) -> int | None:
    """The engine worker's resident size before any model, as last measured here (see ``Machine``)."""
    entry = read_cache(cache_dir).get("engine", {}).get(sys.platform)
    value = entry.get("rss_bytes") if isinstance(entry, dict) else None
    return int(value) if isinstance(value, int) and value > 0 else None


def store_engine_baseline(cache_dir: Path, rss_bytes: int, llama_cpp_version: str) -> None:
    """Kept per platform: the worker's size depends on the Python, the libraries and the build it runs."""
    if rss_bytes > 0 and rss_bytes != engine_baseline(cache_dir):
        update_cache(cache_dir, "engine", sys.platform,
                      {"rss_bytes": rss_bytes, "llama_cpp": llama_cpp_version,
                       "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")})


def read_cache(cache_dir: Path) -> dict[str, Any]:
    path = cache_dir / CACHE_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        log.debug("ignoring an unreadable %s", path, exc_info=True)
        return {}
    if not isinstance(data, dict):
        return {}
    return {key: value for key, value in data.items() if isinstance(value, dict)}


def update_cache(cache_dir: Path, section: str, key: str, value: dict[str, Any]) -> None:
    """Atomic, so a second Hearth reading at the same moment never sees half a file."""
    data = read_cache(cache_dir)
    data.setdefault(section, {})[key] = value
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=cache_dir, delete=False, suffix=".tmp") as tmp:
            json.dump(data, tmp, indent=2)
        os.replace(tmp.name, cache_dir / CACHE_FILE)
    except OSError:
        log.warning("could not write %s in %s", CACHE_FILE, cache_dir, exc_info=True)
