"""``hearth hw``: what this computer can run, in plain words or as JSON."""

from __future__ import annotations

import argparse
import json
from typing import Any

from app.paths import Paths

COMMANDS = ("hw",)


def add_commands(commands: Any) -> None:
    hw = commands.add_parser("hw", help="what this computer can run: memory, processor, graphics")
    hw.add_argument("--json", action="store_true")


def run(args: argparse.Namespace, paths: Paths) -> int:
    from app.hardware.description import describe
    from app.hardware.detect import detect

    machine = detect(cache_dir=paths.cache_dir, measure=True)
    if args.json:
        print(json.dumps(machine.to_dict(), indent=2))
    else:
        print("\n".join(describe(machine)))
    return 0
