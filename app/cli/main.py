"""The `hearth` command line: the same core as the window, from a terminal (`ui/entry.py` opens the
window when `hearth` runs without arguments).

One module per command group (``models``, ``hw``, ``inspect_model``, ``chat``, ``tasks``, ``compare``, ``history``,
``serve``, ``computers``): each adds its commands to the parser and runs them, and builds the objects it needs
(paths, settings, history, library, engine) the way ``ui/main.py`` does for the window; ``loading`` holds what
several of them share. This module only parses and dispatches, and no group imports it. Expected failures print one
plain sentence to stderr and exit 1; anything else is a bug and keeps its traceback (also in the log file).

The core never imports Qt, yet ``hearth history export --format pdf`` uses Qt's PDF writer: ``ui/entry.py`` hands it
in as ``make_pdf`` (importing Qt only when it is called), and the command finds it on its arguments.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from app import __version__
from app.cli import chat, compare, computers, history, hw, inspect_model, models, serve, tasks
from app.errors import CHATML_OFFER, HearthError
from app.paths import Paths

if TYPE_CHECKING:
    from app.export.files import PdfMaker

log = logging.getLogger(__name__)

# in the order `hearth --help` lists them
GROUPS = (models, hw, inspect_model, chat, tasks, compare, history, serve, computers)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hearth", description="Run small language models on this computer.")
    parser.add_argument("--version", action="version", version=f"Hearth {__version__}")
    commands = parser.add_subparsers(dest="command")
    for group in GROUPS:
        group.add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None, *, make_pdf: PdfMaker | None = None) -> int:
    multiprocessing.freeze_support()
    args = build_parser().parse_args(argv)
    args.make_pdf = make_pdf
    if args.command is None:
        build_parser().print_help()
        return 2
    paths = Paths.from_environment().ensure()
    from app.logs import configure_logging

    configure_logging(paths)
    group = next(group for group in GROUPS if args.command in group.COMMANDS)
    try:
        code: int = group.run(args, paths)
        return code
    except HearthError as error:
        if not str(error):  # every refusal has a sentence; one without is a bug, kept in the log
            log.error("%s without a message", type(error).__name__, exc_info=error)
        words = str(error) or ("that could not be done, for a reason Hearth did not put into words (a bug): "
                               f"details are in {paths.log_file}.")
        hint = " Run the command again with --chatml to use it." \
            if CHATML_OFFER in words and hasattr(args, "chatml") and not args.chatml else ""
        print(f"hearth: {words}{hint}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
