"""``hearth inspect``: a model's facts (a library model, a file, or a file on the Hub read by its header alone),
and whether and how it runs here."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from app.cli.loading import open_library
from app.engine.load_plan import KV_TYPES
from app.forecast.placement import placement
from app.paths import Paths

COMMANDS = ("inspect",)


def add_commands(commands: Any) -> None:
    inspect = commands.add_parser("inspect", help="a model's facts, and whether and how it runs here")
    inspect.add_argument("model", help="library id or name, a .gguf path, a Hub file as OWNER/REPO/FILE.gguf, "
                                       "or an http(s) URL of a .gguf")
    inspect.add_argument("--ctx", type=int, help="context length in tokens (default: the model's, up to 4096)")
    inspect.add_argument("--gpu-layers", type=int, help="layers to put on the graphics card (default: what fits)")
    inspect.add_argument("--kv-type", choices=sorted(KV_TYPES), default="f16", help="KV cache precision")
    inspect.add_argument("--json", action="store_true")


def run(args: argparse.Namespace, paths: Paths) -> int:
    from app.forecast.dry_run import dry_run
    from app.forecast.estimate import decide_plan, forecast
    from app.forecast.model_check import technical_words
    from app.gguf.facts import read_facts
    from app.gguf.kind import BASE_MODEL_WARNING
    from app.gguf.remote import fetch_header, parse_model_reference, write_sparse_copy
    from app.hardware.detect import detect
    from app.library import display_name
    from app.words import format_bytes, model_words

    url = parse_model_reference(args.model) if not Path(args.model).expanduser().exists() else None
    if url is not None:
        from app.hub.credentials import get_token

        remote = fetch_header(url, token=get_token())
        facts = remote.facts
        filename = Path(url.split("?")[0]).name
        sized = write_sparse_copy(remote, paths.cache_dir / "headers" / filename)
        name = display_name(Path(filename), quantization=facts.quantization, header_name=facts.name,
                            architecture=facts.architecture)
    else:
        model = open_library(paths).resolve(args.model)
        facts, sized, name = read_facts(model.path), model.path, model.name
    machine = detect(cache_dir=paths.cache_dir, measure=True)
    plan = decide_plan(facts, machine, context_length=args.ctx, gpu_layers=args.gpu_layers, kv_type=args.kv_type)
    result = forecast(facts, machine, plan, dry_run(sized, plan))
    if args.json:
        print(json.dumps({"model": name, "source": url or str(sized), "facts": facts.to_dict(),
                          **result.to_dict()}, indent=2))
        return 0
    m = result.memory
    lines = [
        name,
        model_words(parameter_count=facts.parameter_count, quantization=facts.quantization, file_size=facts.file_size,
                    context_length=facts.context_length, has_chat_template=facts.has_chat_template),
        *([BASE_MODEL_WARNING] if facts.is_base_model else []),
        "",
        f"{result.verdict.value}. {result.reason}",
        f"Memory with a {plan.context_length:,}-token context: {format_bytes(m.ram_bytes)}"
        + (f" plus {format_bytes(m.vram_bytes)} on the graphics card" if m.vram_bytes else "")
        + f" ({m.breakdown_words()}). {m.saved_states_words()}",
        f"{placement(facts, plan, machine).words()}.",
        f"Longest context that fits now: {result.max_context:,} tokens"
        + (f"; graphics card layers that fit: {result.max_gpu_layers}" if machine.offload_backends else ""),
        f"Expected speed: {result.speed.words()}." if result.speed else "Expected speed: unknown.",
        "",
        "Technical details:",
        *technical_words(facts, result),
    ]
    print("\n".join(lines))
    return 0
