"""What the server says of each request it answered: a line for ``hearth serve`` and a row for the window's list,
from one record. Apart from the routes, so that the window reads it without importing the web stack."""

from __future__ import annotations

import logging
from dataclasses import dataclass

requests_log = logging.getLogger("hearth.server.requests")  # one record per request, with ``served`` attached


@dataclass(frozen=True)
class Served:
    """One answered request, as the log line and the window's list of requests show it."""

    at: str  # local time, HH:MM:SS
    client: str
    endpoint: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    seconds: float
    status: int

    def line(self) -> str:
        return (f"{self.at} {self.client} {self.endpoint} {self.model} {self.prompt_tokens}+{self.completion_tokens} "
                f"tokens {self.seconds:.2f} s {self.status}")
