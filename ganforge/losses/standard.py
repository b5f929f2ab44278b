"""Goodfellow et al. (2014): the minimax (saturating) loss and the non-saturating heuristic.

Written with softplus, never ``log(sigmoid(x))``: -log D(x) = softplus(-x) and
-log(1 - D(x)) = softplus(x) for logits x, exact and stable for any magnitude.

The zero-centred gradient penalties of Mescheder et al. (2018), ``--set loss.r1=GAMMA`` for
(GAMMA/2) E_x ||grad D(x)||^2 on the real batch and ``--set loss.r2=GAMMA`` for the same on the
generated batch, are the training step's, as for every loss (see ganforge.losses.penalties); both
are off by default here. The constructors still take ``r1`` and ``r2`` for use from Python.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ganforge.losses.base import GanLoss, R1R2Attributes


class _SigmoidGanLoss(R1R2Attributes, GanLoss):
    def __init__(self, r1: float = 0.0, r2: float = 0.0) -> None:
        super().__init__(r1=r1, r2=r2)

    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        # -[log D(x) + log(1 - D(G(z)))]
        return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


class MinimaxLoss(_SigmoidGanLoss):
    """Saturating minimax GAN: G minimises log(1 - D(G(z))). Options r1, r2 (default 0)."""

    def g_loss(self, fake_logits: torch.Tensor, real_logits: torch.Tensor | None = None) -> torch.Tensor:
        return -F.softplus(fake_logits).mean()  # log(1 - D) = -softplus(logit)


class NonSaturatingLoss(_SigmoidGanLoss):
    """Non-saturating GAN: G maximises log D(G(z)). Options r1, r2 (default 0)."""

    def g_loss(self, fake_logits: torch.Tensor, real_logits: torch.Tensor | None = None) -> torch.Tensor:
        return F.softplus(-fake_logits).mean()  # -log D = softplus(-logit)
