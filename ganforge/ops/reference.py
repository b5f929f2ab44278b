"""Pure-PyTorch dense_act: the fallback when ganforge._C is absent and the tests' reference."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ganforge.ops.activations import activation


def dense_act_reference(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, act: str, alpha: float = 0.2
) -> torch.Tensor:
    """``act(x @ weight.T + bias)`` with eager PyTorch ops; autograd does the rest."""
    return activation(act).forward(F.linear(x, weight, bias), alpha)
