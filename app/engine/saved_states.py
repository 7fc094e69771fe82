"""Conversations' KV states set aside while the model works on another conversation, so that switching back
does not read the whole conversation again.

The model's own KV cache holds one conversation at a time. When the worker turns to another one, it copies
the cache out (``llama_kv.capture``) and keeps the copy here: in memory, most recently used first, within
``MEMORY_BUDGET_BYTES``; the least recently used spill to files in the cache folder, of which at most
``DISK_KEEP`` (and ``DISK_BUDGET_BYTES``) are kept. A state bigger than the memory budget (or one saved as the
model goes away) is written by llama.cpp itself (``llama_state_seq_save_file``, tensor by tensor) and read back
the same way, so it never has a copy in memory; a spilled memory entry is written as it is (``_write_file``:
llama.cpp's buffer format differs from its file format, so it is not rewritten as one) and read back into
memory to be restored: for that moment the worker holds one state more than the budget (a state is never
bigger than the budget, nor than the model's KV cache).

Copying a 100 MB state into newly allocated memory took 250 ms here, most of it the operating system mapping
the pages, against 50 ms into memory already mapped. So after each answer the worker has the store map a
*spare* (``prepare_spare``) while the person reads, from the budget's free part only, and setting the live
conversation aside copies into it (``spare_for``).

Correctness never rests on finding the right entry here: a state carries the tokens its cache holds, and the
model reuses only the longest prefix those tokens share with the new prompt (``llama_kv.ReuseGuard`` covers
the one case where that alone is not enough). What a state must match exactly is the model and the
way it was loaded, its *identity* (``llama_kv.identity``): it is part of every entry and file name, a state of
another identity is never used, and loading another model sets the memory entries aside.

Nothing here touches llama.cpp, so the app side can call ``remove_files`` to delete a deleted conversation's
files while no worker runs.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import logging
import os
import struct
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# Saved states held in the worker's memory, besides the model's own KV cache: at most one full context's worth
# (``memory_budget_for``), so they never outweigh the model, and at most this. The memory forecast shows it beside
# a loaded model's needs and counts it in the verdict; a state bigger than the budget goes straight to disk.
MEMORY_BUDGET_BYTES = 256 * 1024 * 1024
DISK_KEEP = 6  # conversations whose states stay on disk (any model), most recently used first
DISK_BUDGET_BYTES = 2 * 1024 * 1024 * 1024
SPARE_HEADROOM = 1 / 16  # a spare this much bigger than the state it was made for fits a turn or two more
SUFFIX = ".kvstate"
_MAGIC = b"HKV1"  # a spilled memory entry; a file llama.cpp wrote starts with its own magic ("ggsq")
_HEADER = struct.Struct("<4sIQ")  # magic, token count, state bytes; then the tokens (int32), then the state


@dataclass
class SavedState:
    """One conversation's cache: in memory (``tokens`` and ``data``, from ``llama_state_seq_get_data``) or in
    a file (``path``, whose tokens llama.cpp reads with the state)."""

    conversation: str
    tokens: list[int]
    data: Any = None  # a ctypes byte array, or a bytearray read back from a spilled file
    path: Path | None = None  # a file llama.cpp wrote (``llama_state_seq_load_file`` reads it)
    from_disk: bool = False
    headroom: int = 0  # bytes of the spare it was copied into beyond ``data``, held with it

    @property
    def nbytes(self) -> int:
        return len(self.data) + self.headroom if self.data is not None else 0


def memory_budget_for(kv_cache_bytes: int) -> int:
    """The memory kept for other conversations' states with a model whose own KV cache is ``kv_cache_bytes``:
    enough to switch between two long conversations without touching the disk."""
    return min(MEMORY_BUDGET_BYTES, max(kv_cache_bytes, 0))


def file_name(conversation: str, identity: str) -> str:
    return f"{_digest(conversation)}-{identity}{SUFFIX}"


def remove_files(folder: Path, conversation: str) -> int:
    """Delete a conversation's state files (of every model); returns how many."""
    removed = 0
    for path in folder.glob(f"{_digest(conversation)}-*{SUFFIX}"):
        with contextlib.suppress(OSError):
            path.unlink()
            removed += 1
    return removed


