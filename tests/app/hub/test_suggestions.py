"""Which catalog models the welcome page suggests: what fits, the best first, and variety."""

from __future__ import annotations

from dataclasses import replace

import pytest

from app.forecast.estimate import WORDS_PER_TOKEN, Verdict, size_speed, size_verdict
from app.hardware.machine import Gpu, Machine
from app.hub.catalog import CatalogEntry, load_builtin
from app.hub.suggestions import (
    COMFORT,
    USEFUL_WORDS_PER_S,
    answers_usefully,
    download_size,
    estimated_size,
    family_group,
    suggest,
)

GIB = 2**30
GB = 10**9


def machine(total_gib: float, free_gib: float, gpus: tuple[Gpu, ...] = ()) -> Machine:
    return Machine(memory_total=int(total_gib * GIB), memory_available=int(free_gib * GIB), cpu_name="Test CPU",
                   physical_cores=4, logical_cores=8, cpu_features=("AVX2",), gpus=gpus,
                   offload_backends=("CUDA",) if gpus else ())


SMALL = machine(4, 2.5)  # an old laptop with a browser open
MEDIUM = machine(8, 5)
LARGE = machine(16, 11)


def entry(model_id: str, family: str, billions: float, quant: str = "Q4_K_M", *, kind: str = "chat",
          gated: bool = False) -> CatalogEntry:
    return CatalogEntry(id=model_id, name=model_id.title(), family=family, parameters=int(billions * 1e9),
                        parameters_label=f"{billions:g}B", license="apache-2.0", gated=gated, languages=("en",),
                        good_at="Chat.", kind=kind, repo=f"owner/{model_id}-GGUF",  # type: ignore[arg-type]
                        recommended_quant=quant)


CATALOG = [
    entry("alpha-1b", "Alpha 1", 1.2),
    entry("alpha-3b", "Alpha 1", 3.2),
    entry("alpha-8b", "Alpha 1", 8.0),
    entry("beta-0.5b", "Beta2.5", 0.5, "Q8_0"),
    entry("beta-1.5b", "Beta2.5", 1.5),
    entry("beta-7b", "Beta2.5", 7.6),
    entry("beta3-4b", "Beta3", 4.0),
    entry("gamma-3.8b", "Gamma-3.5", 3.8),
    entry("gamma4-3.8b", "Gamma-4", 3.8),
    entry("delta-1b", "Delta", 1.0),
    entry("delta-7b", "Delta", 7.2),
    entry("locked-4b", "Locked", 4.3, gated=True),
    entry("embed-0.1b", "Embed", 0.14, "Q8_0", kind="embedding"),
]


def ids(machine: Machine, catalog: list[CatalogEntry] = CATALOG, count: int = 3) -> list[str]:
    return [s.entry.id for s in suggest(catalog, machine, count)]


def test_estimated_sizes_follow_llama_cpp_bits_per_weight() -> None:
    # Published file sizes: Llama 3.1 8B Q4_K_M 4.92 GB, Qwen2.5 7B Q4_K_M 4.68 GB.
    assert estimated_size(entry("llama", "Llama", 8.03)) == pytest.approx(4.92 * GB, rel=0.02)
    assert estimated_size(entry("qwen", "Qwen", 7.62)) == pytest.approx(4.68 * GB, rel=0.02)
    assert estimated_size(entry("q8", "Qwen", 1.0, "q8_0")) == pytest.approx(1.06 * GB, rel=0.01)  # any case
    assert estimated_size(entry("odd", "X", 1.0, "Q7_X")) == 1 * GB  # unknown: its bits plus one
    assert estimated_size(entry("none", "X", 1.0, "WEIRD")) == 2 * GB  # no number: 16 bits


def test_family_lines_join_versions_of_one_maker() -> None:
    assert family_group(entry("a", "Qwen2.5", 1)) == family_group(entry("b", "Qwen3", 1)) == "qwen"
    assert family_group(entry("a", "Phi-3.5", 1)) == family_group(entry("b", "Phi-4", 1)) == "phi"
    assert family_group(entry("a", "Llama 3.2", 1)) == "llama"


def test_4_gb_gets_small_models_of_three_families() -> None:
    assert ids(SMALL) == ["beta-1.5b", "alpha-1b", "delta-1b"]


def test_8_gb_gets_the_biggest_that_fit_and_the_newest_of_a_size() -> None:
    # Gamma-4 and Gamma-3.5 are the same size: the newer comes first; the gated 4.3B one is never offered.
    assert ids(MEDIUM) == ["beta3-4b", "gamma4-3.8b", "alpha-3b"]


def test_16_gb_gets_7_and_8_billion_models() -> None:
    assert ids(LARGE) == ["alpha-8b", "beta-7b", "delta-7b"]


def test_every_suggestion_fits_with_room_to_spare() -> None:
    for m in (SMALL, MEDIUM, LARGE):
        for suggestion in suggest(CATALOG, m):
            assert suggestion.entry.kind == "chat" and not suggestion.entry.gated
            assert size_verdict(round(suggestion.file_size * COMFORT), m) in (Verdict.RUNS_WELL, Verdict.RUNS_SLOWLY)
    just_too_big = [s.entry.id for s in suggest(CATALOG, MEDIUM, count=20)]
    assert "beta-7b" not in just_too_big and "alpha-8b" not in just_too_big


