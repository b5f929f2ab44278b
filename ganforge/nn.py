"""Modules built on the fused op."""

from __future__ import annotations

import torch
from torch import nn

from ganforge.ops import dense_act
from ganforge.ops.batch_norm import batch_norm_train
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


class BatchNorm1d(nn.BatchNorm1d):
    """``nn.BatchNorm1d`` (same parameters, buffers and ``state_dict`` keys) whose training-mode
    statistics and gradients are the same bits with any thread count (see
    :mod:`ganforge.ops.batch_norm`); eval mode and unusual settings (2-D inputs of another shape,
    no affine parameters, cumulative averaging) use torch's own kernel."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and self.affine and self.track_running_stats and self.momentum is not None
                and x.dim() == 2 and len(x) > 1):
            return super().forward(x)
        if x.dtype != self.weight.dtype:  # under bf16 autocast, normalise in float32 as torch's does
            x = x.to(self.weight.dtype)
        y, mean, var = batch_norm_train(x, self.weight, self.bias, self.eps)
        with torch.no_grad():
            n = len(x)
            self.running_mean.lerp_(mean, self.momentum)
            self.running_var.lerp_(var * (n / (n - 1)), self.momentum)  # unbiased, as torch keeps it
            self.num_batches_tracked.add_(1)
        return y
