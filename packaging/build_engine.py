"""Builds the portable engine: llama-cpp-python with llama.cpp's backends as modules, so that one build runs well on
every computer it is installed on.

    python packaging/build_engine.py [--install build/engine] [--no-vulkan] [--cuda] [--print-key]

- ``GGML_BACKEND_DL`` with ``GGML_CPU_ALL_VARIANTS`` and ``GGML_NATIVE=OFF``: CPU code for every x86-64 level (every
  ARM level on macOS), and llama.cpp loads the best one for the processor it runs on (``app.engine.backends``).
  The quick build ``make run`` compiles is ``-march=native``: it may crash on an older processor, fine for
  development only.
- GPU backends as modules beside it: Vulkan on Linux and Windows (AMD, Intel and NVIDIA cards), Metal on macOS,
  CUDA where asked for (``--cuda``) and its toolkit is installed.

The wheel is kept in a cache of its own (``HEARTH_ENGINE_CACHE``, else the user's cache folder), under a key made of
the llama-cpp-python version, the flags, this file's patches, the platform and the Python version: pip's wheel cache
does not notice a change of ``CMAKE_ARGS`` and would hand back a build made with other flags. A second run with the
same key builds nothing (the first takes about half an hour on 2 cores, most of it Vulkan's shaders). ``--install``
puts the engine in a folder of its own (``pip install --target``), which ``HEARTH_ENGINE`` points a process at.

The version is the llama-cpp-python installed beside Hearth, so both builds run the same llama.cpp.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PACKAGE = "llama-cpp-python"

# Debian 12's Vulkan headers (1.3.239) predate VK_EXT_layer_settings (1.3.261), which llama.cpp's instance set-up
# uses without the header-version guard it puts around its other newer Vulkan calls. The same guard here: with
# older headers the instance is made without the validation layer's settings (used only when debugging ggml).
# Newer headers (the Vulkan SDK the release runners install) compile llama.cpp's own code unchanged.
PATCHES = {
    "vendor/llama.cpp/ggml/src/ggml-vulkan/ggml-vulkan.cpp": [
        ("    VkBool32 enable_best_practice = layer_settings;\n",
         "#if VK_HEADER_VERSION >= 261\n    VkBool32 enable_best_practice = layer_settings;\n"),
        ("    vk::InstanceCreateInfo instance_create_info(vk::InstanceCreateFlags{}, &app_info, layers, extensions, "
         "&layer_setting_info);\n",
         "    vk::InstanceCreateInfo instance_create_info(vk::InstanceCreateFlags{}, &app_info, layers, extensions, "
         "&layer_setting_info);\n#else\n    vk::InstanceCreateInfo instance_create_info(vk::InstanceCreateFlags{}, "
         "&app_info, layers, extensions);\n#endif\n"),
    ],
}


def cmake_flags(vulkan: bool, cuda: bool) -> list[str]:
    flags = ["-DGGML_BACKEND_DL=ON", "-DGGML_CPU_ALL_VARIANTS=ON", "-DGGML_NATIVE=OFF"]
    if sys.platform == "darwin":
        flags.append("-DGGML_METAL=ON")
    elif vulkan:
        flags.append("-DGGML_VULKAN=ON")
    if cuda and sys.platform != "darwin":
        flags.append("-DGGML_CUDA=ON")
    return flags


def cache_key(version: str, flags: list[str]) -> str:
    identity = {"package": PACKAGE, "version": version, "flags": flags, "patches": PATCHES,
                "platform": f"{sys.platform}-{platform.machine()}", "python": sys.version_info[:2]}
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


def cache_folder() -> Path:
    named = os.environ.get("HEARTH_ENGINE_CACHE")
    if named:
        return Path(named)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("hearth-engine", appauthor=False))


def cached_wheel(folder: Path) -> Path | None:
    wheels = sorted(folder.glob("*.whl"))
    return wheels[0] if wheels else None


def build_wheel(version: str, flags: list[str], target: Path) -> Path:
    """Downloads the source, patches it, compiles it into a wheel in ``target``."""
    with tempfile.TemporaryDirectory(prefix="hearth-engine-") as tmp:
        work = Path(tmp)
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
                        f"{PACKAGE}=={version}", "-d", str(work)], check=True)
        archive = next(work.glob("*.tar.gz"))
        with tarfile.open(archive) as tar:
            tar.extractall(work, filter="data")
        source = next(path for path in work.iterdir() if path.is_dir())
        apply_patches(source)
        env = {**os.environ, "CMAKE_ARGS": " ".join(flags),
               "CMAKE_BUILD_PARALLEL_LEVEL": os.environ.get("CMAKE_BUILD_PARALLEL_LEVEL", str(os.cpu_count() or 2))}
        built = work / "wheel"
        subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-cache-dir", str(source),
                        "-w", str(built)], check=True, env=env)
        wheel = next(built.glob("*.whl"))
        target.mkdir(parents=True, exist_ok=True)
        return Path(shutil.copy2(wheel, target / wheel.name))


def apply_patches(source: Path) -> None:
    for relative, changes in PATCHES.items():
        path = source / relative
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8")
        for old, new in changes:
            if old in text and new not in text:
                text = text.replace(old, new, 1)
        path.write_text(text, encoding="utf-8")


def install(wheel: Path, folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(folder),
                    str(wheel)], check=True)
    gather_modules(folder)


def gather_modules(folder: Path) -> None:
    """ggml installs its backend modules (``libggml-cpu-haswell.so``, ``ggml-vulkan.dll``) into the wheel's ``bin/``,
    beside upstream's headers and CMake files, not into the package: they are moved into ``llama_cpp/lib``, beside
    the libraries they need, where ``app.engine.backends`` loads them from; the rest of that tree is dropped."""
    lib = folder / "llama_cpp" / "lib"
    for module in sorted((folder / "bin").glob("*ggml-*")):
        if not (lib / module.name).exists():
            shutil.move(module, lib / module.name)
    for tree in ("bin", "include", "lib"):
        shutil.rmtree(folder / tree, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the portable engine (llama.cpp with its backends as modules).")
    parser.add_argument("--install", type=Path, help="install the engine into this folder (for HEARTH_ENGINE)")
    parser.add_argument("--no-vulkan", action="store_true", help="leave the Vulkan backend out")
    parser.add_argument("--cuda", action="store_true", help="add the CUDA backend (its toolkit must be installed)")
    parser.add_argument("--print-key", action="store_true", help="print the cache key and stop")
    args = parser.parse_args(argv)
    version = metadata.version(PACKAGE)
    vulkan = not args.no_vulkan and sys.platform != "darwin"
    if vulkan and shutil.which("glslc") is None:
        print("Vulkan's shader compiler (glslc) is not installed: the engine is built without the Vulkan backend "
              "(Debian: apt-get install libvulkan-dev glslc spirv-headers; elsewhere the Vulkan SDK)", flush=True)
        vulkan = False
    flags = cmake_flags(vulkan=vulkan, cuda=args.cuda)
    key = cache_key(version, flags)
    if args.print_key:
        print(key)
        return 0
    folder = cache_folder() / key
    wheel = cached_wheel(folder)
    if wheel is None:
        print(f"building the portable engine ({PACKAGE} {version}: {' '.join(flags)}); this takes a while",
              flush=True)
        started = time.monotonic()
        wheel = build_wheel(version, flags, folder)
        print(f"built {wheel.name} ({wheel.stat().st_size / 1e6:.0f} MB) in {time.monotonic() - started:.0f} s")
    else:
        print(f"portable engine: {wheel} (cached)")
    if args.install is not None:
        install(wheel, args.install)
        print(f"installed in {args.install}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
