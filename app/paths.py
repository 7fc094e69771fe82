"""The one place that knows where Hearth keeps its files.

By default the platform's standard folders (through platformdirs); with ``HEARTH_HOME`` set, everything
lives under that one folder instead: a portable install, and what the tests use.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import platformdirs

APP_NAME = "Hearth"


@dataclass(frozen=True)
class Paths:
    models_dir: Path
    database: Path
    logs_dir: Path
    settings_file: Path
    cache_dir: Path

    @classmethod
    def under(cls, home: Path) -> Paths:
        home = home.expanduser().resolve()
        return cls(
            models_dir=home / "models",
            database=home / "data" / "history.sqlite3",
            logs_dir=home / "logs",
            settings_file=home / "settings.json",
            cache_dir=home / "cache",
        )

    @classmethod
    def from_environment(cls) -> Paths:
        home = os.environ.get("HEARTH_HOME")
        if home:
            return cls.under(Path(home))
        dirs = platformdirs.PlatformDirs(APP_NAME, appauthor=False)
        data = Path(dirs.user_data_dir)
        return cls(
            models_dir=data / "models",
            database=data / "history.sqlite3",
            logs_dir=Path(dirs.user_log_dir),
            settings_file=Path(dirs.user_config_dir) / "settings.json",
            cache_dir=Path(dirs.user_cache_dir),
        )

    @property
    def log_file(self) -> Path:
        return self.logs_dir / "hearth.log"

    @property
    def crash_log(self) -> Path:
        return self.logs_dir / "crash.log"

    @property
    def kv_states_dir(self) -> Path:
        """Conversations' saved KV states (``app/engine/saved_states.py``): a cache, safe to delete."""
        return self.cache_dir / "conversation-states"

    @property
    def engines_dir(self) -> Path:
        """A record of each engine worker running (``app/engine/watchdog.py``), to end one its app left behind."""
        return self.cache_dir / "engines"

    @property
    def backups_dir(self) -> Path:
        """Copies of the history database (``app/history/backups.py``), beside it in the data folder."""
        return self.database.parent / "backups"

    def ensure(self) -> Paths:
        for folder in (self.models_dir, self.database.parent, self.logs_dir, self.settings_file.parent,
                       self.cache_dir):
            folder.mkdir(parents=True, exist_ok=True)
        return self


def resources_dir() -> Path:
    """The ``resources`` folder: beside the packages when run from source, inside the bundle when frozen
    (PyInstaller unpacks data to ``sys._MEIPASS``)."""
    bundle = getattr(sys, "_MEIPASS", None)
    base = Path(bundle) if bundle else Path(__file__).resolve().parent.parent
    return base / "resources"
