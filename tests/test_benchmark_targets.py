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
        "step b64": {"baseline": 10.0, "ganforge": 6.0, "ganforge_bf16": 4.0, "floor": 3.0},
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
