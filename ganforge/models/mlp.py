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

LOW_DIM = 16  # samples with at most this many values (the 2-D mixtures) get PacGAN-style networks


def low_dimensional(sample_shape: Sequence[int]) -> bool:
    return math.prod(sample_shape) <= LOW_DIM


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
    """MLP generator (z-100, 256, 512, 1024, data; ReLU); tanh out for bounded data, linear else.

    ``norm="batch"`` puts BatchNorm between each hidden layer's product and its ReLU (as in
    PacGAN's and DCGAN's generators); the hidden layers then run a fused dense + BatchNorm + ReLU
    instead of one fused dense+ReLU.

    Defaults depend on the data: images get the tutorial's network above; low-dimensional data
    (at most 16 values, e.g. the 2-D mixtures) gets PacGAN's 2-D generator, 4 x 400 with
    BatchNorm (measured on grid25, 5k steps: 23/25 modes and 40 % high-quality samples, against
    21/25 and 2 % with the MNIST network).
    """

    def __init__(self, z_dim: int, sample_shape: Sequence[int],
                 value_range: Sequence[float] | None = None,
                 hidden: Sequence[int] | int | None = None, norm: str | None = None) -> None:
        super().__init__()
        small = low_dimensional(sample_shape)
        hidden = hidden if hidden is not None else ((400,) * 4 if small else (256, 512, 1024))
        norm = norm if norm is not None else ("batch" if small else "none")
        if norm not in ("none", "batch"):
            from ganforge.errors import ConfigError

            raise ConfigError(f"gen.norm must be 'none' or 'batch', got {norm!r}")
        self.sample_shape = tuple(sample_shape)
        sizes = (z_dim, *_hidden(hidden, "gen"))
        layers: list[nn.Module] = []
        for i, o in zip(sizes, sizes[1:]):
            if norm == "batch":
                layers += [FusedDense(i, o, act="none", bias=False), nn.BatchNorm1d(o), nn.ReLU()]
            else:
                layers.append(FusedDense(i, o, act="relu"))
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
    ``--set disc.dropout=0 --set disc.mbstd=false`` gives the bare network. Low-dimensional data
    (the 2-D mixtures) gets PacGAN's 2-D size instead, 3 x 200, with neither (both lowered the
    share of high-quality samples there).
    """

    def __init__(self, sample_shape: Sequence[int], hidden: Sequence[int] | int | None = None,
                 slope: float = 0.2, dropout: float | None = None, mbstd: bool | None = None) -> None:
        super().__init__()
        small = low_dimensional(sample_shape)
        hidden = hidden if hidden is not None else ((200,) * 3 if small else (512, 256))
        dropout = dropout if dropout is not None else (0.0 if small else 0.3)
        mbstd = mbstd if mbstd is not None else not small
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

    def forward_pair(self, real: torch.Tensor, fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(self(real), self(fake))`` in one pass over both batches stacked: every layer runs one
        GEMM of twice the rows, which is cheaper than two. The minibatch-std feature is still
        computed over each batch on its own, so the result equals two separate calls."""
        n = len(real)
        h = torch.cat([real.flatten(1), fake.flatten(1)])
        for layer in self.net:
            h = torch.cat([layer(h[:n]), layer(h[n:])]) if isinstance(layer, MinibatchStd) else layer(h)
        logits = h.squeeze(1)
        return logits[:n], logits[n:]
