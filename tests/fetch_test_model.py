"""Make sure the tiny test model is present before the suite runs.

CI and the team's machines have it at ../shared/models/stories260K.gguf. A contributor's own clone may
not: then it is fetched once from the Hub (ggml-org/models) into tests/.cache and its SHA-256 is checked.
The path is printed so `make test` shows which copy the tests use.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

SHA256 = "270cba1bd5109f42d03350f60406024560464db173c0e387d91f0426d3bd256d"
ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "models" / "stories260K.gguf"
CACHE = ROOT / "tests" / ".cache" / "stories260K.gguf"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def locate() -> Path | None:
    for candidate in (SHARED, CACHE):
        if candidate.is_file() and sha256(candidate) == SHA256:
            return candidate
    return None


def fetch() -> Path:
    from huggingface_hub import hf_hub_download

    CACHE.parent.mkdir(parents=True, exist_ok=True)
    downloaded = Path(hf_hub_download("ggml-org/models", "tinyllamas/stories260K.gguf",
                                      local_dir=CACHE.parent / "hub"))
    if sha256(downloaded) != SHA256:
        raise SystemExit(f"the downloaded test model has the wrong SHA-256: {downloaded}")
    downloaded.replace(CACHE)
    return CACHE


def main() -> int:
    path = locate() or fetch()
    print(f"test model: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
