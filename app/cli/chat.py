"""``hearth chat``: one prompt answered, or a conversation at the terminal, with a model loaded as the window
loads it."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from app.cli.loading import load_model
from app.errors import ChatTemplateError, HearthError, WorkerCrashedError
from app.paths import Paths
from app.words import context_trimmed

COMMANDS = ("chat",)


def add_commands(commands: Any) -> None:
    chat = commands.add_parser("chat", help="chat with a model (one prompt, or interactively)")
    chat.add_argument("model", nargs="?", help="library id, name, or path to a .gguf file (default: the model "
                                               "the window last loaded, or the only one in the library)")
    chat.add_argument("--prompt", help="answer this prompt and exit (without it: interactive chat)")
    chat.add_argument("--system", help="system prompt")
    chat.add_argument("--temperature", type=float)
    chat.add_argument("--top-p", type=float)
    chat.add_argument("--max-tokens", type=int)
    chat.add_argument("--ctx", type=int, help="context length in tokens")
    chat.add_argument("--seed", type=int)
    chat.add_argument("--threads", type=int)
    chat.add_argument("--json", action="store_true", help="print one JSON object with the text and metrics")
    chat.add_argument("--chatml", action="store_true",
                      help="write the conversation in ChatML instead of the model's own chat template")


def run(args: argparse.Namespace, paths: Paths) -> int:
    from app.gguf.facts import read_facts
    from app.gguf.kind import BASE_MODEL_WARNING
    from app.settings import Settings

    if args.prompt is not None and not args.prompt.strip():
        raise HearthError("--prompt is empty: give the text to answer, or leave --prompt out to chat.")
    settings = Settings.load(paths.settings_file)
    defaults = settings.generation
    generation = dataclasses.replace(
        defaults,
        system_prompt=args.system if args.system is not None else defaults.system_prompt,
        temperature=args.temperature if args.temperature is not None else defaults.temperature,
        top_p=args.top_p if args.top_p is not None else defaults.top_p,
        max_tokens=args.max_tokens if args.max_tokens is not None else defaults.max_tokens,
        context_length=args.ctx if args.ctx is not None else defaults.context_length,
        seed=args.seed if args.seed is not None else defaults.seed,
    ).validated()
    args.ctx = generation.context_length
    engine, model = load_model(args, paths, settings)
    loaded = engine.loaded
    if model.record.is_base_model if model.record is not None else read_facts(Path(model.path)).is_base_model:
        print(BASE_MODEL_WARNING, file=sys.stderr)
    try:
        if args.prompt is None:
            return _interactive(engine, generation, model.name)
        return _one_prompt(engine, generation, args, model.name, loaded)
    finally:
        engine.shutdown()


def _options(generation: Any) -> dict[str, Any]:
    return {"max_tokens": generation.max_tokens, "temperature": generation.temperature,
            "top_p": generation.top_p, "seed": generation.seed, "samplers": generation.samplers()}


def _one_prompt(engine: Any, generation: Any, args: argparse.Namespace, name: str, loaded: Any) -> int:
    from app.chat import build_messages

    messages = build_messages(generation, [])
    messages.append({"role": "user", "content": args.prompt})

    def echo(text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()

    dropped: list[int] = []
    finished = engine.chat_blocking(messages, on_token=None if args.json else echo, on_trimmed=dropped.append,
                                    **_options(generation))
    if args.json:
        print(json.dumps({"model": name, "text": finished.text, "finish_reason": finished.finish_reason,
                          "chat_format": loaded.chat_format, "context_length": loaded.context_length,
                          "context_dropped": sum(dropped), **finished.metrics.to_dict()}, indent=2))
    else:
        _say_stopped(finished)
        m = finished.metrics
        speed = f"{m.tokens_per_s:.1f} tokens/s" if m.tokens_per_s else "–"
        print(f"\n\n[{m.completion_tokens} tokens, first after {m.ttft_s or 0:.2f}s, {speed}]", file=sys.stderr)
    return 0


def _say_stopped(finished: Any) -> None:
    """An answer the engine stopped because it was looping (``app.degenerate``) ends with a line that says so."""
    if finished.degeneration is not None:
        print(f"\n[stopped: {finished.degeneration.sentence}]", file=sys.stderr)


CHAT_HELP = """Commands:
  /help    this list
  /chatml  write the conversation in ChatML instead of the model's own chat template
  /quit    leave (Ctrl+D too)
Ctrl+C stops the answer being written; the conversation goes on."""


def _interactive(engine: Any, generation: Any, name: str) -> int:
    from app.chat import build_messages

    messages = build_messages(generation, [])
    unanswered: str | None = None  # a message the model's chat template could not write
    print(f"Chatting with {name}. Ctrl+C stops an answer; Ctrl+D (or /quit) leaves; /help lists the commands.",
          file=sys.stderr)
    while True:
        try:
            prompt = input("\nyou> ").strip()
        except EOFError:
            print(file=sys.stderr)
            return 0
        if prompt in ("/quit", "/exit"):
            return 0
        if prompt in ("/help", "/?"):
            print(CHAT_HELP, file=sys.stderr)
            continue
        if prompt == "/chatml":
            engine.use_chatml()
            print("[The conversation is written in ChatML from now on.]", file=sys.stderr)
            prompt, unanswered = unanswered or "", None
        if not prompt:
            continue
        messages.append({"role": "user", "content": prompt})
        sys.stdout.write(f"{name}> ")
        try:
            finished = engine.chat_blocking(
                messages, on_token=lambda t: (sys.stdout.write(t), sys.stdout.flush()),
                on_trimmed=_say_trimmed, **_options(generation))
        except KeyboardInterrupt:
            _stop_and_wait(engine)
            print("\n[stopped]", file=sys.stderr)
            messages.pop()
            continue
        except WorkerCrashedError:
            raise
        except ChatTemplateError as error:  # the model's template is broken: /chatml answers this message again
            print(f"\nhearth: {error} Type /chatml to use it.", file=sys.stderr)
            unanswered = messages.pop()["content"]
            continue
        except HearthError as error:  # e.g. a message too long for the context: say so and go on
            print(f"\nhearth: {error}", file=sys.stderr)
            messages.pop()
            continue
        messages.append({"role": "assistant", "content": finished.text})
        _say_stopped(finished)
        print()


def _say_trimmed(dropped: int) -> None:
    print(f"[{context_trimmed(dropped).rstrip('.')}]",
          file=sys.stderr)


def _stop_and_wait(engine: Any) -> None:
    from app.engine import EngineState
    from app.engine import protocol as p
    from app.engine.client import EventWaiter

    with EventWaiter(engine) as waiter:
        engine.stop()
        if engine.state is EngineState.GENERATING:
            waiter.wait_for((p.Finished, p.Failed, p.WorkerExited), 10)
