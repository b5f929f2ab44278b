"""The classic MNIST MLP GAN, built on the fused dense + activation op.

Generator: z -> 256 -> 512 -> 1024 -> data, ReLU, output activation matched to the data's range.
Discriminator: data -> 512 -> 256 -> 1, LeakyReLU(0.2), raw logits out (losses apply the
numerically stable sigmoid forms themselves).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from ganforge.nn import FusedDense


def _hidden(hidden: Sequence[int] | int, name: str) -> tuple[int, ...]:
    sizes = (hidden,) if isinstance(hidden, int) else tuple(hidden)
    if not sizes or not all(isinstance(h, int) and h > 0 for h in sizes):
        from ganforge.errors import ConfigError

        raise ConfigError(f"{name}.hidden must be positive integers such as 256,512; got {hidden!r}")
    return sizes


class OutputRange(nn.Module):
    """Affine map from tanh's (-1, 1) to the data's ``(lo, hi)``; identity for (-1, 1)."""

    def __init__(self, lo: float, hi: float) -> None:
        super().__init__()
        self.scale, self.shift = (hi - lo) / 2.0, (hi + lo) / 2.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale + self.shift


class MLPGenerator(nn.Module):
    """MLP generator (z-100, 256, 512, 1024, data; ReLU); tanh out for bounded data, linear else."""

    def __init__(self, z_dim: int, sample_shape: Sequence[int],
                 value_range: Sequence[float] | None = None,
                 hidden: Sequence[int] | int = (256, 512, 1024)) -> None:
        super().__init__()
        self.sample_shape = tuple(sample_shape)
        sizes = (z_dim, *_hidden(hidden, "gen"))
        layers: list[nn.Module] = [FusedDense(i, o, act="relu") for i, o in zip(sizes, sizes[1:])]
        out_act = "none" if value_range is None else "tanh"
        layers.append(FusedDense(sizes[-1], math.prod(self.sample_shape), act=out_act))
        if value_range is not None and tuple(value_range) != (-1.0, 1.0):
            layers.append(OutputRange(*value_range))
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(len(z), *self.sample_shape)


class MinibatchStd(nn.Module):
    """Append the batch's mean feature standard deviation as one extra feature (Karras et al. 2018).

    A collapsed generator produces batches with almost no spread; this feature lets the
    discriminator see that, which is the cheapest strong defence against mode collapse.
    """

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        spread = h.std(dim=0, unbiased=False).mean() if len(h) > 1 else h.new_zeros(())
        return torch.cat([h, spread.expand(len(h), 1)], dim=1)


class MLPDiscriminator(nn.Module):
    """MLP discriminator (data, 512, 256, 1; LeakyReLU 0.2) returning one logit per sample.

    Two defaults go beyond the tutorial's bare MLP, because on the 4,000 bundled digits it
    collapses to a single mode within a few thousand steps (measured: per-pixel spread across
    samples fell to 0.03): dropout 0.3 after each hidden layer (as in Goodfellow et al.'s own MNIST
    discriminator) and a minibatch-standard-deviation feature before the output layer.
    ``--set disc.dropout=0 --set disc.mbstd=false`` gives the bare network.
    """

    def __init__(self, sample_shape: Sequence[int], hidden: Sequence[int] | int = (512, 256),
                 slope: float = 0.2, dropout: float = 0.3, mbstd: bool = True) -> None:
        super().__init__()
        sizes = (math.prod(sample_shape), *_hidden(hidden, "disc"))
        layers: list[nn.Module] = []
        for i, o in zip(sizes, sizes[1:]):
            layers.append(FusedDense(i, o, act="leaky_relu", alpha=slope))
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
        if mbstd:
            layers.append(MinibatchStd())
        layers.append(FusedDense(sizes[-1] + int(mbstd), 1, act="none"))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(1)).squeeze(1)
