"""Wasserstein GANs: weight clipping (Arjovsky et al. 2017) and gradient penalty (Gulrajani et al. 2017).

The zero-centred R1/R2 penalties of Mescheder et al. (2018), which that paper studies on
WGAN-style critics too, apply here as with every loss (``loss.r1``, ``loss.r2``, default 0 = off;
the training step adds them, see ganforge.losses.penalties): they are added to, not substituted
for, clipping or the one-centred WGAN-GP penalty.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from ganforge.errors import ConfigError
from ganforge.losses.base import GanLoss, R1R2Attributes
from ganforge.losses.regularizers import Scorer, penalty_weight


class WassersteinLoss(R1R2Attributes, GanLoss):
    """WGAN: critic maximises E[D(x)] - E[D(G(z))], weights clipped to [-clip, clip]."""

    defaults: ClassVar[dict[str, Any]] = {
        "n_critic": 5, "optimizer": "rmsprop", "lr_g": 5e-5, "lr_d": 5e-5,
    }

    def __init__(self, clip: float = 0.01, r1: float = 0.0, r2: float = 0.0) -> None:
        if clip <= 0:
            raise ConfigError(f"loss.clip must be positive, got {clip}")
        self.clip = float(clip)
        super().__init__(r1=r1, r2=r2)

    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        return fake_logits.mean() - real_logits.mean()

    def g_loss(self, fake_logits: torch.Tensor, real_logits: torch.Tensor | None = None) -> torch.Tensor:
        return -fake_logits.mean()

    @torch.no_grad()
    def after_d_step(self, disc: nn.Module) -> None:
        for p in disc.parameters():
            p.clamp_(-self.clip, self.clip)


class WassersteinGPLoss(WassersteinLoss):
    """WGAN-GP: no clipping; penalty weight * (||grad D(x_hat)|| - 1)^2 on random interpolates."""

    defaults: ClassVar[dict[str, Any]] = {
        "n_critic": 5, "optimizer": "adam", "lr_g": 1e-4, "lr_d": 1e-4, "betas": (0.0, 0.9),
    }

    def __init__(self, weight: float = 10.0, r1: float = 0.0, r2: float = 0.0) -> None:
        self.weight = penalty_weight("weight", weight)
        GanLoss.__init__(self, r1=r1, r2=r2)  # not WassersteinLoss's: WGAN-GP has no clip

    def penalty(self, disc: Scorer, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """The one-centred penalty on random interpolates, this loss's own term; R1/R2, when on,
        are the training step's."""
        eps = torch.rand((len(real),) + (1,) * (real.dim() - 1), device=real.device, dtype=real.dtype)
        x_hat = (eps * real + (1 - eps) * fake.detach()).requires_grad_(True)
        (grad,) = torch.autograd.grad(disc(x_hat).sum(), x_hat, create_graph=True)
        return self.weight * ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()

    def after_d_step(self, disc: nn.Module) -> None:
        return None
