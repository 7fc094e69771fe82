"""llama.cpp's own account of the memory it allocates, read from its log lines.

llama.cpp has no API for its buffer sizes, but it logs every one of them ("CPU_Mapped model buffer size =
465.03 MiB", "llama_kv_cache: size = 45.00 MiB ...", "CPU compute buffer size = 99.38 MiB"). Both the
engine worker (after a real load) and the dry run (before one) capture the log during the load and parse it
here. Lines are matched by their ending, not their prefix: the function names in front change between
llama.cpp versions. Sizes are printed to 0.01 MiB, which is the precision of everything read here.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

MIB = 1024 * 1024

_BUFFER = re.compile(
    r"(?P<buffer>[\w.\-]+)\s+(?P<kind>model|KV|RS|compute|output) buffer size\s*=\s*(?P<mib>[\d.]+) MiB")
_KV_SIZE = re.compile(
    r"llama_kv_cache\w*: size =\s*(?P<mib>[\d.]+) MiB\s*\(\s*(?P<cells>\d+) cells,\s*(?P<layers>\d+) layers")
_RS_SIZE = re.compile(r"llama_memory_recurrent\w*: size =\s*(?P<mib>[\d.]+) MiB")
_FLASH = re.compile(r"(?:Flash Attention (?:was auto, set to )?|llama_context: flash_attn\s*=\s*)"
                    r"(?P<state>enabled|disabled)")
_N_CTX = re.compile(r"llama_context: n_ctx\s*=\s*(?P<n>\d+)")
_CONTEXT_START = "llama_context: constructing"
_ERROR = re.compile(r"(error loading model|unknown model architecture|failed to load model)[^\n]*", re.IGNORECASE)
_SETTINGS_ERROR = re.compile(r"llama_init_from_model: (?P<text>.*(does not|not supported|requires|failed|invalid).*)")


def send_output_to(path: str) -> None:
    """Point this process's standard output and error (file descriptors 1 and 2, inherited by whatever it starts)
    at ``path``, appending: what llama.cpp and the C runtime print there (an abort's message, and the backtrace ggml
    prints through gdb when gdb is installed, 60-70 lines) then lands in a file instead of the terminal or the
    middle of ``hearth inspect --json``."""
    sys.stdout.flush()
    sys.stderr.flush()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.dup2(fd, 1)
        os.dup2(fd, 2)
    finally:
        os.close(fd)


def _bytes(mib: str) -> int:
    return round(float(mib) * MIB)


@dataclass
class BufferReport:
    """Buffers by kind and buffer type (e.g. ``model["CPU_Mapped"]``), in bytes."""

    model: dict[str, int] = field(default_factory=dict)
    kv: dict[str, int] = field(default_factory=dict)
    recurrent: dict[str, int] = field(default_factory=dict)
    compute: dict[str, int] = field(default_factory=dict)
    output: dict[str, int] = field(default_factory=dict)
    kv_total: int = 0  # from the "size =" summary lines, also printed in a dry run
    kv_cells: list[int] = field(default_factory=list)
    recurrent_total: int = 0
    flash_attention: bool | None = None
    context_length: int | None = None
    errors: list[str] = field(default_factory=list)
    settings_errors: list[str] = field(default_factory=list)  # the model loads, but not with these settings

    @property
    def compute_total(self) -> int:
        return sum(self.compute.values())

    @property
    def output_total(self) -> int:
        return sum(self.output.values())

    @property
    def model_total(self) -> int:
        return sum(self.model.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": dict(self.model), "kv": dict(self.kv), "recurrent": dict(self.recurrent),
            "compute": dict(self.compute), "output": dict(self.output), "kv_total": self.kv_total,
            "kv_cells": list(self.kv_cells), "recurrent_total": self.recurrent_total,
            "flash_attention": self.flash_attention, "context_length": self.context_length,
            "errors": list(self.errors), "settings_errors": list(self.settings_errors),
        }


def model_lines(text: str) -> str:
    """A load's log up to where its context is made: what stays true when only the context is made again."""
    start = text.find(_CONTEXT_START)
    return text if start < 0 else text[:start]


def parse_log(text: str) -> BufferReport:
    report = BufferReport()
    for line in text.splitlines():
        if match := _BUFFER.search(line):
            table = {"model": report.model, "KV": report.kv, "RS": report.recurrent, "compute": report.compute,
                     "output": report.output}[match["kind"]]
            table[match["buffer"]] = table.get(match["buffer"], 0) + _bytes(match["mib"])
        elif match := _KV_SIZE.search(line):
            report.kv_total += _bytes(match["mib"])
            report.kv_cells.append(int(match["cells"]))
        elif match := _RS_SIZE.search(line):
            report.recurrent_total += _bytes(match["mib"])
        elif match := _FLASH.search(line):
            report.flash_attention = match["state"] == "enabled"
        elif match := _N_CTX.search(line):
            report.context_length = int(match["n"])
        elif match := _ERROR.search(line):
            report.errors.append(match.group(0).strip())
        elif (match := _SETTINGS_ERROR.search(line)) and not line.rstrip().endswith("flash_attn"):
            report.settings_errors.append(match["text"].strip())
    return report


@contextlib.contextmanager
def capture_llama_log() -> Iterator[list[str]]:
    """Collect llama.cpp's log lines for the duration of the block, then give the log back to
    llama-cpp-python's own handler. Only one block at a time per process (llama.cpp has one log hook)."""
    import llama_cpp
    import llama_cpp._logger as python_logger

    lines: list[str] = []

    def on_line(_level: int, text: bytes, _data: Any) -> None:
        lines.append(text.decode("utf-8", "replace"))

    collect = llama_cpp.llama_log_callback(on_line)  # kept referenced while llama.cpp may call it

    llama_cpp.llama_log_set(collect, ctypes.c_void_p(0))
    try:
        yield lines
    finally:
        llama_cpp.llama_log_set(python_logger.llama_log_callback, ctypes.c_void_p(0))
