"""One model on this machine: its facts, the forecast for the settings chosen, and settings that fit.

This is what the library shows for each model and what a load asks before it starts. Measurements from
earlier loads on this machine (``load_records``) narrow the speed range: the share of memory bandwidth
llama.cpp really reached here replaces the generic range.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, replace
from pathlib import Path

from app.engine.load_plan import LoadPlan
from app.forecast.dry_run import dry_run
from app.forecast.estimate import (
    Forecast,
    Speed,
    Verdict,
    decide_plan,
    forecast,
    remembered_tuning,
    with_memory_forecast,
)
from app.forecast.placement import Placement, placement
from app.gguf.facts import ModelFacts, read_facts
from app.hardware.machine import Machine
from app.history import LoadRecordData

MINIMUM_CONTEXT = 512


@dataclass(frozen=True)
class Assessment:
    facts: ModelFacts
    forecast: Forecast
    fitting: LoadPlan | None  # settings that would fit, when the chosen ones do not
    last_used: int | None  # peak memory measured at the last load of this model, if any
    gpu_fallback: str = ""  # the graphics card failed the dry run and the processor passed it: why, in a sentence
    placement: Placement | None = None  # where the plan puts it: the graphics card, the processor, or both

    @property
    def needs_confirmation(self) -> bool:
        return self.forecast.verdict in (Verdict.TIGHT, Verdict.TOO_LARGE)

    def technical_words(self) -> list[str]:
        return technical_words(self.facts, self.forecast)


def technical_words(facts: ModelFacts, result: Forecast) -> list[str]:
    """What only a technical reader wants, the same behind the Models page's "Technical details" and at the end of
    ``hearth inspect``: the model's shape, how its memory was worked out, what the engine reserves beyond it."""
    reserved = result.memory.reserved_words()
    return [f"{facts.shape_words()}.", result.basis_words(), *([reserved] if reserved else [])]


def assess(path: Path, machine: Machine, *, context_length: int | None = None, kv_type: str = "f16",
           gpu_layers: int | None = None, threads: int | None = None, exact: bool = False,
           records: list[LoadRecordData] | None = None, baseline: int | None = None) -> Assessment:
    """Raises InvalidModelError for a file that is not a usable model. ``exact`` adds a llama.cpp dry run
    (about half a second, in a subprocess): use it before a load, not for every row of a list.

    The plan takes the threads and flash attention measured by an earlier load of this model with the same
    settings; without one, it asks the load to measure them (``LoadPlan.tune``)."""
    facts = read_facts(path)
    plan = decide_plan(facts, machine, context_length=context_length, gpu_layers=gpu_layers, kv_type=kv_type,
                       threads=threads)
    tuning = remembered_tuning(records or [], str(facts.path.resolve()), plan)
    plan = decide_plan(facts, machine, context_length=context_length, gpu_layers=gpu_layers, kv_type=kv_type,
                       threads=threads, tuning=tuning, tune=tuning is None)
    efficiency = measured_efficiency(records or [], machine)
    dry = dry_run(facts.path, plan) if exact else None
    gpu_fallback = ""
    if dry is not None and not dry.ok and plan.gpu_layers:
        # llama.cpp stopped while sizing the model for the card (a driver that aborts, a buffer it cannot make):
        # as the worker does for a load, the processor is tried, and the model goes there if it passes.
        on_processor = replace(plan, gpu_layers=0)
        dry_on_processor = dry_run(facts.path, on_processor)
        if dry_on_processor.ok:
            plan, dry = on_processor, dry_on_processor
            gpu_fallback = (f"The graphics card could not run “{facts.path.name}” (llama.cpp stopped while sizing "
                            "it for the card), so it runs on the processor instead.")
    result = forecast(facts, machine, plan, dry, measured_efficiency=efficiency, baseline=baseline)
    measured = measured_speed(records or [], str(facts.path.resolve()), plan)
    if measured is not None:
        result = replace(result, speed=measured)
    fitting = None
    if result.verdict in (Verdict.TIGHT, Verdict.TOO_LARGE) and result.max_context >= MINIMUM_CONTEXT:
        fitting = with_memory_forecast(facts, machine, replace(
            plan, context_length=min(result.max_context, plan.context_length),
            gpu_layers=min(plan.gpu_layers, result.max_gpu_layers)))
        if forecast(facts, machine, fitting).verdict in (Verdict.TIGHT, Verdict.TOO_LARGE):
            fitting = None
    own = [r for r in records or [] if r.model_path == str(facts.path) and r.measured.get("peak_rss_bytes")]
    last_used = int(own[0].measured["peak_rss_bytes"]) if own else None
    return Assessment(facts=facts, forecast=result, fitting=fitting, last_used=last_used, gpu_fallback=gpu_fallback,
                      placement=placement(facts, result.plan, machine))


