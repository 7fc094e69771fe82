"""A password store for ``hearth`` child processes: the OS's is not there on a CI machine, and a test must not
touch the real one. Selected in a child with ``PYTHON_KEYRING_BACKEND=tests.helpers.keyrings.FileKeyring``;
its passwords are in the JSON file named by ``HEARTH_TEST_KEYRING``."""

from __future__ import annotations

import json
import os
from pathlib import Path

from keyring.backend import KeyringBackend
from keyring.errors import PasswordDeleteError

BACKEND = "tests.helpers.keyrings.FileKeyring"
FILE_VARIABLE = "HEARTH_TEST_KEYRING"


class FileKeyring(KeyringBackend):
    priority = 1  # type: ignore[assignment]

    @property
    def _file(self) -> Path:
        return Path(os.environ[FILE_VARIABLE])

    def _load(self) -> dict[str, str]:
        return json.loads(self._file.read_text(encoding="utf-8")) if self._file.is_file() else {}

    def get_password(self, service: str, username: str) -> str | None:
        return self._load().get(f"{service}/{username}")

    def set_password(self, service: str, username: str, password: str) -> None:
        saved = self._load()
        saved[f"{service}/{username}"] = password
        self._file.write_text(json.dumps(saved), encoding="utf-8")

    def delete_password(self, service: str, username: str) -> None:
        saved = self._load()
        if saved.pop(f"{service}/{username}", None) is None:
            raise PasswordDeleteError("not there")
        self._file.write_text(json.dumps(saved), encoding="utf-8")
