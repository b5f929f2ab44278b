"""Dropout on the demo discriminator's hidden layers: torch's kernel against ganforge's
:class:`ganforge.nn.Dropout` (a quarter of the random draws), forward and backward together.
Run: pytest benchmarks --benchmark-only -k dropout  (each group's table gives the ratio).
"""

from __future__ import annotations

import pytest
import torch

from ganforge.nn import Dropout


@pytest.mark.parametrize("variant", ["torch", "ganforge"])
@pytest.mark.parametrize("shape", [(128, 512), (128, 256)])  # D's hidden layers on real + fake
def test_dropout(benchmark, shape, variant):
    benchmark.group = f"dropout {shape[0]}x{shape[1]}"
    layer = (torch.nn.Dropout(0.3) if variant == "torch" else Dropout(0.3)).train()
    x = torch.randn(*shape, requires_grad=True)
    grad = torch.randn(*shape)

    def forward_backward() -> None:
        layer(x).backward(grad)

    benchmark.pedantic(forward_backward, rounds=20, iterations=50, warmup_rounds=1)