MEASURED_SPREAD = (0.85, 1.05)  # answers vary with their length and what else runs; the best seen is the top


def measured_speed(records: list[LoadRecordData], path: str, plan: LoadPlan) -> Speed | None:
    """This model's own speed here, from its recent loads' answers (the best of each load) on the same
    placement, in place of the forecast from memory speed: one measured model corrects its own forecast."""
    own = [r for r in records if r.model_path == path and int(r.plan.get("gpu_layers") or 0) == plan.gpu_layers]
    speeds = [r.tokens_per_s for r in own[:5] if r.tokens_per_s]
    prompt = next((float(r.measured["tuning"]["prompt_tokens_per_s"]) for r in own
                   if isinstance(r.measured.get("tuning"), dict) and r.measured["tuning"].get("prompt_tokens_per_s")),
                  None)
    if not speeds:
        return None
    typical = statistics.median(speeds)
    return Speed(low=typical * MEASURED_SPREAD[0], high=max(speeds) * MEASURED_SPREAD[1], measured=True,
                 prompt_tokens_per_s=prompt)


def measured_efficiency(records: list[LoadRecordData], machine: Machine) -> float | None:
    """The median share of this machine's bandwidth that earlier generations reached (CPU loads only)."""
    bandwidth = machine.bandwidth_bytes_per_s
    if not bandwidth:
        return None
    shares = [r.tokens_per_s * r.measured["bytes_per_token"] / bandwidth for r in records
              if r.tokens_per_s and r.measured.get("bytes_per_token") and not r.plan.get("gpu_layers")]
    return statistics.median(shares) if shares else None



def assess_remote(repo_id: str, filename: str, machine: Machine, cache_dir: Path, *, token: str | None = None,
                  context_length: int | None = None) -> Assessment:
    """The forecast for a file not downloaded yet: only its header is fetched (HTTP Range), written as a
    sparse copy the size of the real file, and sized by llama.cpp's dry run like a local model."""
    from app.gguf.remote import fetch_header, hub_file_url, write_sparse_copy

    remote = fetch_header(hub_file_url(repo_id, filename), token=token)
    sparse = write_sparse_copy(remote, cache_dir / "headers" / repo_id.replace("/", "--") / Path(filename).name)
    return assess(sparse, machine, context_length=context_length, exact=True)


def model_card(repo_id: str, *, token: str | None = None, timeout: float = 10.0) -> str:
    """The repository's README (its model card), as Markdown; empty when it has none.

    One plain GET through huggingface_hub's client rather than ``hf_hub_download``, which would retry for
    half a minute when offline and keep a cache of cards nobody needs."""
    from huggingface_hub import get_session, hf_hub_url

    headers = {"authorization": f"Bearer {token}"} if token else {}
    response = get_session().get(hf_hub_url(repo_id, "README.md"), headers=headers, follow_redirects=True,
                                 timeout=timeout)
    if response.status_code == 404:
        return ""
    response.raise_for_status()
    return str(response.text)
