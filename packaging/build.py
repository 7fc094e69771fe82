"""Builds Hearth's installer for the operating system it runs on, from the working tree: one way for all three.

    python packaging/build.py            # dist/Hearth/ (dist/Hearth.app on macOS), then the installer
    python packaging/build.py --bundle   # only the bundle
    python packaging/build.py --engine build/engine   # with the portable engine (packaging/build_engine.py)

Linux: ``dist/Hearth-<version>-linux-<arch>.tar.gz`` (the bundle, the .desktop file, AppStream metadata, icons and
install.sh). macOS: ``dist/Hearth-<version>-macos-<arch>.dmg`` through ``packaging/macos/make_dmg.sh``. Windows:
``dist/Hearth-<version>-windows-x64-setup.exe`` through Inno Setup's ``iscc`` (on PATH or in its usual folder).
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DIST = ROOT / "dist"
WORK = ROOT / "build" / "pyinstaller"
ICONS = ROOT / "build" / "icons"
APP_ID = "io.hearth.Hearth"

sys.path.insert(0, str(HERE))
import icons  # noqa: E402  (beside this file; packaging/ is no package, so it cannot shadow PyPI's "packaging")


def version() -> str:
    text = (ROOT / "app" / "__init__.py").read_text(encoding="utf-8")
    found = re.search(r'^__version__ = "([^"]+)"', text, re.MULTILINE)
    if found is None:
        raise SystemExit("no __version__ in app/__init__.py")
    return found.group(1)


def arch() -> str:
    machine = platform.machine().lower()
    return {"amd64": "x86_64", "x64": "x86_64", "aarch64": "arm64"}.get(machine, machine)


def folder_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def build_bundle(engine: Path | None = None) -> Path:
    """``engine``: a folder holding the portable llama-cpp-python, bundled instead of the one beside Hearth."""
    icons.render(ICONS)
    for old in (DIST / "Hearth", DIST / "Hearth.app"):
        shutil.rmtree(old, ignore_errors=True)  # PyInstaller writes over a folder, leaving files it no longer makes
    started = time.monotonic()
    env = dict(os.environ)
    if engine is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(engine.resolve()), *filter(None, [env.get("PYTHONPATH")])])
        print(f"engine: {engine}")
    subprocess.run([sys.executable, "-m", "PyInstaller", "--noconfirm", "--log-level", "WARN",
                    "--distpath", str(DIST), "--workpath", str(WORK), str(HERE / "hearth.spec")],
                   check=True, cwd=ROOT, env=env)
    bundle = DIST / "Hearth"
    print(f"bundle: {bundle} ({folder_size(bundle) / 1e6:.0f} MB) in {time.monotonic() - started:.0f} s")
    return bundle


def linux_tarball(bundle: Path, ver: str) -> Path:
    """The bundle beside what a desktop needs to list it; ``install.sh`` puts each piece in its place."""
    top = f"Hearth-{ver}"
    target = DIST / f"Hearth-{ver}-linux-{arch()}.tar.gz"
    staging = ROOT / "build" / "linux" / top
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "icons").mkdir(parents=True)
    for size in (48, 64, 128, 256, 512):
        shutil.copy2(icons.png_path(ICONS, size), staging / "icons" / f"hearth-{size}.png")
    shutil.copy2(ROOT / "resources" / "icons" / "hearth.svg", staging / "icons" / "hearth.svg")
    shutil.copy2(HERE / "linux" / f"{APP_ID}.desktop", staging / f"{APP_ID}.desktop")
    metainfo = (HERE / "linux" / f"{APP_ID}.metainfo.xml").read_text(encoding="utf-8")
    today = datetime.now(UTC).date().isoformat()
    (staging / f"{APP_ID}.metainfo.xml").write_text(
        metainfo.replace("@VERSION@", ver).replace("@DATE@", today), encoding="utf-8")
    shutil.copy2(HERE / "linux" / "install.sh", staging / "install.sh")
    (staging / "install.sh").chmod(0o755)
    started = time.monotonic()
    with tarfile.open(target, "w:gz", compresslevel=6) as tar:
        tar.add(bundle, arcname=f"{top}/Hearth", filter=_unowned)
        for item in sorted(staging.iterdir()):
            tar.add(item, arcname=f"{top}/{item.name}", filter=_unowned)
    print(f"tarball: {target} ({target.stat().st_size / 1e6:.0f} MB) in {time.monotonic() - started:.0f} s")
    return target


def _unowned(info: tarfile.TarInfo) -> tarfile.TarInfo:
    """Files belong to whoever unpacks them, not to the build machine's account (which root would restore)."""
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def macos_dmg(ver: str) -> Path:
    target = DIST / f"Hearth-{ver}-macos-{arch()}.dmg"
    subprocess.run(["bash", str(HERE / "macos" / "make_dmg.sh"), str(DIST / "Hearth.app"), str(target)], check=True)
    return target


def windows_setup(ver: str) -> Path:
    iscc = shutil.which("iscc") or shutil.which("ISCC")
    if iscc is None:
        default = Path(os.environ.get("PROGRAMFILES(X86)", r"C:\Program Files (x86)")) / "Inno Setup 6" / "ISCC.exe"
        if not default.is_file():
            raise SystemExit("Inno Setup's iscc was not found: install Inno Setup 6 (choco install innosetup)")
        iscc = str(default)
    name = f"Hearth-{ver}-windows-x64-setup"
    numeric = re.match(r"\d+(\.\d+){0,3}", ver)  # Windows' file version takes numbers only: 0.2.0rc1 -> 0.2.0
    subprocess.run([iscc, f"/DAppVersion={ver}", f"/DNumericVersion={numeric.group(0) if numeric else '0.0.0'}",
                    f"/DBundleDir={DIST / 'Hearth'}", f"/DIconFile={ICONS / 'hearth.ico'}", f"/O{DIST}", f"/F{name}",
                    str(HERE / "windows" / "hearth.iss")], check=True)
    return DIST / f"{name}.exe"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build Hearth's bundle and installer for this system.")
    parser.add_argument("--bundle", action="store_true", help="build only the bundle, not the installer")
    parser.add_argument("--version", action="store_true", help="print the version that would be built, and stop")
    parser.add_argument("--engine", type=Path, help="bundle the portable engine installed in this folder")
    args = parser.parse_args(argv)
    ver = version()
    if args.version:
        print(ver)
        return 0
    bundle = build_bundle(args.engine)
    if args.bundle:
        return 0
    if sys.platform == "darwin":
        print(f"disk image: {macos_dmg(ver)}")
    elif sys.platform == "win32":
        print(f"installer: {windows_setup(ver)}")
    else:
        linux_tarball(bundle, ver)
    return 0


if __name__ == "__main__":
    sys.exit(main())
