"""Example third-party ganforge plugin: two more adversarial losses.

Install with ``pip install ./plugins/ganforge-losses``; then ``ganforge list`` shows ``hinge``
and ``lsgan`` and ``ganforge run --loss hinge`` uses them. This file is the whole plugin.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ganforge import hookimpl
from ganforge.losses import GanLoss


class HingeLoss(GanLoss):
    """Hinge loss (Lim & Ye 2017; used by SAGAN and BigGAN)."""

    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()

    def g_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:
        return -fake_logits.mean()


class LeastSquaresLoss(GanLoss):
    """Least-squares GAN (Mao et al. 2017) with targets a=0 (fake), b=1 (real), c=1."""

    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        return 0.5 * ((real_logits - 1) ** 2).mean() + 0.5 * (fake_logits**2).mean()

    def g_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:
        return 0.5 * ((fake_logits - 1) ** 2).mean()


@hookimpl
def ganforge_register_losses(register) -> None:  # type: ignore[no-untyped-def]
    register("hinge", HingeLoss)
    register("lsgan", LeastSquaresLoss)
