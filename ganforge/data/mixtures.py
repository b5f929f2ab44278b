"""The classic 2-D Gaussian mixtures, exactly PacGAN's setups (Lin et al. 2018), sampled fresh.

``ring8``: 8 modes at (cos 2*pi*i/8, sin 2*pi*i/8), std 0.01. ``grid25``: 25 modes at
{-4,-2,0,2,4}^2, std 0.05. Modes are equally likely.
"""

from __future__ import annotations

import math

import torch

from ganforge.data.base import DataInfo, SampledDataset


class GaussianMixture(SampledDataset):
    """Equal-weight isotropic Gaussians at ``modes`` with standard deviation ``std``."""

    def __init__(self, modes: torch.Tensor, std: float) -> None:
        if not (isinstance(std, (int, float)) and std > 0):
            from ganforge.errors import ConfigError

            raise ConfigError(f"data.std must be a positive standard deviation such as 0.01, got {std!r}")
        self.modes = modes.to(torch.float32)
        self.std = float(std)
        self.info = DataInfo(sample_shape=(2,), value_range=None, modality="points")

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        which = torch.randint(len(self.modes), (n,), generator=generator)
        noise = torch.randn(n, 2, generator=generator)
        return self.modes[which] + self.std * noise


# PacGAN's 2-D experiments: 2-D noise, batches of 100. Declared as run defaults where the data
# sets are registered (``register(..., defaults=MIXTURE_DEFAULTS)``); a recipe, --config, flags
# and --set override them.
MIXTURE_DEFAULTS = {"z_dim": 2, "batch_size": 100}


def ring8(radius: float = 1.0, std: float = 0.01) -> GaussianMixture:
    """8 Gaussians on a circle (PacGAN: radius 1, std 0.01)."""
    angles = torch.arange(8, dtype=torch.float64) * (2 * math.pi / 8)
    return GaussianMixture(radius * torch.stack([angles.cos(), angles.sin()], dim=1), std)


def grid25(spacing: float = 2.0, std: float = 0.05) -> GaussianMixture:
    """25 Gaussians on a 5x5 grid at {-4,-2,0,2,4}^2 (PacGAN: std 0.05)."""
    axis = torch.arange(-2, 3, dtype=torch.float64) * spacing
    xs, ys = torch.meshgrid(axis, axis, indexing="ij")
    return GaussianMixture(torch.stack([xs.flatten(), ys.flatten()], dim=1), std)
