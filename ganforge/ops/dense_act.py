"""The public face of the op: picks the compiled backend or the reference fallback."""

from __future__ import annotations

import torch

from ganforge.ops.activations import activation
from ganforge.ops.reference import dense_act_reference

_BACKEND = "reference"


def backend() -> str:
    """Which implementation :func:`dense_act` uses: ``"cpp"``, ``"cuda"`` or ``"reference"``."""
    return _BACKEND


def dense_act(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
              act: str = "relu", *, alpha: float = 0.2) -> torch.Tensor:
    """``act(x @ weight.T + bias)`` for ``act`` in none, relu, leaky_relu, tanh, sigmoid."""
    activation(act)
    return dense_act_reference(x, weight, bias, act, alpha)
