"""What an adversarial loss provides to the trainer."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch import nn

from ganforge.losses.regularizers import Penalties, Scorer


class GanLoss:
    """An adversarial objective on discriminator *logits*.

    ``defaults`` declares the training settings the loss needs (``n_critic``, ``optimizer``,
    ``lr_g``, ``lr_d``, ``betas``); the user's flags override them.

    ``default_penalties`` declares the loss's R1/R2 weights (``{"r1": ..., "r2": ...}``, each 0
    when left out). The training step applies R1 and R2 for every loss, so a loss declares only
    its weights, never the penalty itself; ``--set loss.r1=...`` / ``loss.r2=...`` override them
    (see :mod:`ganforge.losses.penalties`).
    """

    defaults: ClassVar[dict[str, Any]] = {}
    default_penalties: ClassVar[Mapping[str, float]] = {}
    g_needs_real: ClassVar[bool] = False
    """True when :meth:`g_loss` compares with the real logits (relativistic losses): the trainer
    then also scores the real batch, without a graph, and passes ``real_logits``."""

    def __init__(self, r1: float | None = None, r2: float | None = None) -> None:
        """``r1`` / ``r2`` replace the declared default weight; ``None`` keeps it."""
        given = {name: value for name, value in (("r1", r1), ("r2", r2)) if value is not None}
        if given:
            self.penalties = Penalties.from_mapping(self.default_penalties).replace(**given)

    @property
    def penalties(self) -> Penalties:
        """The R1/R2 weights the training step applies with this loss: the class's
        ``default_penalties`` until set (by the constructor or by ``ganforge run``'s options).
        A property rather than an attribute set in ``__init__``, so that a subclass whose own
        ``__init__`` never calls ``super().__init__()`` still has its declared weights."""
        own = self.__dict__.get("_penalties")
        return own if own is not None else Penalties.from_mapping(self.default_penalties)

    @penalties.setter
    def penalties(self, value: Penalties) -> None:
        if not isinstance(value, Penalties):
            raise TypeError(f"loss.penalties must be a ganforge.losses.Penalties, got {type(value).__name__}")
        self.__dict__["_penalties"] = value

    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        """The discriminator's (critic's) loss, to minimise."""
        raise NotImplementedError

    def g_loss(self, fake_logits: torch.Tensor, real_logits: torch.Tensor | None = None) -> torch.Tensor:
        """The generator's loss, to minimise. ``real_logits`` is given when ``g_needs_real``."""
        raise NotImplementedError

    def penalty(self, disc: Scorer, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor | None:
        """A discriminator term of this loss's own (e.g. WGAN-GP's one-centred gradient penalty),
        or ``None``. R1 and R2 are not written here: the training step adds them for every loss
        from :attr:`penalties`."""
        return None

    def after_d_step(self, disc: nn.Module) -> None:
        """Called after each discriminator optimiser step (e.g. WGAN's weight clipping)."""


class R1R2Attributes:
    """``loss.r1`` and ``loss.r2``, read-only, for the built-in losses that have had them since
    before the weights moved to :attr:`GanLoss.penalties`."""

    penalties: Penalties

    @property
    def r1(self) -> float:
        return self.penalties.r1

    @property
    def r2(self) -> float:
        return self.penalties.r2
