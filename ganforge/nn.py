"""Modules built on the fused op."""

from __future__ import annotations

import torch
from torch import nn

from ganforge.ops import dense_act
from ganforge.ops.activations import activation
from ganforge.ops.batch_norm import batch_norm_train


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
        running_mean, running_var, tracked = self.running_mean, self.running_var, self.num_batches_tracked
        assert running_mean is not None and running_var is not None and tracked is not None  # track_running_stats
        with torch.no_grad():
            n = len(x)
            running_mean.lerp_(mean, self.momentum)
            running_var.lerp_(var * (n / (n - 1)), self.momentum)  # unbiased, as torch keeps it
            tracked.add_(1)
        return y


_LEVELS = 1 << 16
"""Dropout's keep decision compares a 16-bit random number with a threshold: p is applied in
steps of 1 / 65,536 (0.3 becomes 0.300003)."""


def dropout_mask(x: torch.Tensor, p: float) -> torch.Tensor:
    """Inverted-dropout multipliers for ``x``: 0 with probability ``p``, else ``1 / (1 - p)``.

    ``torch.dropout`` draws one random number per unit, and on the CPU that draw, not the multiply,
    is the cost (docs/performance.md). Here each 64-bit random word is cut into four 16-bit numbers,
    a quarter of the draws: the same distribution up to p's 1 / 65,536 steps, from the same seeded
    generator (so a run still replays exactly), in a fraction of the time
    (benchmarks/test_dropout.py).
    """
    dropped = round(p * _LEVELS)
    if dropped >= _LEVELS:  # p within 1 / 131,072 of 1: every unit dropped (no 1 / 0 scale)
        return torch.zeros_like(x)
    n = x.numel()
    words = torch.empty((n + 3) // 4, dtype=torch.int64, device=x.device).random_(-(1 << 63), None)
    draws = words.view(torch.int16)[:n].view(x.shape)
    keep = draws >= dropped - _LEVELS // 2
    return keep.to(x.dtype).mul_(_LEVELS / (_LEVELS - dropped))


class Dropout(nn.Dropout):
    """``nn.Dropout`` (same options and repr) with a cheaper mask, :func:`dropout_mask`. The mask
    is a constant of the graph, so gradients of any order flow through ``x * mask`` as they do
    through torch's dropout (gradient penalties differentiate D twice)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        if self.p == 1:
            return x * 0
        return x * dropout_mask(x, self.p)