class StateStore:
    """The worker's saved states for the loaded model (one ``identity`` at a time).

    Args:
        folder: where states spill to; ``None`` keeps them in memory only (the command line, the tests).
        memory_budget: bytes of states kept in memory.
        disk_keep, disk_budget: how many state files, and how many bytes of them, stay in ``folder``.
    """

    def __init__(self, folder: Path | None, *, memory_budget: int = MEMORY_BUDGET_BYTES,
                 disk_keep: int = DISK_KEEP, disk_budget: int = DISK_BUDGET_BYTES) -> None:
        self.folder = folder
        self.memory_budget = memory_budget
        self.disk_keep = disk_keep
        self.disk_budget = disk_budget
        self.identity = ""
        self._memory: OrderedDict[str, SavedState] = OrderedDict()  # least recently used first
        self._spare: bytearray | None = None
        self._mapping: threading.Thread | None = None  # maps the spare's pages; joined before it is used
        if folder is not None:
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                log.warning("conversations' caches stay in memory: %s", error)
                self.folder = None
                return
            for partial in folder.glob(f"*{SUFFIX}.partial"):  # left by a worker that was ended mid-write
                with contextlib.suppress(OSError):
                    partial.unlink()

    @property
    def memory_bytes(self) -> int:
        return self._states_bytes() + len(self._spare or b"")

    def _states_bytes(self) -> int:
        return sum(state.nbytes for state in self._memory.values())

    def prepare_spare(self, nbytes: int) -> None:
        """Have memory mapped for the live conversation's state, ``nbytes`` now, if the budget has room for it
        beside the states it keeps (no state is spilled for it). Its pages are mapped on a thread of its own
        (``ctypes.memset`` lets go of the interpreter), so the worker is free for the next command."""
        if self._spare is not None and len(self._spare) >= nbytes:
            return
        self._drop_spare()
        wanted = int(nbytes * (1 + SPARE_HEADROOM)) + (1 << 20)
        if nbytes <= 0 or self._states_bytes() + wanted > self.memory_budget:
            return
        spare = bytearray(wanted)  # calloc: its pages are not mapped until written
        address = ctypes.addressof((ctypes.c_uint8 * wanted).from_buffer(spare))
        self._mapping = threading.Thread(target=_map_pages, args=(address, wanted), name="state-spare",
                                         daemon=True)
        self._mapping.start()
        self._spare = spare

    def spare_for(self, nbytes: int) -> tuple[Any, int] | None:
        """The spare, as a buffer of exactly ``nbytes`` and the headroom beyond it, if it is big enough: from
        now on it is that state's (``keep(..., headroom=)``)."""
        if self._spare is None or len(self._spare) < nbytes:
            return None
        spare = self._spare
        self._drop_spare()
        return (ctypes.c_uint8 * nbytes).from_buffer(spare), len(spare) - nbytes

    def _drop_spare(self) -> None:
        if self._mapping is not None:
            self._mapping.join()
        self._spare = self._mapping = None

    def in_memory(self) -> list[str]:
        return list(self._memory)

    def on_disk(self) -> list[Path]:
        """This store's state files, most recently used first."""
        if self.folder is None:
            return []
        files = []
        for path in self.folder.glob(f"*{SUFFIX}"):
            with contextlib.suppress(OSError):
                files.append((path.stat().st_mtime_ns, path))
        return [path for _, path in sorted(files, reverse=True)]

    def use_identity(self, identity: str) -> None:
        """States are kept for one model and load plan at a time; memory entries of another are dropped (the
        worker spills them before it loads another model)."""
        if identity != self.identity:
            self._memory.clear()
            self._drop_spare()
            self.identity = identity

    def reserve(self, nbytes: int) -> bool:
        """Make room in memory for a state of ``nbytes`` by spilling the least recently used ones; ``False``
        when it would not fit even alone (then it goes to disk, ``write``)."""
        if nbytes > self.memory_budget:
            return False
        if self.memory_bytes + nbytes > self.memory_budget:
            self._drop_spare()
        while self._memory and self.memory_bytes + nbytes > self.memory_budget:
            _, oldest = self._memory.popitem(last=False)
            self._spill(oldest)
        return True

    def keep(self, conversation: str, tokens: Sequence[int], data: Any, headroom: int = 0) -> None:
        """Keep a state in memory (after ``reserve``) as the most recently used."""
        self._memory.pop(conversation, None)
        self._memory[conversation] = SavedState(conversation, list(tokens), data=data, headroom=headroom)

    def write(self, conversation: str, save: Callable[[Path], bool], nbytes: int = 0) -> None:
        """Put a state of about ``nbytes`` straight into its file: ``save(path)`` writes it
        (``llama_kv.save_file``)."""
        self._memory.pop(conversation, None)
        if self.folder is None or nbytes > self.disk_budget:
            return
        path = self.folder / file_name(conversation, self.identity)
        partial = path.with_name(path.name + ".partial")
        try:
            if save(partial):
                os.replace(partial, path)
        except OSError as error:
            log.warning("could not save the cache of conversation %s: %s", conversation, error)
        finally:
            with contextlib.suppress(OSError):
                partial.unlink()
        self._trim_disk()

    def take(self, conversation: str) -> SavedState | None:
        """The conversation's state, from memory (removed there: the live cache is newer from now on) or from
        its file (kept, as a prefix to fall back on should the worker end)."""
        state = self._memory.pop(conversation, None)
        if state is not None or self.folder is None:
            return state
        path = self.folder / file_name(conversation, self.identity)
        try:
            os.utime(path)  # most recently used
        except OSError:
            return None  # none saved
        try:
            with path.open("rb") as source:
                head = source.read(_HEADER.size)
                if len(head) < _HEADER.size or head[:4] != _MAGIC:
                    return SavedState(conversation, [], path=path, from_disk=True)
                _, count, nbytes = _HEADER.unpack(head)
                tokens = struct.unpack(f"<{count}i", source.read(4 * count))
                data = bytearray(nbytes)
                complete = source.readinto(data) == nbytes
        except (OSError, struct.error) as error:
            log.warning("could not read the saved cache of conversation %s: %s", conversation, error)
            return None
        return SavedState(conversation, list(tokens), data=data, from_disk=True) if complete else None

    def forget(self, conversation: str) -> None:
        self._memory.pop(conversation, None)
        if self.folder is not None:
            remove_files(self.folder, conversation)

    def spill(self) -> None:
        """Move every memory entry to disk (or drop them without a folder): the model is going away."""
        self._drop_spare()
        while self._memory:
            _, oldest = self._memory.popitem(last=False)
            self._spill(oldest)

    def _spill(self, state: SavedState) -> None:
        if self.folder is None or state.data is None:
            return
        if state.nbytes > self.disk_budget:
            return
        path = self.folder / file_name(state.conversation, self.identity)
        partial = path.with_name(path.name + ".partial")
        try:
            _write_file(partial, state.tokens, state.data)
            os.replace(partial, path)
        except OSError as error:
            log.warning("could not save the cache of conversation %s: %s", state.conversation, error)
            with contextlib.suppress(OSError):
                partial.unlink()
        self._trim_disk()

    def _trim_disk(self) -> None:
        kept, total = 0, 0
        for path in self.on_disk():
            try:
                size = path.stat().st_size
            except OSError:
                continue
            if kept < self.disk_keep and total + size <= self.disk_budget:
                kept, total = kept + 1, total + size
            else:
                with contextlib.suppress(OSError):
                    path.unlink()


def _map_pages(address: int, nbytes: int) -> None:
    """Write every page of a spare so the system maps them, at the lowest priority where the system allows a
    thread its own: a next prompt read meanwhile keeps the processor."""
    with contextlib.suppress(OSError, AttributeError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
    ctypes.memset(address, 0, nbytes)


def _write_file(path: Path, tokens: Sequence[int], data: Any) -> None:
    with path.open("wb") as out:
        out.write(_HEADER.pack(_MAGIC, len(tokens), len(data)))
        out.write(struct.pack(f"<{len(tokens)}i", *tokens))
        out.write(memoryview(data))


def _digest(conversation: str) -> str:
    return hashlib.sha256(conversation.encode("utf-8")).hexdigest()[:16]
