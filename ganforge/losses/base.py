"""What an adversarial loss provides to the trainer."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn


class GanLoss:
    """An adversarial objective on discriminator *logits*.

    ``defaults`` declares the training settings the loss needs (``n_critic``, ``optimizer``,
    ``lr_g``, ``lr_d``, ``betas``); the user's flags override them.
    """

    defaults: ClassVar[dict[str, Any]] = {}
    g_needs_real: ClassVar[bool] = False
    """True when :meth:`g_loss` compares with the real logits (relativistic losses): the trainer
    then also scores the real batch, without a graph, and passes ``real_logits``."""

    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        """The discriminator's (critic's) loss, to minimise."""
        raise NotImplementedError

    def g_loss(self, fake_logits: torch.Tensor, real_logits: torch.Tensor | None = None) -> torch.Tensor:
        """The generator's loss, to minimise. ``real_logits`` is given when ``g_needs_real``."""
        raise NotImplementedError

    def penalty(self, disc: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor | None:
        """An extra discriminator term (e.g. a gradient penalty), or ``None``."""
        return None

    def after_d_step(self, disc: nn.Module) -> None:
        """Called after each discriminator optimiser step (e.g. WGAN's weight clipping)."""
