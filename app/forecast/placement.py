"""Where a plan puts a model, in plain words: the graphics card by its name, the processor, or both with how many
layers each takes ("Runs on: NVIDIA GeForce RTX 4060 (all 33 layers)")."""

from __future__ import annotations

from dataclasses import dataclass

from app.engine.load_plan import LoadPlan
from app.gguf.facts import ModelFacts
from app.hardware.machine import Machine


@dataclass(frozen=True)
class Placement:
    """``layers`` counts as llama.cpp does (its "offloaded 33/33 layers" log line): each repeating block, and the
    output matrix as one more."""

    card: str | None  # the graphics card that takes layers, by its driver's name; None: the processor alone
    on_card: int
    layers: int

    def words(self) -> str:
        if self.card is None or self.on_card == 0:
            return "Runs on: the processor"
        if self.on_card >= self.layers:
            return f"Runs on: {self.card} (all {self.layers} layers)"
        return (f"Runs on: {self.card} and the processor ({self.on_card} of {self.layers} layers on the graphics "
                "card)")


def placement(facts: ModelFacts, plan: LoadPlan, machine: Machine) -> Placement:
    layers = (facts.block_count or 0) + 1
    cards = machine.usable_gpus if machine.offload_backends else ()
    if not cards or plan.gpu_layers == 0:
        return Placement(card=None, on_card=0, layers=layers)
    on_card = layers if plan.gpu_layers < 0 else min(plan.gpu_layers, layers)
    return Placement(card=cards[0].name, on_card=on_card, layers=layers)
