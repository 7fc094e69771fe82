"""llama.cpp's KV cache under a loaded ``llama_cpp.Llama``: copying one conversation's state out and back in,
and the check that keeps llama-cpp-python from reusing a prefix a sliding-window cache no longer holds. Only
the engine worker imports this.

Why the sequence calls and not ``Llama.save_state``: ``save_state`` copies the whole context (its output
buffer too) into Python bytes twice over, ``load_state`` copies it back, and both copy llama-cpp-python's
logits array (``n_batch`` x vocabulary: 100 MB for SmolLM2, 512 MB for Gemma 3, before the worker shrank it to
one row). Measured at 2,500 tokens with the worker's own load (2-core machine, quiet): SmolLM2 135M
``save_state`` 101 ms and ``load_state`` 43 ms against 36 ms and 6 ms for ``llama_state_seq_get_data`` /
``set_data`` of sequence 0 (58 MB either way); Gemma 3 270M 45 ms and 7 ms (24 MB) against 2 ms and 2 ms
(16 MB: a sequence's state holds only the sliding window's cells of those layers). With the full logits array,
``save_state`` took 0.24 s and 1.2 s and ``load_state`` 0.48 s and 2.3 s.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from app.engine.saved_states import SavedState

SEQUENCE = 0  # llama-cpp-python decodes everything as sequence 0


def identity(llm: Any, model_path: str) -> str:
    """What a saved state is valid for: the same model file and the same cache layout (context length,
    cache types, flash attention's V layout, the sliding-window cache, the micro-batch that sizes it, the
    layers on the GPU) under the same llama.cpp. Threads do not matter."""
    import llama_cpp

    path = Path(model_path).resolve()
    try:
        stat = path.stat()
        file: tuple[int, int] | None = (stat.st_size, stat.st_mtime_ns)
    except OSError:  # gone while loaded (the mapping keeps it readable): this load's states stay valid
        file = None
    context = llm.context_params
    facts = {
        "path": str(path), "file": file, "n_ctx": int(llm.n_ctx()),
        "llama_cpp": llama_cpp.__version__, "gpu_layers": int(llm.model_params.n_gpu_layers),
        **{name: _plain(getattr(context, name, None)) for name in (
            "type_k", "type_v", "flash_attn_type", "swa_full", "n_ubatch", "n_seq_max", "kv_unified",
            "offload_kqv")},
    }
    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode("utf-8")).hexdigest()[:16]


def cached_tokens(llm: Any) -> list[int]:
    return [int(t) for t in llm.input_ids[:llm.n_tokens]]


def truncate(llm: Any, n_tokens: int) -> bool:
    """Keep the first ``n_tokens`` of the cache; ``False`` where the cache cannot drop a tail (recurrent
    models), and then it is left whole."""
    import llama_cpp

    if n_tokens >= llm.n_tokens:
        return True
    if not llama_cpp.llama_memory_seq_rm(llama_cpp.llama_get_memory(llm.ctx), SEQUENCE, n_tokens, -1):
        return False
    llm.n_tokens = n_tokens
    llm._requires_eval = True
    return True


def state_size(llm: Any) -> int:
    import llama_cpp

    return int(llama_cpp.llama_state_seq_get_size(llm.ctx, SEQUENCE))


def capture(llm: Any, size: int, into: Any = None) -> Any | None:
    """A copy of the cache's state (``size`` from ``state_size``), in ``into`` (a ctypes buffer of ``size``
    bytes) or new memory, or ``None`` if llama.cpp wrote another amount."""
    import llama_cpp

    data = (ctypes.c_uint8 * size)() if into is None else into
    written = llama_cpp.llama_state_seq_get_data(llm.ctx, data, size, SEQUENCE)
    return data if written == size else None


def save_file(llm: Any, path: Path) -> bool:
    """Write the cache's state and tokens to ``path`` without a copy in memory (llama.cpp writes it out
    tensor by tensor)."""
    import llama_cpp

    tokens = llm.input_ids[:llm.n_tokens].astype(np.intc)
    pointer = tokens.ctypes.data_as(ctypes.POINTER(llama_cpp.llama_token))
    return bool(llama_cpp.llama_state_seq_save_file(llm.ctx, str(path).encode("utf-8"), SEQUENCE, pointer,
                                                    len(tokens)))


def restore(llm: Any, state: SavedState) -> bool:
    """Replace the cache with a saved state. On any failure the cache is left empty (the prompt is then read
    in full) and ``False`` returned."""
    import llama_cpp

    memory = llama_cpp.llama_get_memory(llm.ctx)
    llama_cpp.llama_memory_clear(memory, False)
    n_ctx = int(llm.n_ctx())
    if state.data is not None:
        tokens = state.tokens
        data = state.data if isinstance(state.data, ctypes.Array) else \
            (ctypes.c_uint8 * len(state.data)).from_buffer(state.data)
        ok = len(tokens) <= n_ctx and llama_cpp.llama_state_seq_set_data(llm.ctx, data, len(data), SEQUENCE) > 0
    elif state.path is not None:
        buffer = (llama_cpp.llama_token * n_ctx)()
        count = ctypes.c_size_t(0)
        ok = llama_cpp.llama_state_seq_load_file(llm.ctx, str(state.path).encode("utf-8"), SEQUENCE, buffer, n_ctx,
                                                 ctypes.byref(count)) > 0
        tokens = list(buffer[:count.value]) if ok else []
    else:
        ok, tokens = False, []
    # The cache must end where its tokens do, or the tokens do not describe it.
    ok = ok and bool(tokens) and llama_cpp.llama_memory_seq_pos_max(memory, SEQUENCE) == len(tokens) - 1
    if not ok:
        clear(llm)
        return False
    llm.input_ids[:len(tokens)] = tokens
    llm.n_tokens = len(tokens)
    llm._requires_eval = True  # the logits are not those of the last token: it is decoded again
    return True


def clear(llm: Any) -> None:
    import llama_cpp

    llm.reset()
    llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(llm.ctx), False)


def common_prefix(cached: Sequence[int] | np.ndarray, tokens: Sequence[int]) -> int:
    """How many leading tokens two sequences share."""
    n = min(len(cached), len(tokens))
    if n == 0:
        return 0
    differ = np.flatnonzero(np.asarray(cached[:n], dtype=np.int64) != np.asarray(tokens[:n], dtype=np.int64))
    return int(differ[0]) if len(differ) else n


def window_limited(llm: Any) -> bool:
    """Whether the model has sliding-window layers whose cache holds only the window (``swa_full=False``)."""
    import llama_cpp

    return int(llama_cpp.llama_model_n_swa(llm.model)) > 0 and not bool(llm.context_params.swa_full)


def window_holds(llm: Any, n_past: int) -> bool:
    """Whether decoding can continue at position ``n_past`` with what the cache holds.

    A sliding-window model loaded with a small window cache (``swa_full=False``, as Hearth loads them) keeps
    only the last window of positions for its window layers, and a restored state only the last window before
    its end. Removing the tail after ``n_past`` always succeeds, so llama-cpp-python's ``kv_cache_seq_rm``
    check does not catch it: decoding at ``n_past`` would silently attend to a window with cells missing.
    This is llama-server's rule: the cache must still hold position ``n_past - n_swa``. Measured on Gemma 3
    270M (a 512-token window, 1,024 cells kept): continuing a restored state 100 to 600 tokens before its end
    moved the last logits by up to 0.9 to 6.3, against 0.7 to 0.9 where the cells were all there (a different
    cell order alone), and llama-cpp-python reused an 816-token prefix with the window's cells gone.
    """
    import llama_cpp

    n_swa = int(llama_cpp.llama_model_n_swa(llm.model))
    if n_swa <= 0 or n_past <= 0:
        return True
    oldest = int(llama_cpp.llama_memory_seq_pos_min(llama_cpp.llama_get_memory(llm.ctx), SEQUENCE))
    return oldest <= max(0, n_past - n_swa)


class ReuseGuard:
    """While attached, a prompt whose shared prefix the cache can no longer continue from is read in full
    instead (``window_holds``).

    ``Llama.generate`` keeps the longest prefix the cached tokens share with the prompt (one token less when
    the whole prompt is cached, to get fresh logits) and decodes the rest. This wraps it on the instance to
    check that prefix first and, when it fails, empty the token list so that ``generate`` starts over.
    """

    def __init__(self, llm: Any) -> None:
        self.llm = llm
        self.read_all = False  # the check failed: the whole prompt was read again
        self._generate = llm.generate
        llm.generate = self._checked_generate

    def _checked_generate(self, tokens: Sequence[int], *args: Any, **kwargs: Any) -> Any:
        llm = self.llm
        if llm.n_tokens:
            shared = common_prefix(llm.input_ids[:llm.n_tokens], tokens)
            keep = shared - 1 if shared == len(tokens) else shared
            if keep > 0 and not window_holds(llm, keep):
                self.read_all = True
                llm.n_tokens = 0
        return self._generate(tokens, *args, **kwargs)

    def detach(self) -> None:
        with contextlib.suppress(AttributeError):
            del self.llm.generate


def _plain(value: Any) -> Any:
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    return str(value)
