"""Goodfellow et al. (2014): the minimax (saturating) loss and the non-saturating heuristic.

Written with softplus, never ``log(sigmoid(x))``: -log D(x) = softplus(-x) and
-log(1 - D(x)) = softplus(x) for logits x, exact and stable for any magnitude.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ganforge.losses.base import GanLoss


class _SigmoidGanLoss(GanLoss):
    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        # -[log D(x) + log(1 - D(G(z)))]
        return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


class MinimaxLoss(_SigmoidGanLoss):
    """Saturating minimax GAN: G minimises log(1 - D(G(z)))."""

    def g_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:
        return -F.softplus(fake_logits).mean()  # log(1 - D) = -softplus(logit)


class NonSaturatingLoss(_SigmoidGanLoss):
    """Non-saturating GAN: G maximises log D(G(z))."""

    def g_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:
        return F.softplus(-fake_logits).mean()  # -log D = softplus(-logit)
