"""How a model on another computer is named where a model file's path goes (the engine's ``Load.path``, the
model bar, a conversation's settings, a comparison's entries): ``remote+<the server's base URL>#<model id>``.

One string, so every place that keeps or passes a model's path takes a remote one unchanged; only the engine
client (which picks who answers) and the pages (which show the computer's name) look inside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

PREFIX = "remote+"


@dataclass(frozen=True)
class RemoteAddress:
    base_url: str  # as the person gave it, without a trailing slash
    model: str  # the server's id of the model

    @property
    def short_model(self) -> str:
        """The model's id as people read it: a server that names a model by its file gives a path."""
        return self.model.replace("\\", "/").rsplit("/", 1)[-1].removesuffix(".gguf")

    @property
    def host(self) -> str:
        return urlsplit(self.base_url).hostname or self.base_url

    def __str__(self) -> str:
        return f"{PREFIX}{self.base_url}#{quote(self.model, safe='')}"


def is_remote(path: object) -> bool:
    return str(path).startswith(PREFIX)


def parse(path: str) -> RemoteAddress:
    """The address in ``path``; a ``ValueError`` where it is not one."""
    if not is_remote(path) or "#" not in path:
        raise ValueError(f"not a remote model: {path!r}")
    base_url, _, model = path[len(PREFIX):].rpartition("#")
    if not base_url or not model:
        raise ValueError(f"not a remote model: {path!r}")
    return RemoteAddress(base_url.rstrip("/"), unquote(model))


def same_model(path: str, other: str) -> bool:
    """Whether two paths name one model: a remote one by its address, a file wherever its path leads."""
    if is_remote(path) or is_remote(other):
        return str(path) == str(other)
    from pathlib import Path

    return Path(path).resolve() == Path(other).resolve()
