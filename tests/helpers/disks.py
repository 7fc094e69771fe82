"""Real full, read-only and forbidden disks for tests, made without touching the machine's own.

A full disk is a small ``tmpfs`` mounted in a private mount namespace (``unshare --user --mount``: no root needed
where the kernel allows user namespaces, and the mount is gone when the command ends); filled with a file, it gives
the real ``ENOSPC`` and SQLite's real reactions to it. Remounted read-only, the same disk gives the real ``EROFS``.
A folder Hearth may not write to is made with ``chmod``; a test that runs as root (CI does) runs its command with
the capabilities that let root ignore file modes taken away (``setpriv``), so the modes hold for it too.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.helpers import ROOT

MOUNT_THEN_RUN = 'mount -t tmpfs -o size="$1" tmpfs "$2" && shift 2 && exec "$@"'


@functools.cache
def small_disks_available() -> bool:
    """Whether this machine lets a test mount a private tmpfs (Linux with user namespaces)."""
    if sys.platform != "linux" or shutil.which("unshare") is None or shutil.which("mount") is None:
        return False
    probe = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
                            'mount -t tmpfs -o size=1m tmpfs /tmp && touch /tmp/probe'], capture_output=True)
    return probe.returncode == 0


def run_on_small_disk(mount_point: Path, size: str, *command: str) -> subprocess.CompletedProcess[str]:
    """``command`` (run in the repository) with a ``size`` tmpfs (e.g. "8m") mounted on ``mount_point``, seen by
    that command and its children only."""
    mount_point.mkdir(parents=True, exist_ok=True)
    return subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", MOUNT_THEN_RUN, "sh",
                           size, str(mount_point), *command], cwd=ROOT, capture_output=True, text=True, timeout=300)


@functools.cache
def file_modes_can_bind() -> bool:
    """Whether a command started through :func:`as_ordinary_user` is refused by file modes (a non-root account
    is; root is only where ``setpriv`` can drop its override)."""
    return os.geteuid() != 0 or shutil.which("setpriv") is not None


def as_ordinary_user(command: list[str]) -> list[str]:
    """``command`` such that ``chmod`` binds it: as it is for an ordinary account; for root, without the
    capabilities that override file modes."""
    if os.geteuid() != 0:
        return command
    return ["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner", "--inh-caps=-all", *command]
