"""Goodfellow et al. (2014): the minimax (saturating) loss and the non-saturating heuristic.

Written with softplus, never ``log(sigmoid(x))``: -log D(x) = softplus(-x) and
-log(1 - D(x)) = softplus(x) for logits x, exact and stable for any magnitude.

Both accept the zero-centred gradient penalties of Mescheder et al. (2018) as options:
``--set loss.r1=GAMMA`` adds (GAMMA/2) E_x ||grad D(x)||^2 on the real batch and
``--set loss.r2=GAMMA`` the same on the generated batch (see ganforge.losses.regularizers).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ganforge.losses.base import GanLoss
from ganforge.losses.regularizers import penalty_weight, r1_r2_penalty


class _SigmoidGanLoss(GanLoss):
    def __init__(self, r1: float = 0.0, r2: float = 0.0) -> None:
        self.r1, self.r2 = penalty_weight("r1", r1), penalty_weight("r2", r2)

    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        # -[log D(x) + log(1 - D(G(z)))]
        return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()

    def penalty(self, disc: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor | None:
        """R1 on the real batch and R2 on the generated one; ``None`` (free) when both are 0."""
        return r1_r2_penalty(disc, real, fake, r1=self.r1, r2=self.r2)


class MinimaxLoss(_SigmoidGanLoss):
    """Saturating minimax GAN: G minimises log(1 - D(G(z))). Options r1, r2 (default 0)."""

    def g_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:
        return -F.softplus(fake_logits).mean()  # log(1 - D) = -softplus(logit)


class NonSaturatingLoss(_SigmoidGanLoss):
    """Non-saturating GAN: G maximises log D(G(z)). Options r1, r2 (default 0)."""

    def g_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:
        return F.softplus(-fake_logits).mean()  # -log D = softplus(-logit)
