"""An exponential moving average of the generator's weights (``--ema DECAY``, default 0.999).

Why: the generator's weights oscillate around a good point as G and D chase each other; their
running average sits closer to it, so it draws cleaner samples than the last iterate (Yazici et
al. 2019, "The unusual effectiveness of averaging in GAN training"; used by ProGAN, StyleGAN and
R3GAN). The average is what the sample pictures, ``ganforge sample``, ``ganforge eval`` and
``--eval-every`` use; the trained generator itself keeps training unchanged.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class EmaGenerator:
    """Keeps ``module``, a frozen copy of the generator, at the average of its weights.

    The decay warms up as ``min(decay, (1 + step) / (10 + step))`` so the first steps' random
    initialisation does not linger in the average for thousands of steps. Buffers (batch-norm
    running statistics) are copied, not averaged: they already are running averages.
    """

    def __init__(self, generator: nn.Module, decay: float) -> None:
        self.decay = float(decay)
        self.module = copy.deepcopy(generator).eval().requires_grad_(False)
        self._targets = list(self.module.parameters())
        self._target_buffers = list(self.module.buffers())

    def decay_at(self, step: int) -> float:
        return min(self.decay, (1 + step) / (10 + step))

    @torch.no_grad()
    def update(self, generator: nn.Module, step: int) -> None:
        """Move the average towards ``generator``'s current weights (one fused pass)."""
        sources = [p.detach() for p in generator.parameters()]
        torch._foreach_lerp_(self._targets, sources, 1.0 - self.decay_at(step))
        for target, source in zip(self._target_buffers, generator.buffers()):
            target.copy_(source)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.module.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.module.load_state_dict(state)
