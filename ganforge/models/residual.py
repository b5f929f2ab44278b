"""A small residual generator and discriminator in the manner of R3GAN's StackedMNIST ablation
(Huang et al. 2024, "The GAN is dead; long live the GAN!"): plain residual blocks, no
normalisation anywhere, fix-up initialisation, bilinear resampling.

Each residual block is ``x + conv3x3(lrelu(conv3x3(lrelu(x))))`` (LeakyReLU 0.2). Without
normalisation the variance of the residual stream would grow with depth; as in Fixup (Zhang et
al. 2019) and R3GAN, the last convolution of every branch starts at zero, so each block starts
as the identity and the network as a shallow one, and the first convolution's initial weights
are scaled by ``blocks^-1/2``. (With ``spectral_norm`` a zero weight has no direction to
normalise: the last convolution then starts at the scaled initialisation too.)

Generator: noise -> linear -> a 4x4 map (7x7 for 28 px) -> per resolution a residual block,
then a bilinear 2x upsampling and a 1x1 convolution to the next resolution's channels -> a 1x1
convolution to the image channels, tanh. Discriminator: the mirror image, a 1x1 convolution
from the (packed) image, per resolution a residual block then a 1x1 convolution and 2x2
average pooling (bilinear 2x downsampling), then at the bottom a 3x3 convolution, a linear
layer to ``4 * width`` features and the logit. Channels are ``width`` at full resolution,
doubling at each halving up to ``4 * width``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ganforge.models.conv import (
    ClassCode,
    ConvClasses,
    ConvDiscriminator,
    ConvPack,
    GroupSize,
    Switch,
    Width,
    image_plan,
    output_layer,
)
from ganforge.options import checked_options

SLOPE = 0.2


def stage_channels(width: int, steps: int) -> list[int]:
    """Channels per resolution from the smallest (index 0) to full resolution (index ``steps``)."""
    return [width * min(2 ** (steps - i), 4) for i in range(steps + 1)]


class ResidualBlock(nn.Module):
    """``x + conv(lrelu(conv(lrelu(x))))``, fix-up initialised (see the module's notes)."""

    def __init__(self, channels: int, blocks: int, zero_last: bool = True) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        gain = math.sqrt(2.0 / (1.0 + SLOPE**2))
        for conv in (self.conv1, self.conv2):
            nn.init.normal_(conv.weight, 0.0, gain / math.sqrt(conv.weight[0].numel()) * blocks**-0.5)
            nn.init.zeros_(conv.bias)  # type: ignore[arg-type]  # always given a bias above
        if zero_last:
            nn.init.zeros_(self.conv2.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.leaky_relu(x, SLOPE))
        return x + self.conv2(F.leaky_relu(h, SLOPE))


class Resample(nn.Module):
    """Bilinear 2x upsampling or 2x2 average pooling (bilinear 2x downsampling); both are twice
    differentiable, which R1/R2 through D need."""

    def __init__(self, up: bool) -> None:
        super().__init__()
        self.up = up

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.up:
            return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
        return F.avg_pool2d(x, 2)

    def extra_repr(self) -> str:
        return "up" if self.up else "down"


@checked_options("gen")
class ResidualGenerator(ClassCode, nn.Module):
    """R3GAN-style residual generator without normalisation; ``width``: channels at full
    resolution (doubling towards the noise, at most ``4 * width``); ``classes=K``: a one-hot
    class code read off the noise, as the mlp generator's."""

    def __init__(self, z_dim: int, sample_shape: Sequence[int], value_range: Sequence[float] | None = None,
                 width: Width = 32, classes: ConvClasses | None = None) -> None:
        super().__init__()
        channels, start, ups = image_plan(sample_shape, "gen=resnet")
        classes = self._set_classes(classes or 0)
        chans = stage_channels(width, ups)
        self.project = nn.Sequential(nn.Linear(z_dim + classes, chans[0] * start * start),
                                     nn.Unflatten(1, (chans[0], start, start)))
        layers: list[nn.Module] = []
        for i in range(ups):
            layers += [ResidualBlock(chans[i], ups + 1), Resample(up=True), nn.Conv2d(chans[i], chans[i + 1], 1)]
        layers += [ResidualBlock(chans[-1], ups + 1), nn.LeakyReLU(SLOPE), nn.Conv2d(chans[-1], channels, 1)]
        self.net = nn.Sequential(*layers, *output_layer(value_range))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(self.project(self._with_code(z)))


@checked_options("disc")
class ResidualDiscriminator(ConvDiscriminator):
    """R3GAN-style residual discriminator without normalisation, one logit per sample.

    Options as the dcgan discriminator's: ``width`` (channels at full resolution, default 32),
    ``spectral_norm``, ``mbstd=G``, ``classes=K`` (projection on the last features), ``pack=M``.
    """

    def __init__(self, sample_shape: Sequence[int], width: Width = 32, spectral_norm: Switch | None = False,
                 mbstd: GroupSize | None = 0, classes: ConvClasses | None = None, pack: ConvPack | None = 1) -> None:
        super().__init__()
        channels, start, downs = image_plan(sample_shape, "disc=resnet")
        self._setup(pack or 1, mbstd or 0, classes or 0)
        chans = stage_channels(width, downs)[::-1]  # full resolution first
        zero_last = not spectral_norm
        layers: list[nn.Module] = [nn.Conv2d(self.pack * channels, chans[0], 1)]
        for i in range(downs):
            layers += [ResidualBlock(chans[i], downs, zero_last), nn.Conv2d(chans[i], chans[i + 1], 1),
                       Resample(up=False)]
        self.body = nn.Sequential(*layers)
        bottom = chans[-1]
        features = 4 * width
        self.tail = nn.Sequential(nn.LeakyReLU(SLOPE), nn.Conv2d(bottom + int(self.mbstd is not None), bottom, 3,
                                                                 padding=1),
                                  nn.LeakyReLU(SLOPE), nn.Flatten(), nn.Linear(bottom * start * start, features),
                                  nn.LeakyReLU(SLOPE))
        self._finish(features, bool(spectral_norm))
