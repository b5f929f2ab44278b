"""The paper's DCGAN, BatchNorm in D included:
``ganforge run --gen dcgan-bn --data folder --set data.root=DIR``.

ganforge itself ships ``dcgan`` (and ``resnet``) networks; its ``dcgan`` discriminator leaves out
BatchNorm, because BatchNorm makes a sample's logit depend on the rest of its batch (R1's
per-sample gradients, packing and the pair pass assume it does not). This example plugin
registers the paper's networks as they were, under their own name ``dcgan-bn``, to show how a
third-party package adds a network variant beside the built-in ones.

Radford, Metz and Chintala (2016): the generator projects the noise to a 4x4 (or 7x7 for 28-pixel
images) map and doubles the resolution with stride-2 transposed convolutions, BatchNorm and ReLU
until the image size, ending in tanh; the discriminator halves it with stride-2 convolutions and
LeakyReLU 0.2 (BatchNorm after the first layer, none at the input), ending in one logit. Both
are sized from the data's ``(channels, height, width)``: square 28, 32 or 64 pixels, 1 or 3
channels. ``width`` is the channel count of the widest layer (64 in the paper's discriminator's
first layer, doubled at each step). ``--set disc.spectral_norm=true`` normalises every layer of
D (Miyato et al. 2018) and then drops its BatchNorm, as SNGAN does.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from ganforge import hookimpl
from ganforge.errors import ConfigError

SIZES = (28, 32, 64)


def _plan(sample_shape: Sequence[int]) -> tuple[int, int, int]:
    """(channels, start resolution, number of upsamplings) for a supported image shape."""
    if len(sample_shape) != 3 or sample_shape[1] != sample_shape[2] or sample_shape[1] not in SIZES \
            or sample_shape[0] not in (1, 3):
        raise ConfigError(f"dcgan-bn needs square images of {', '.join(map(str, SIZES))} pixels with 1 or 3 channels, "
                          f"got shape {tuple(sample_shape)}; for your own images use --data folder "
                          f"--set data.size=32 (or 28, 64)")
    channels, size = sample_shape[0], sample_shape[1]
    start = 7 if size == 28 else 4
    return channels, start, int(math.log2(size // start))


def _width(width: object, name: str) -> int:
    if isinstance(width, bool) or not isinstance(width, int) or not 4 <= width <= 1024:
        raise ConfigError(f"{name}.width must be a whole number of channels from 4 to 1024, such as "
                          f"--set {name}.width=64; got {width!r}")
    return width


class DCGANGenerator(nn.Module):
    def __init__(self, z_dim: int, sample_shape: Sequence[int], value_range: Sequence[float] | None = None,
                 width: int = 64) -> None:
        super().__init__()
        channels, start, ups = _plan(sample_shape)
        width = _width(width, "gen")
        top = width * 2 ** (ups - 1)
        self.project = nn.Sequential(nn.Linear(z_dim, top * start * start, bias=False),
                                     nn.Unflatten(1, (top, start, start)), nn.BatchNorm2d(top), nn.ReLU(True))
        layers: list[nn.Module] = []
        c = top
        for i in range(ups):
            last = i == ups - 1
            out = channels if last else c // 2
            layers.append(nn.ConvTranspose2d(c, out, 4, 2, 1, bias=last))
            layers += [nn.Tanh()] if last else [nn.BatchNorm2d(out), nn.ReLU(True)]
            c = out
        self.net = nn.Sequential(*layers)
        lo, hi = value_range if value_range is not None else (-1.0, 1.0)
        self.scale, self.shift = (hi - lo) / 2, (hi + lo) / 2
        for m in self.modules():  # DCGAN's initialisation: N(0, 0.02), BatchNorm scale N(1, 0.02)
            _init(m)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.net(self.project(z))
        return x if (self.scale, self.shift) == (1.0, 0.0) else x * self.scale + self.shift


class DCGANDiscriminator(nn.Module):
    def __init__(self, sample_shape: Sequence[int], width: int = 64, spectral_norm: bool = False) -> None:
        super().__init__()
        channels, start, downs = _plan(sample_shape)
        width = _width(width, "disc")
        if not isinstance(spectral_norm, bool):
            raise ConfigError(f"disc.spectral_norm must be true or false, got {spectral_norm!r}")
        norm = nn.utils.parametrizations.spectral_norm if spectral_norm else (lambda layer: layer)
        layers: list[nn.Module] = []
        c_in, c = channels, width
        for i in range(downs):
            layers.append(norm(nn.Conv2d(c_in, c, 4, 2, 1, bias=i == 0 or spectral_norm)))
            if i > 0 and not spectral_norm:
                layers.append(nn.BatchNorm2d(c))
            layers.append(nn.LeakyReLU(0.2, True))
            c_in, c = c, c * 2
        layers += [nn.Flatten(), norm(nn.Linear(c_in * start * start, 1))]
        self.net = nn.Sequential(*layers)
        for m in self.modules():
            _init(m)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(1)


def _init(m: nn.Module) -> None:
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)) and not hasattr(m, "parametrizations"):
        nn.init.normal_(m.weight, 0.0, 0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


@hookimpl
def ganforge_register_generators(register) -> None:  # type: ignore[no-untyped-def]
    register("dcgan-bn", DCGANGenerator, "DCGAN generator as in the paper (Radford 2016): transposed convolutions, "
             "BatchNorm, "
             "ReLU, tanh; 28/32/64-pixel images, 1 or 3 channels; option width")


@hookimpl
def ganforge_register_discriminators(register) -> None:  # type: ignore[no-untyped-def]
    register("dcgan-bn", DCGANDiscriminator, "DCGAN discriminator as in the paper: strided convolutions, "
             "LeakyReLU 0.2, BatchNorm; options width, spectral_norm")
