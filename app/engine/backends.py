"""llama.cpp's backends, for a build that carries them as modules (the portable engine: ``GGML_BACKEND_DL``, CPU code
for every x86-64 level, Vulkan): each process that runs llama.cpp loads them from the engine's own folder before any
model, and llama.cpp picks the best CPU code for this processor and every GPU it can use.

llama-cpp-python does not load them itself (it has no binding for ``ggml_backend_load_all``: abetlen/llama-cpp-python
#2069), and llama.cpp refuses to load a model while no backend is loaded; so ggml's loader is called here through
ctypes. A build with its backends built in (the quick one that ``make run`` compiles) has them registered as it
loads: nothing is loaded then, or its CPU backend would be there twice.

``HEARTH_ENGINE`` names a folder holding another llama-cpp-python (the portable engine, installed there with
``pip install --target``): each llama.cpp process puts it first on its path, so the tests can run the portable
engine beside the development one.
"""

from __future__ import annotations

import ctypes
import logging
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import psutil

log = logging.getLogger(__name__)

ENGINE_ENV = "HEARTH_ENGINE"
GPU_DEVICE_TYPES = (1, 2)  # ggml_backend_dev_type: GPU, IGPU (an integrated one)
_CPU_MODULE = re.compile(r"ggml-cpu-([\w-]+)\.(?:so|dll|dylib)$")


@dataclass(frozen=True)
class Backends:
    """What llama.cpp has loaded in this process: its backends by name ("CPU", "Vulkan"), whether they were loaded
    as modules (the portable engine), and for one with CPU variants, the one it chose for this processor."""

    names: tuple[str, ...]
    modules: bool
    cpu_variant: str | None = None
    folder: str = ""
    gpus: tuple[str, ...] = ()  # the graphics cards llama.cpp can put layers on, as their drivers name them


_prepared: Backends | None = None


def prepare_llama() -> Backends:
    """Makes llama.cpp ready in this process (once): the engine named by ``HEARTH_ENGINE`` first on the path, and
    the backends of a build that carries them as modules loaded from its folder."""
    global _prepared
    if _prepared is not None:
        return _prepared
    folder = os.environ.get(ENGINE_ENV)
    if folder and folder not in sys.path:
        sys.path.insert(0, folder)
    import llama_cpp

    lib = ggml_library()
    registries = _c_function(lib, "ggml_backend_reg_count", ctypes.c_size_t)
    modules = registries() == 0
    library_folder = Path(llama_cpp.__file__).parent / "lib"
    if modules:
        load_all = _c_function(lib, "ggml_backend_load_all_from_path", None, ctypes.c_char_p)
        load_all(os.fsencode(library_folder))
    registry = _c_function(lib, "ggml_backend_reg_get", ctypes.c_void_p, ctypes.c_size_t)
    name = _c_function(lib, "ggml_backend_reg_name", ctypes.c_char_p, ctypes.c_void_p)
    names = tuple((name(registry(i)) or b"").decode("utf-8", "replace") for i in range(registries()))
    _prepared = Backends(names, modules, _cpu_variant() if modules else None, str(library_folder), _gpus(lib))
    log.info("llama.cpp from %s: backends %s%s", library_folder, ", ".join(names) or "none",
             f" (CPU code: {_prepared.cpu_variant})" if _prepared.cpu_variant else "")
    return _prepared


def ggml_library() -> ctypes.CDLL:
    """The ggml that libllama uses, through libllama's handle (a symbol is looked up in the library, then in those it
    depends on). Not ``llama_cpp._ggml``'s: a pip install copies each library under three names (``libggml.so``,
    ``.so.0``, ``.so.0.25.3``), and that module opens another copy than the one libllama links to, a second ggml with
    a backend registry of its own: backends loaded there are not seen by llama.cpp."""
    from llama_cpp import llama_cpp as low_level

    return cast(ctypes.CDLL, low_level._lib)


def _c_function(lib: ctypes.CDLL, name: str, restype: Any, *argtypes: Any) -> Any:
    """A private prototype, so the signatures set here never change the library object llama_cpp shares."""
    return ctypes.CFUNCTYPE(restype, *argtypes)((name, lib))


def _gpus(lib: ctypes.CDLL) -> tuple[str, ...]:
    count = _c_function(lib, "ggml_backend_dev_count", ctypes.c_size_t)
    get = _c_function(lib, "ggml_backend_dev_get", ctypes.c_void_p, ctypes.c_size_t)
    kind = _c_function(lib, "ggml_backend_dev_type", ctypes.c_int, ctypes.c_void_p)
    description = _c_function(lib, "ggml_backend_dev_description", ctypes.c_char_p, ctypes.c_void_p)
    devices = [get(i) for i in range(count())]
    return tuple((description(device) or b"").decode("utf-8", "replace").strip() for device in devices
                 if kind(device) in GPU_DEVICE_TYPES)


def _cpu_variant() -> str | None:
    """Which of the CPU modules ggml loaded ("haswell", "skylakex"): ggml says so only in its log, so this reads the
    process's mapped files (psutil; not on macOS, whose builds carry one CPU code for Apple's chips)."""
    try:
        for mapped in psutil.Process().memory_maps(grouped=True):
            match = _CPU_MODULE.search(Path(mapped.path).name)
            if match:
                return match.group(1)
    except (AttributeError, NotImplementedError, psutil.Error, OSError):
        log.debug("the CPU module llama.cpp chose cannot be read here", exc_info=True)
    return None
