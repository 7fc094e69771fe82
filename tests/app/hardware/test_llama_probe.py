"""llama.cpp's readings about this machine come from a one-shot child, and are kept for later starts only where
they cannot go stale."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from app.hardware import llama_probe
from app.hardware.llama_probe import GgmlDevice, LlamaFacts

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    """No answer from an earlier test in this process."""
    monkeypatch.setattr(llama_probe, "_asked", {})


def _counting_child(monkeypatch: pytest.MonkeyPatch, answer: LlamaFacts) -> list[frozenset[str]]:
    asked: list[frozenset[str]] = []

    def child(skip_memory: frozenset[str], timeout: float) -> LlamaFacts:
        asked.append(skip_memory)
        return answer

    monkeypatch.setattr(llama_probe, "_ask_child", child)
    return asked


def test_detect_asks_llama_cpp_in_a_child_and_never_loads_it_here(tmp_path: Path) -> None:
    code = ("import sys\nfrom pathlib import Path\nfrom app.hardware.detect import detect\n"
            f"machine = detect(cache_dir=Path({str(tmp_path)!r}))\n"
            "print('llama_cpp' in sys.modules, 'REPACK' in machine.cpu_build_options or bool(machine.cpu_features))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                            check=True)
    assert result.stdout.split() == ["False", "True"]
    kept = json.loads((tmp_path / "hardware.json").read_text())[llama_probe.CACHE_SECTION][sys.platform]
    assert "CPU :" in kept["facts"]["system_info"] and kept["facts"]["supports_gpu_offload"] is False
    assert [device["kind"] for device in kept["facts"]["ggml_devices"]] == ["cpu"]


def test_a_child_that_does_not_answer_gives_no_readings() -> None:
    facts = llama_probe._ask_child(frozenset(), timeout=0.0)
    assert facts == LlamaFacts()
    with pytest.raises(LookupError, match="did not answer"):
        facts.reading("system_info")


def test_the_answer_is_kept_for_this_boot_and_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    fresh: None) -> None:
    answer = LlamaFacts("CPU : AVX2 = 1 | ", False, (GgmlDevice("CPU", "A processor", "cpu", "CPU"),))
    asked = _counting_child(monkeypatch, answer)
    assert llama_probe.ask(frozenset(), tmp_path) == answer
    monkeypatch.setattr(llama_probe, "_asked", {})  # a later start: only the file remembers
    assert llama_probe.ask(frozenset(), tmp_path) == answer
    assert len(asked) == 1
    monkeypatch.setattr(llama_probe, "_asked", {})
    assert llama_probe.ask(frozenset({"CUDA"}), tmp_path) == answer  # other settings: asked again
    boot = psutil.boot_time()
    monkeypatch.setattr(psutil, "boot_time", lambda: boot + 3600)  # the computer restarted: a new card may be in
    monkeypatch.setattr(llama_probe, "_asked", {})
    llama_probe.ask(frozenset({"CUDA"}), tmp_path)
    assert asked == [frozenset(), frozenset({"CUDA"}), frozenset({"CUDA"})]


def test_graphics_memory_that_changes_is_asked_again_every_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                fresh: None) -> None:
    vulkan = GgmlDevice("Vulkan0", "AMD Radeon RX 7800 XT", "gpu", "Vulkan", 15 * 2**30, 16 * 2**30)
    asked = _counting_child(monkeypatch, LlamaFacts("CPU : AVX2 = 1 | ", True, (vulkan,)))
    llama_probe.ask(frozenset(), tmp_path)
    llama_probe.ask(frozenset(), tmp_path)
    assert len(asked) == 2
    assert not (tmp_path / "hardware.json").exists()
    metal = GgmlDevice("Metal", "Apple M2", "gpu", "Metal", 11 * 2**30, 11 * 2**30)
    assert LlamaFacts("Metal : EMBED_LIBRARY = 1 | ", True, (metal,)).reusable  # fixed until macOS restarts


def test_an_unreadable_kept_answer_is_asked_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  fresh: None) -> None:
    asked = _counting_child(monkeypatch, LlamaFacts("CPU : NEON = 1 | ", False, ()))
    llama_probe.ask(frozenset(), tmp_path)
    data = json.loads((tmp_path / "hardware.json").read_text())
    data[llama_probe.CACHE_SECTION][sys.platform]["facts"]["ggml_devices"] = [{"name": "CPU"}]
    (tmp_path / "hardware.json").write_text(json.dumps(data))
    monkeypatch.setattr(llama_probe, "_asked", {})
    assert llama_probe.ask(frozenset(), tmp_path).system_info == "CPU : NEON = 1 | "
    assert len(asked) == 2
