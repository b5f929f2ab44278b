"""An exponential moving average of the generator's weights (``--ema DECAY``, default 0.999).

Why: the generator's weights oscillate around a good point as G and D chase each other; their
running average sits closer to it, so it draws cleaner samples than the last iterate (Yazici et
al. 2019, "The unusual effectiveness of averaging in GAN training"; used by ProGAN, StyleGAN and
R3GAN). The average is what the sample pictures, ``ganforge sample``, ``ganforge eval`` and
``--eval-every`` use; the trained generator itself keeps training unchanged.

Batch normalisation needs one more thing: its running statistics describe the activations of the
weights that produced them, and an averaged copy of the weights has activations of its own. Copying
the live generator's statistics into the average (what ganforge did before, and what a hand-written
EMA usually does) normalises the averaged network with the wrong mean and variance, which on the
MNIST recipe nearly doubled its LeNet-FID (docs/experiments.md). So the average's statistics are
measured on the average itself, on fixed batches of noise, whenever it is about to draw or be saved
(BigGAN's "standing statistics", Brock et al. 2019).
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

CALIBRATION_BATCH_SIZE = 2048
"""Noise samples in each batch the averaged generator's batch-norm statistics are measured on.
Each batch is one fixed-order reduction of :class:`ganforge.nn.BatchNorm1d` (the same bits with
any thread count). Generators of large images get smaller batches (:func:`calibration_size`), so
a batch's activations stay within memory."""
CALIBRATION_BATCHES = 4
"""Batches averaged: 8,192 samples for MNIST; one batch left the FID depending on the calibration
noise's seed, four are enough (docs/experiments.md, "The average's own BatchNorm statistics")."""
CALIBRATION_SEED = 20190124


def calibration_size(sample_shape: tuple[int, ...]) -> int:
    """Samples per calibration batch: 2,048 up to 1,024 values per sample (MNIST's 784), then
    fewer as samples grow (two million output values a batch), never under 128."""
    numel = math.prod(sample_shape)
    return max(128, min(CALIBRATION_BATCH_SIZE, (1 << 21) // max(numel, 1)))


def batch_norms(module: nn.Module) -> list[_BatchNorm]:
    """The batch-norm layers of ``module`` that keep running statistics."""
    return [m for m in module.modules() if isinstance(m, _BatchNorm) and m.track_running_stats]


def _batches_tracked(norm: _BatchNorm) -> torch.Tensor:
    """The counter of a norm that keeps running statistics (one that :func:`batch_norms` returns)."""
    assert norm.num_batches_tracked is not None
    return norm.num_batches_tracked


@torch.no_grad()
def recalibrate_batch_norms(generator: nn.Module, z_dim: int, batch_size: int = CALIBRATION_BATCH_SIZE,
                            batches: int = CALIBRATION_BATCHES, seed: int = CALIBRATION_SEED) -> bool:
    """Set the running statistics of ``generator``'s batch norms to the average, over ``batches``
    batches of ``batch_size`` samples of fixed noise, of each batch's statistics (the mean of the
    batch means, exactly the mean over all samples; the mean of the batch variances, which leaves
    out the batch means' own spread, a ``1 / batch_size`` part). Return whether there are any.
    Only the norm layers switch to training mode (dropout and the like stay as they were);
    deterministic given the weights, so recalibrating twice gives the same bits, and a resumed run
    the same as an unbroken one."""
    norms = batch_norms(generator)
    if not norms:
        return False
    device = next(generator.parameters()).device
    rng = torch.Generator().manual_seed(seed)
    saved = [(m, m.training, m.momentum, _batches_tracked(m).clone()) for m in norms]
    for m in norms:
        m.train()
    try:
        for i in range(batches):
            for m in norms:
                m.momentum = 1.0 / (i + 1)  # a running mean of the batches' statistics
            generator(torch.randn(batch_size, z_dim, generator=rng).to(device))
    finally:
        for m, training, momentum, tracked in saved:  # the counter too: measuring twice is the same bits
            m.train(training)
            m.momentum = momentum
            _batches_tracked(m).copy_(tracked)
    return True


class EmaGenerator:
    """Keeps ``module``, a frozen copy of the generator, at the average of its weights.

    The decay warms up as ``min(decay, (1 + r step) / (10 + r step))`` so the first steps' random
    initialisation does not linger in the average for thousands of steps: the average spans about
    ``r step / 9`` steps until that reaches ``1 / (1 - decay)``. ``r = 1`` (``rampup``'s default)
    is TensorFlow's ``num_updates`` warm-up; it holds a 12,000-step run's average to at most its
    last 1,300 steps (any decay of 0.99925 or more gives the same bits), and a larger ``r`` lets
    the decay take over sooner (the idea of StyleGAN2-ADA's ``ema_rampup``, not its units).
    Buffers are copied from the live generator (a spectral norm's power-iteration vectors, for
    one), except batch-norm statistics, which are measured on the average itself (see the module's
    docstring) when :meth:`current` is asked for it.
    """

    def __init__(self, generator: nn.Module, decay: float, z_dim: int,
                 calibration_batch: int = CALIBRATION_BATCH_SIZE, rampup: float = 1.0) -> None:
        self.decay = float(decay)
        self.rampup = float(rampup)
        self.z_dim = int(z_dim)
        self.calibration_batch = int(calibration_batch)
        self.module = copy.deepcopy(generator).eval().requires_grad_(False)
        self._targets: list[torch.Tensor] = list(self.module.parameters())
        self._target_buffers = list(self.module.buffers())
        self._has_norms = bool(batch_norms(self.module))
        self._stale = self._has_norms

    def decay_at(self, step: int) -> float:
        grown = self.rampup * step
        return min(self.decay, (1 + grown) / (10 + grown))

    @torch.no_grad()
    def update(self, generator: nn.Module, step: int) -> None:
        """Move the average towards ``generator``'s current weights (one fused pass)."""
        sources = [p.detach() for p in generator.parameters()]
        torch._foreach_lerp_(self._targets, sources, 1.0 - self.decay_at(step))
        for target, source in zip(self._target_buffers, generator.buffers(), strict=False):
            target.copy_(source)  # other state (spectral-norm vectors) follows the live G; norms are re-measured
        self._stale = self._has_norms

    def current(self) -> nn.Module:
        """The averaged generator, its batch-norm statistics measured for its present weights."""
        if self._stale:
            recalibrate_batch_norms(self.module, self.z_dim, self.calibration_batch)
            self._stale = False
        return self.module

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.current().state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.module.load_state_dict(state)
        self._stale = self._has_norms  # a live generator's statistics, or an older run's