def test_variety_first_then_the_best_of_the_rest() -> None:
    one_family = [e for e in CATALOG if e.family == "Alpha 1"]
    assert ids(LARGE, one_family) == ["alpha-8b", "alpha-3b", "alpha-1b"]  # only one line: it fills the three
    two_families = [e for e in CATALOG if e.family in ("Alpha 1", "Delta")]
    assert ids(LARGE, two_families) == ["alpha-8b", "delta-7b", "alpha-3b"]


def test_fewer_or_none_when_little_fits() -> None:
    assert ids(machine(2, 1.2)) == []
    assert ids(machine(3, 2)) == ["beta-0.5b"]
    assert ids(LARGE, count=1) == ["alpha-8b"]


def test_a_graphics_card_with_room_counts() -> None:
    card = Gpu(name="Test GPU", vendor="nvidia", memory_total=12 * GIB, memory_free=11 * GIB, unified=False,
               source="test", backend="CUDA")
    squeezed = machine(8, 2)  # little memory free, but the models fit on the card
    assert ids(squeezed) == ["beta-0.5b"]
    assert ids(replace(squeezed, gpus=(card,), offload_backends=("CUDA",))) == ["alpha-8b", "beta-7b", "delta-7b"]


def test_the_built_in_catalog_gives_three_of_different_lines_and_more_memory_gives_bigger_ones() -> None:
    catalog = load_builtin()
    sizes = []
    for m in (SMALL, MEDIUM, LARGE):
        chosen = suggest(catalog, m)
        assert len(chosen) == 3
        assert len({family_group(s.entry) for s in chosen}) == 3
        sizes.append(min(s.file_size for s in chosen))
    assert sizes == sorted(sizes) and sizes[0] < 1 * GB < 4 * GB < sizes[2]


# The computer of the report: two cores, no graphics card, plenty of memory, and the memory speed measured there
# (a 8B model's forecast on it is 2-4 words a second).
TWO_CORES = Machine(memory_total=16 * GIB, memory_available=12 * GIB, cpu_name="Test CPU", physical_cores=2,
                    logical_cores=2, cpu_features=("AVX2",), gpus=(), offload_backends=(), bandwidth_bytes_per_s=30e9)


def test_a_two_core_computer_is_offered_models_that_answer_at_a_useful_speed() -> None:
    catalog = load_builtin()
    eight_b = catalog.by_id("llama-3.1-8b-instruct")
    assert eight_b is not None and eight_b.file_size is not None
    slow = size_speed(eight_b.file_size, TWO_CORES)
    assert slow is not None and slow.low * WORDS_PER_TOKEN >= 2 and slow.high * WORDS_PER_TOKEN <= 4  # the report
    assert size_verdict(eight_b.file_size, TWO_CORES) is Verdict.RUNS_WELL  # it fits, and is slower than people read

    chosen = suggest(catalog, TWO_CORES)
    assert len(chosen) == 3
    for suggestion in chosen:
        assert suggestion.speed is not None and suggestion.speed.low * WORDS_PER_TOKEN >= USEFUL_WORDS_PER_S
        assert suggestion.file_size == suggestion.entry.file_size and suggestion.file_size < 2.5 * GB
    assert len({family_group(s.entry) for s in chosen}) == 3


def test_a_slow_computer_gets_the_fastest_models_when_few_keep_up() -> None:
    old_laptop = replace(TWO_CORES, memory_total=4 * GIB, memory_available=int(2.5 * GIB), bandwidth_bytes_per_s=6e9)
    chosen = suggest(load_builtin(), old_laptop)
    assert [s.entry.id for s in chosen][:2] == ["smollm2-360m-instruct", "smollm2-135m-instruct"]  # they keep up
    third = chosen[2]  # none else does: the smallest of the rest
    assert third.speed is not None and not answers_usefully(third.speed)
    assert third.file_size == min(download_size(e) for e in load_builtin() if e.kind == "chat" and not e.gated
                                  and e.id not in ("smollm2-360m-instruct", "smollm2-135m-instruct"))


def test_a_graphics_card_answers_at_its_own_memory_speed() -> None:
    card = Gpu(name="Test GPU", vendor="nvidia", memory_total=12 * GIB, memory_free=11 * GIB, unified=False,
               source="test", backend="CUDA", bandwidth_bytes_per_s=500e9)
    with_card = replace(TWO_CORES, gpus=(card,), offload_backends=("CUDA",))
    chosen = suggest(load_builtin(), with_card)
    assert all(s.entry.parameters > 7e9 for s in chosen)  # the card reads an 8B file fast enough


def test_the_catalog_size_is_used_and_an_estimate_stands_in_for_a_missing_one() -> None:
    known = replace(entry("alpha-1b", "Alpha 1", 1.2), file_size=808_000_000)
    assert download_size(known) == 808_000_000
    assert download_size(entry("alpha-1b", "Alpha 1", 1.2)) == estimated_size(entry("alpha-1b", "Alpha 1", 1.2))
    assert all(e.file_size is not None for e in load_builtin())  # sizes and fit show offline for every model
