"""Ask the installed llama.cpp how much memory a model will need, without allocating it.

llama.cpp sizes every buffer of a load when ``no_alloc`` is set (and the file is not memory-mapped), and it
logs the sizes. That is exact for this build and this machine, and a model whose architecture this build
cannot run fails here, before any download or real load. It can also abort the process on some inputs,
so it runs in a short-lived subprocess (started with ``spawn``, like the engine worker, so it also works
in a frozen app). The weights are not in the log during a dry run (the buffers print 0): they come from
``llama_model_size`` and the tensor table.
"""

from __future__ import annotations

import logging
import multiprocessing
import tempfile
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from app.engine.llama_log import BufferReport, capture_llama_log, parse_log, send_output_to
from app.engine.load_plan import KV_TYPES, LoadPlan

log = logging.getLogger(__name__)

TIMEOUT_S = 120.0


@dataclass(frozen=True)
class DryRun:
    ok: bool
    buffers: BufferReport
    weights_bytes: int = 0
    message: str = ""  # why it failed, for people
    log_text: str = ""


def dry_run(path: Path, plan: LoadPlan, *, timeout: float = TIMEOUT_S) -> DryRun:
    """Size ``path`` under ``plan`` in a throw-away process; never raises for a bad model.

    The child's standard output and error go to a file, not to this process's: when llama.cpp aborts it prints its
    message there, and ggml a backtrace through gdb where gdb is installed, which broke ``hearth inspect --json``.
    What it printed goes to the log; people get one sentence."""
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe(duplex=False)
    with tempfile.TemporaryDirectory(prefix="hearth-dry-run-") as scratch:
        output = Path(scratch) / "output.txt"
        process = context.Process(target=_child, args=(child, str(path), plan.to_dict(), str(output)),
                                  name="hearth-dry-run", daemon=True)
        process.start()
        child.close()
        result: dict[str, Any] | None = None
        if parent.poll(timeout):
            try:
                result = parent.recv()
            except (EOFError, OSError):
                result = None
        process.join(5)
        if process.is_alive():
            process.kill()
            process.join(5)
        parent.close()
        printed = _tail(output)
    if result is None:
        log.warning("dry run of %s ended without an answer (exit code %s); it printed:\n%s", path,
                    process.exitcode, printed or "(nothing)")
        return DryRun(ok=False, buffers=BufferReport(), message="llama.cpp stopped while reading this model.")
    if printed:
        log.debug("dry run of %s printed:\n%s", path, printed)
    buffers = parse_log(result["log"])
    if not result["ok"]:
        if result["weights"] and buffers.settings_errors:
            message = (f"llama.cpp cannot use these settings with this model ({buffers.settings_errors[-1]}). "
                       "Try another KV cache type or context length.")
        else:
            message = "llama.cpp does not know how to run this model" + (
                f" ({buffers.errors[0]})." if buffers.errors else ".")
        return DryRun(ok=False, buffers=buffers, log_text=result["log"], message=message)
    return DryRun(ok=True, buffers=buffers, weights_bytes=result["weights"], log_text=result["log"])


PRINTED_KEPT = 64 * 1024  # the end of what the child printed, for the log (a gdb backtrace is about 10 KB)


def _tail(output: Path) -> str:
    try:
        with output.open("rb") as handle:
            handle.seek(max(output.stat().st_size - PRINTED_KEPT, 0))
            return handle.read().decode("utf-8", errors="replace").strip()
    except OSError:
        return ""


def _child(conn: Connection, path: str, plan_data: dict[str, Any], output: str) -> None:
    send_output_to(output)
    from app.engine.backends import prepare_llama

    prepare_llama()
    import llama_cpp.llama_cpp as native

    plan = LoadPlan.from_dict(plan_data)
    outcome: dict[str, Any] = {"ok": False, "weights": 0}
    with capture_llama_log() as lines:
        native.llama_backend_init()
        params = native.llama_model_default_params()
        params.no_alloc = True
        params.load_mode = native.LLAMA_LOAD_MODE_NONE
        params.n_gpu_layers = plan.gpu_layers
        params.use_extra_bufts = plan.extra_buffers
        model = native.llama_model_load_from_file(path.encode("utf-8"), params)
        if model:
            outcome["weights"] = int(native.llama_model_size(model))
            cparams = native.llama_context_default_params()
            cparams.n_ctx = plan.context_length
            cparams.n_batch = plan.batch
            cparams.n_ubatch = plan.ubatch
            # AUTO lets llama.cpp say whether flash attention works on this device; the report carries its answer.
            cparams.flash_attn_type = (native.LLAMA_FLASH_ATTN_TYPE_AUTO if plan.flash_attention
                                       else native.LLAMA_FLASH_ATTN_TYPE_DISABLED)
            cparams.swa_full = plan.swa_full
            cparams.n_outputs_max = plan.max_outputs
            cparams.type_k = cparams.type_v = KV_TYPES[plan.kv_type]
            ctx = native.llama_init_from_model(model, cparams)
            if ctx:
                outcome["ok"] = True
                native.llama_free(ctx)
            native.llama_model_free(model)
    outcome["log"] = "".join(lines)
    conn.send(outcome)
    conn.close()
