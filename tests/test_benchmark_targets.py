"""The benchmarks' target table (benchmarks/conftest.py) reads the right ratio for each target:
speedups as reference / ours, overheads as ours / floor, and a row only when both were measured."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load_summary():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("bench_summary", ROOT / "benchmarks" / "conftest.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def test_target_rows_take_each_ratio_the_right_way_round():
    summary = load_summary()
    groups = {
        "stack G+D b64 fp32": {"eager": 1.2, "fused": 1.0, "floor": 0.98},
        "stack G+D b256 bf16": {"eager": 1.1, "fused": 1.0, "floor": 0.5},
        "step b64": {"baseline": 10.0, "ganforge": 6.0, "floor": 3.0},
        "step bf16 b64": {"baseline": 10.0, "ganforge_bf16": 4.0},
        "dcgan step b64": {"baseline": 10.0, "ganforge": 8.0},
    }
    rows = {what: (ratio, target, met) for what, ratio, target, met in summary.target_rows(groups)}
    assert rows["stacks fp32 b64: eager / fused"] == (1.2, ">= 1.15", True)
    assert rows["stacks fp32 b64: fused / floor"][2] is True  # 1.02 <= 1.05
    assert rows["stacks bf16 b256: eager / fused"][2] is False  # 1.1 < 1.15
    assert rows["step b64: bf16 Trainer vs fp32 tutorial loop"] == (2.5, ">= 2.0", True)
    assert rows["dcgan step b64: Trainer (fp32) vs tutorial loop"] == (1.25, ">= 1.4", False)
    # Not measured in this run: no row rather than a made-up one.
    assert "dcgan step b64: Trainer (bf16) vs tutorial loop" not in rows
    assert not any(what.startswith("stacks fp32 b256") for what in rows)


def load_interleaved():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("interleaved", ROOT / "benchmarks" / "interleaved.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


class FakeBenchmark:
    """pytest-benchmark's ``pedantic`` as it behaves: setup, then the timed call, each round."""

    def __init__(self) -> None:
        self.extra_info: dict = {}

    def pedantic(self, target, setup, rounds, iterations, warmup_rounds):  # type: ignore[no-untyped-def]
        assert iterations == 1 and warmup_rounds == 0  # pytest-benchmark refuses more with a setup
        for _ in range(rounds):
            setup()
            target()


def test_interleaved_rounds_run_every_variant_before_each_timed_round():
    interleaved = load_interleaved()
    calls: list[str] = []
    runners = {name: (lambda name=name: calls.append(name)) for name in ("eager", "fused", "floor")}
    bench = FakeBenchmark()
    interleaved.interleaved(bench, runners, "fused", rounds=4, warmup_rounds=2)
    assert calls == ["eager", "fused", "floor"] * 2 + ["eager", "floor", "fused"] * 4
    assert bench.extra_info["timed_variant"] == "fused"
    assert {k: len(v) for k, v in bench.extra_info["interleaved"].items()} == {"eager": 4, "floor": 4}


def test_variant_times_reads_the_timed_variant_and_the_interleaved_ones():
    interleaved = load_interleaved()

    class Stats:
        min, median = 2.0, 3.0

    class Bench:
        stats = Stats()
        extra_info = {"timed_variant": "fused", "interleaved": {"eager": [5.0, 4.0, 9.0], "floor": [1.0, 3.0]}}

    assert interleaved.variant_times(Bench()) == {"fused": 2.0, "eager": 4.0, "floor": 1.0}
    assert interleaved.variant_times(Bench(), "median") == {"fused": 3.0, "eager": 5.0, "floor": 2.0}
