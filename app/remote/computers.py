"""The computers the person added, whose servers Hearth may use: kept in the settings (base URL and name) with
each one's API key in the operating system's password store. Hearth never contacts a server that is not here.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from app.errors import HearthError
from app.hub.credentials import delete_secret, read_secret, save_secret
from app.settings import Settings

DEFAULT_CONTEXT = 2048  # offered for a server that does not say its context length; the person confirms it


@dataclass(frozen=True)
class Computer:
    base_url: str
    name: str
    context_length: int = 0  # confirmed by the person, for a server that does not say; 0: not asked


def normalized(url: str) -> str:
    """The base URL as kept: a scheme where none was typed (http), without a trailing slash or ``/v1``."""
    url = url.strip()
    if "://" not in url:
        url = "http://" + url
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise HearthError(f"“{url}” is not a server's address. Type one like http://study-pc:8080.")
    return url.rstrip("/").removesuffix("/v1").rstrip("/")


def _account(base_url: str) -> str:
    return f"remote-key:{base_url}"


class Computers:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def all(self) -> list[Computer]:
        return [self._computer(url) for url in sorted(self.settings.remote_computers,
                                                       key=lambda u: self.settings.remote_computers[u].casefold())]

    def find(self, base_url: str) -> Computer | None:
        base_url = base_url.rstrip("/").removesuffix("/v1")
        return self._computer(base_url) if base_url in self.settings.remote_computers else None

    def _computer(self, base_url: str) -> Computer:
        return Computer(base_url, self.settings.remote_computers[base_url],
                        self.settings.remote_contexts.get(base_url, 0))

    def key(self, base_url: str) -> str | None:
        return read_secret(_account(base_url))

    def add(self, base_url: str, name: str, key: str = "", context_length: int = 0) -> Computer:
        """Adds (or changes) a computer; an empty ``key`` removes the one kept. Saving the settings is the caller's."""
        base_url = normalized(base_url)
        name = name.strip() or (urlsplit(base_url).hostname or base_url)
        if key.strip():
            save_secret(_account(base_url), key.strip(), "the server's API key",
                        "This computer has no password store Hearth can use, so the API key cannot be kept safely.")
        else:
            delete_secret(_account(base_url), "the server's API key")
        self.settings.remote_computers[base_url] = name
        if context_length > 0:
            self.settings.remote_contexts[base_url] = context_length
        else:
            self.settings.remote_contexts.pop(base_url, None)
        return self._computer(base_url)

    def remove(self, base_url: str) -> None:
        self.settings.remote_computers.pop(base_url, None)
        self.settings.remote_contexts.pop(base_url, None)
        delete_secret(_account(base_url), "the server's API key")
