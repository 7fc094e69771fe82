"""How the server listens, and the limits it keeps: one dataclass that the command line and the window fill in."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


@dataclass(frozen=True)
class ServerOptions:
    host: str = "127.0.0.1"
    port: int = 8089
    api_key: str | None = None  # required from every client when set; required to listen beyond this computer
    allowed_hosts: tuple[str, ...] = ()  # Host header names besides the loopback ones (the computer's own name)
    cors_origins: tuple[str, ...] = ()  # web pages that may call the API; none by default
    max_waiting: int = 8  # requests queued behind the one answering; more are told to come back (503)
    max_body_bytes: int = 4 * 2**20
    idle_unload_s: float = 600.0  # a model no request has used for this long is unloaded

    @property
    def loopback(self) -> bool:
        return is_loopback(self.host)


def is_loopback(host: str) -> bool:
    if host.strip("[]").casefold() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def own_names() -> set[str]:
    """This computer's names and addresses, as other computers on the network reach it: the Host header their
    requests carry when the server listens beyond this computer."""
    import socket

    import psutil

    names = {socket.gethostname(), socket.getfqdn()}
    for addresses in psutil.net_if_addrs().values():
        for address in addresses:
            if address.family in (socket.AF_INET, socket.AF_INET6):
                names.add(address.address.split("%", 1)[0])  # an IPv6 link-local address ends in its interface
    return {name.casefold() for name in names if name}

