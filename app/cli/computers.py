"""``hearth computers``: the other computers whose servers Hearth may use (as Models → Other computers… in the
window). Their models are then named ``MODEL@COMPUTER`` by ``hearth chat``, the task commands and ``hearth compare``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from app.paths import Paths

COMMANDS = ("computers",)


def add_commands(commands: Any) -> None:
    computers = commands.add_parser("computers", help="other computers whose models Hearth may use")
    sub = computers.add_subparsers(dest="computers_command", required=True)
    add = sub.add_parser("add", help="add a server that speaks the OpenAI API (checked first)")
    add.add_argument("url", help="its address, as http://study-pc:8080")
    add.add_argument("--name", default="", help="the name Hearth shows for it (default: its host name)")
    add.add_argument("--api-key-stdin", action="store_true",
                     help="read its API key from the first line of standard input (kept in the password store)")
    add.add_argument("--context", type=int, default=0,
                     help="the context length its models run with, where the server does not say")
    sub.add_parser("list", help="the computers added, with their models")
    remove = sub.add_parser("remove", help="stop using a computer (its API key is deleted)")
    remove.add_argument("computer", help="its name or address")


def run(args: argparse.Namespace, paths: Paths) -> int:
    from app.cli.loading import record_network
    from app.errors import HearthError
    from app.remote.computers import DEFAULT_CONTEXT, Computers, normalized
    from app.remote.listing import list_remote_models
    from app.remote.server import RemoteServer
    from app.settings import Settings

    settings = Settings.load(paths.settings_file)
    record_network(paths, settings)
    computers = Computers(settings)
    if args.computers_command == "add":
        url = normalized(args.url)
        key = sys.stdin.readline().strip() if args.api_key_stdin else ""
        server = RemoteServer(url, key or None)
        try:
            models = server.models()
            stated = server.context_length(models[0].id) if models else None
        finally:
            server.close()
        context = 0 if stated else (args.context or DEFAULT_CONTEXT)
        computer = computers.add(url, args.name, key, context)
        settings.save(paths.settings_file)
        print(f"Added {computer.name} ({computer.base_url}) with {len(models)} model{'s' if len(models) != 1 else ''}"
              + (f"; its context: {stated:,} tokens." if stated else
                 f"; it does not say its context length, so Hearth uses {context:,} tokens."))
        for model in models:
            print(f"  {model.id}@{computer.name}")
        return 0
    if args.computers_command == "list":
        known = computers.all()
        if not known:
            print("No other computers: add one with `hearth computers add URL`.")
            return 0
        listing = list_remote_models(computers)
        for computer in known:
            print(f"{computer.name}  {computer.base_url}")
            for record in listing.models:
                if record.facts.get("computer") == computer.name:
                    forecast = str(record.facts.get("forecast") or "")
                    print(f"  {record.name}@{computer.name}" + (f"  ({forecast})" if forecast else ""))
        for problem in listing.problems:
            print(f"hearth: {problem}", file=sys.stderr)
        return 0
    wanted = args.computer.casefold()
    gone = next((c for c in computers.all() if wanted in (c.name.casefold(), c.base_url.casefold())), None)
    if gone is None:
        raise HearthError(f"No computer called “{args.computer}” (see `hearth computers list`).")
    computers.remove(gone.base_url)
    settings.save(paths.settings_file)
    print(f"Removed {gone.name}.")
    return 0
