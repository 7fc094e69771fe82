"""Proves that the bundle runs on a processor older than the one it was built on: the frozen self-test again, with
the AVX-512 CPU code hidden from llama.cpp, must pass on the best code that is left (AVX2 here).

    python packaging/check_cpu_code.py dist/Hearth/Hearth --model MODEL.gguf

The modules are moved aside for the run and put back after it, whatever happens. Nothing to check for a bundle
without CPU variants (a quick development build), which says so.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

# ggml's x86-64 CPU code that uses AVX-512.
AVX512 = ("skylakex", "cannonlake", "cascadelake", "icelake", "cooperlake", "zen4", "sapphirerapids")
REPORTED = re.compile(r"with (\S+) CPU code")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("app", type=Path, help="the bundle's executable (dist/Hearth/Hearth)")
    parser.add_argument("--model", type=Path, required=True)
    args = parser.parse_args(argv)
    libraries = next(args.app.resolve().parent.rglob("llama_cpp/lib"), None)
    hidden = [path for name in AVX512 for path in (libraries.glob(f"*ggml-cpu-{name}.*") if libraries else ())]
    if not hidden:
        print("no AVX-512 CPU code in this bundle: nothing to hide")
        return 0
    with tempfile.TemporaryDirectory(prefix="hearth-hidden-") as aside:
        moved = [Path(shutil.move(path, Path(aside) / path.name)) for path in hidden]
        try:
            done = subprocess.run([str(args.app), "--self-test", "--model", str(args.model)], capture_output=True,
                                  text=True, timeout=900)
        finally:
            for path in moved:
                shutil.move(path, libraries / path.name)  # type: ignore[operator]
    print(done.stdout, end="")
    found = REPORTED.search(done.stdout)
    if done.returncode != 0 or found is None or found.group(1) in AVX512:
        print(f"FAIL the bundle without its AVX-512 CPU code: exit {done.returncode}, CPU code "
              f"{found.group(1) if found else 'not reported'}\n{done.stderr[-2000:]}", file=sys.stderr)
        return 1
    print(f"ok   without AVX-512 code the bundle runs on its {found.group(1)} CPU code")
    return 0


if __name__ == "__main__":
    sys.exit(main())
