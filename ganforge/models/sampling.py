"""Drawing samples from a generator: the one place that puts it in eval mode and back.

Every picture, evaluation, ``ganforge sample`` and plugin sees the generator as it is used after
training: BatchNorm on its running statistics, dropout off. The mode is restored afterwards, so
drawing between training steps changes nothing about the next step.
"""

from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def draw(generator: nn.Module, noise: torch.Tensor, batch_size: int | None = None) -> torch.Tensor:
    """``generator(noise)`` in eval mode, as float32 on the noise's device, ``batch_size`` rows at a
    time (all at once when ``None``)."""
    was_training = generator.training
    generator.eval()
    try:
        chunks = noise.split(batch_size) if batch_size else (noise,)
        return torch.cat([generator(chunk).float() for chunk in chunks])
    finally:
        generator.train(was_training)


def seeded_noise(n: int, z_dim: int, seed: int) -> torch.Tensor:
    """``n`` rows of standard normal noise from a generator of its own (the global RNG untouched)."""
    rng = torch.Generator().manual_seed(seed)
    return torch.randn(n, z_dim, generator=rng)
