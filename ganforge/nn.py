"""Modules built on the fused op."""

from __future__ import annotations

import torch
from torch import nn

from ganforge.ops import dense_act
from ganforge.ops.activations import activation


class FusedDense(nn.Linear):
    """``act(x @ W.T + b)`` in one op: a drop-in for ``nn.Linear`` followed by an activation.

    It *is* an ``nn.Linear`` (same parameter names, initialisation and ``state_dict`` keys), so
    checkpoints move freely between the two.
    """

    def __init__(self, in_features: int, out_features: int, act: str = "none", *, alpha: float = 0.2,
                 bias: bool = True, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> None:
        activation(act)  # fail at construction, not at the first forward
        super().__init__(in_features, out_features, bias=bias, device=device, dtype=dtype)
        self.act, self.alpha = act, float(alpha)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dense_act(x, self.weight, self.bias, self.act, alpha=self.alpha)

    def extra_repr(self) -> str:
        slope = f", alpha={self.alpha}" if self.act == "leaky_relu" else ""
        return f"{super().extra_repr()}, act={self.act}{slope}"
