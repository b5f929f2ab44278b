"""A feature space that needs no download and no training: an untrained conv net with fixed weights.

Naeem et al. 2020 ("Reliable Fidelity and Diversity Metrics for Generative Models", section 5) show
that the embedding of a randomly initialised network serves precision, recall, density and
coverage where no trained embedding exists for the domain. ``random-conv`` is such an embedding
for images of any size (at least :data:`MIN_SIZE` pixels a side) and any channel count, in
[-1, 1]: five 3x3 convolutions (widths 32-64-128-256-256, the first four with stride 2, no bias)
with LeakyReLU 0.2, then the global average and the global maximum of the last layer's 256 maps,
512 numbers per image. Average and maximum together respond to colour, texture and shape, to
missing modes (recall, coverage) and to noise or artefacts (precision, density); the network
reads a 64x64 image in about 0.5 ms on two CPU threads.

Its numbers have no meaning outside ganforge: an FID in this space is comparable only with FIDs of
other ganforge runs on the same data, with the same number of samples and this extractor; never
with LeNet or Inception FIDs, nor with published numbers.

The weights are the same bits on every machine and every run. Each layer draws them from its own
``torch.Generator`` seeded with ``SEED + layer``, never the global RNG, as integers (Mersenne
Twister words, whose stream does not depend on the CPU); the integers become He-uniform weights
with IEEE arithmetic only (exact in float64, one rounding to float32). ``torch.randn`` is not used
because its float32 path is vectorised per CPU (AVX2 and the portable kernel draw different
numbers from the same seed). :func:`fingerprint` hashes the weights; the tests pin it.
"""

from __future__ import annotations

import hashlib
import math
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ganforge.errors import ConfigError

SEED = 2020
WIDTHS = (32, 64, 128, 256, 256)
STRIDES = (2, 2, 2, 2, 1)
KERNEL = 3
SLOPE = 0.2
FEATURE_DIM = 2 * WIDTHS[-1]
MIN_SIZE = 8
"""Smaller images are refused: four stride-2 layers leave nothing of a 4x4 image to pool."""


def fixed_uniform(shape: tuple[int, ...], seed: int, bound: float) -> torch.Tensor:
    """Float32 weights uniform in (-bound, bound), the same bits on every machine: 24-bit integers
    from a generator of its own, mapped to ((k + 0.5) / 2^23 - 1) * bound (exact in float64 until
    the product; then two correctly rounded IEEE operations)."""
    generator = torch.Generator().manual_seed(seed)
    k = torch.randint(0, 2**24, shape, generator=generator, dtype=torch.int64)
    return (((k.double() + 0.5) / 2**23 - 1.0) * bound).float()


class RandomConvNet(nn.Module):
    """The fixed network for ``channels`` input channels; :meth:`forward` gives (N, 512) features."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
            raise ConfigError(f"random-conv needs a positive channel count, got {channels!r}")
        self.channels = channels
        gain = math.sqrt(2.0 / (1.0 + SLOPE**2))  # He initialisation for a leaky ReLU
        fan_in = channels
        for i, width in enumerate(WIDTHS):
            bound = gain * math.sqrt(3.0 / (fan_in * KERNEL * KERNEL))  # uniform: variance bound^2 / 3
            self.register_buffer(f"w{i}", fixed_uniform((width, fan_in, KERNEL, KERNEL), SEED + i, bound))
            fan_in = width

    def weights(self) -> list[torch.Tensor]:
        return [getattr(self, f"w{i}") for i in range(len(WIDTHS))]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for weight, stride in zip(self.weights(), STRIDES, strict=True):
            x = F.leaky_relu(F.conv2d(x, weight, stride=stride, padding=KERNEL // 2), SLOPE, inplace=True)
        return torch.cat([x.mean(dim=(2, 3)), x.amax(dim=(2, 3))], dim=1)


def fingerprint(channels: int = 3) -> str:
    """SHA-256 of the network's weights for ``channels`` inputs (shapes, then little-endian float32
    bytes, layer by layer): the same string on every machine, or the feature space has changed."""
    digest = hashlib.sha256()
    for weight in RandomConvNet(channels).weights():
        digest.update(repr(tuple(weight.shape)).encode())
        digest.update(weight.contiguous().numpy().astype("<f4").tobytes())
    return digest.hexdigest()


class RandomConvExtractor:
    """FeatureExtractor over :class:`RandomConvNet`: 512-d features, no class probabilities (so
    the Inception-style score and the legible share do not apply in this space)."""

    feature_dim: ClassVar[int] = FEATURE_DIM
    min_size: ClassVar[int] = MIN_SIZE
    comparable: ClassVar[str] = ""
    """Empty: its numbers compare only with other ganforge runs evaluated in this space."""

    def __init__(self, device: str = "cpu", batch_size: int = 500) -> None:
        self.device, self.batch_size = torch.device(device), batch_size
        self._nets: dict[int, RandomConvNet] = {}

    def reads(self, shape: tuple[int, ...]) -> bool:
        """Whether samples of ``shape`` (C, H, W) can be read: any C, H and W >= ``min_size``."""
        return len(shape) == 3 and shape[0] >= 1 and min(shape[1:]) >= MIN_SIZE

    def net(self, channels: int) -> RandomConvNet:
        if channels not in self._nets:
            self._nets[channels] = RandomConvNet(channels).eval().to(self.device)
        return self._nets[channels]

    @torch.no_grad()
    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 512) float32 features of images (N, C, H, W) in [-1, 1], on the CPU."""
        if x.ndim != 4 or not self.reads(tuple(x.shape[1:])):
            raise ConfigError(f"the random-conv extractor reads images of shape (C, H, W) with H and W at least "
                              f"{MIN_SIZE} pixels, got samples of shape {tuple(x.shape[1:])}; make the images "
                              f"larger (--set data.size=32) or choose metrics that work on raw samples")
        net = self.net(int(x.shape[1]))
        out = [net(x[i: i + self.batch_size].to(self.device, torch.float32)).cpu()
               for i in range(0, len(x), self.batch_size)]
        return torch.cat(out) if out else torch.empty(0, FEATURE_DIM)
