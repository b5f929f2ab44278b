"""The op's targets in one run: G + D stacks of the ``mlp`` networks, forward + backward, fused vs
eager vs the GEMM floor, at batch 64 and 256, in float32 and under bf16 autocast.
Run: pytest benchmarks/test_stack_targets.py --benchmark-only

Each (batch, precision) is one pytest-benchmark case and group, ``stack G+D b<batch> <precision>``,
its three variants timed in interleaved rounds (benchmarks/interleaved.py), so the
ratio table of conftest.py prints fused/eager and fused/floor for it, and below it the targets of
the op (fused at least 1.15x eager's speed, at most 1.05x the floor). No wall-clock value is
asserted: the machine is shared, only ratios within a run mean anything.

- ``eager``: ``F.linear`` + activation modules' functions, what a hand-written model runs.
- ``fused``: :func:`ganforge.ops.dense_act`.
- ``floor``: only the GEMMs of those passes, on preallocated tensors of the pass's dtype (bf16 for
  the autocast group: the casts autocast adds are not part of the floor).
Under bf16 the parameters stay float32 and autocast casts them, as ``--precision bf16`` trains.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import pytest
import torch
from interleaved import interleaved
from quick import QUICK
from stacks import STACKS, Stack, eager_forward, floor, fused_forward

PRECISIONS = ("fp32", "bf16")
TARGET_VS_EAGER = 1.15


def _both(runners: list[Callable[[], object]]) -> Callable[[], object]:
    def run() -> object:
        return [r() for r in runners]
    return run


def make_runner(variant: str, batch: int, precision: str) -> Callable[[], object]:
    """One forward + backward of G then of D (inputs without gradient, as in a D step and the
    generator's first layer)."""
    bf16 = precision == "bf16"
    if variant == "floor":
        dtype = torch.bfloat16 if bf16 else torch.float32
        return _both([floor(Stack.make(layers, batch, dtype=dtype)) for layers in STACKS.values()])
    forward = {"eager": eager_forward, "fused": fused_forward}[variant]
    stacks = [Stack.make(layers, batch) for layers in STACKS.values()]

    def run() -> object:
        out = []
        for stack in stacks:
            leaves = stack.leaves()
            ctx = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
            with ctx:
                y = forward(stack, stack.x)
            out.append(torch.autograd.grad(y, leaves, stack.grad_out.to(y.dtype)))
        return out

    return run


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("batch", (64, 256))
def test_stack_targets(benchmark, batch, precision):
    """eager, fused and floor in interleaved rounds (benchmarks/interleaved.py): pytest-benchmark
    times fused, the other two run once before each of its rounds."""
    benchmark.group = f"stack G+D b{batch} {precision}"
    runners = {variant: make_runner(variant, batch, precision) for variant in ("eager", "floor", "fused")}
    interleaved(benchmark, runners, "fused", rounds=3 if QUICK else 40 * max(1, 512 // batch), warmup_rounds=3)
