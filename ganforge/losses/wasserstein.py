"""Wasserstein GANs: weight clipping (Arjovsky et al. 2017) and gradient penalty (Gulrajani et al. 2017).

Both also take the zero-centred R1/R2 penalties of Mescheder et al. (2018) as options
(``loss.r1``, ``loss.r2``, default 0 = off), which that paper studies on WGAN-style critics too;
they are added to, not substituted for, clipping or the one-centred WGAN-GP penalty.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from ganforge.errors import ConfigError
from ganforge.losses.base import GanLoss
from ganforge.losses.regularizers import penalty_weight, r1_r2_penalty


class WassersteinLoss(GanLoss):
    """WGAN: critic maximises E[D(x)] - E[D(G(z))], weights clipped to [-clip, clip]."""

    defaults: ClassVar[dict[str, Any]] = {
        "n_critic": 5, "optimizer": "rmsprop", "lr_g": 5e-5, "lr_d": 5e-5,
    }

    def __init__(self, clip: float = 0.01, r1: float = 0.0, r2: float = 0.0) -> None:
        if clip <= 0:
            raise ConfigError(f"loss.clip must be positive, got {clip}")
        self.clip = float(clip)
        self.r1, self.r2 = penalty_weight("r1", r1), penalty_weight("r2", r2)

    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        return fake_logits.mean() - real_logits.mean()

    def g_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:
        return -fake_logits.mean()

    def penalty(self, disc: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor | None:
        """The optional R1/R2 terms; ``None`` (free) when both are 0."""
        return r1_r2_penalty(disc, real, fake, r1=self.r1, r2=self.r2)

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
        self.r1, self.r2 = penalty_weight("r1", r1), penalty_weight("r2", r2)

    def penalty(self, disc: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        eps = torch.rand((len(real),) + (1,) * (real.dim() - 1), device=real.device, dtype=real.dtype)
        x_hat = (eps * real + (1 - eps) * fake.detach()).requires_grad_(True)
        (grad,) = torch.autograd.grad(disc(x_hat).sum(), x_hat, create_graph=True)
        gp = self.weight * ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()
        zero_centred = super().penalty(disc, real, fake)
        return gp if zero_centred is None else gp + zero_centred

    def after_d_step(self, disc: nn.Module) -> None:
        return None
