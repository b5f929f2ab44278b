"""DCGAN (Radford, Metz and Chintala 2016), sized from the data's ``(channels, height, width)``.

Generator: the noise projected to a 4x4 map (7x7 for 28-pixel images) of ``width * 2^(k-1)``
channels, then k stride-2 transposed 4x4 convolutions halving the channels and doubling the
resolution, BatchNorm and ReLU after each but the last, tanh out (mapped to the data's range).
Discriminator: k stride-2 4x4 convolutions from ``width`` channels, doubling, LeakyReLU 0.2,
then one linear logit; ``hidden=H`` puts a dense layer of H units (LeakyReLU 0.2, the project's
fused dense + bias + activation op) before it, as
the MNIST discriminators of InfoGAN (Chen et al. 2016) and TF-GAN do (conv 64, conv 128, dense
1024): two 4x4 convolutions see 10x10-pixel patches, so without it D judges a 28-pixel digit
only through a linear sum of local features. The paper's N(0, 0.02) initialisation.

One departure from the paper: no BatchNorm in D. BatchNorm mixes the samples of a batch, so a
sample's logit would depend on its neighbours: R1's per-sample input gradients, the pair pass
(real and fake scored together) and PacGAN's packs all assume it does not. The paper's D with
BatchNorm is the example plugin ``plugins/ganforge-dcgan`` (``dcgan-bn``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn

from ganforge.models.conv import (
    ClassCode,
    ConvClasses,
    ConvDiscriminator,
    ConvPack,
    DenseUnits,
    GroupSize,
    Switch,
    Width,
    image_plan,
    output_layer,
)
from ganforge.nn import FusedDense
from ganforge.options import checked_options


def _init(module: nn.Module) -> None:
    """DCGAN's initialisation: weights N(0, 0.02), BatchNorm scales N(1, 0.02), biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


@checked_options("gen")
class DCGANGenerator(ClassCode, nn.Module):
    """DCGAN's generator; ``width``: channels of the last hidden layer (64 in the paper, doubled
    towards the noise); ``classes=K``: a one-hot class code read off the noise, as the mlp
    generator's (for training against ``disc.classes=K``); ``norm="none"`` drops the BatchNorm
    layers (needed under torchrun on the CPU, where torch has no synchronised BatchNorm)."""

    def __init__(self, z_dim: int, sample_shape: Sequence[int], value_range: Sequence[float] | None = None,
                 width: Width = 64, classes: ConvClasses | None = None,
                 norm: Literal["batch", "none"] | None = "batch") -> None:
        super().__init__()
        channels, start, ups = image_plan(sample_shape, "gen=dcgan")
        batch_norm = norm != "none"
        classes = self._set_classes(classes or 0)
        top = width * 2 ** (ups - 1)
        self.project = nn.Sequential(nn.Linear(z_dim + classes, top * start * start, bias=not batch_norm),
                                     nn.Unflatten(1, (top, start, start)),
                                     *([nn.BatchNorm2d(top)] if batch_norm else []), nn.ReLU())
        layers: list[nn.Module] = []
        c = top
        for i in range(ups):
            last = i == ups - 1
            out = channels if last else c // 2
            layers.append(nn.ConvTranspose2d(c, out, 4, 2, 1, bias=last or not batch_norm))
            if not last:
                layers += [nn.BatchNorm2d(out), nn.ReLU()] if batch_norm else [nn.ReLU()]
            c = out
        self.net = nn.Sequential(*layers, *output_layer(value_range))
        _init(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(self.project(self._with_code(z)))


@checked_options("disc")
class DCGANDiscriminator(ConvDiscriminator):
    """DCGAN's discriminator without BatchNorm (see the module's notes), one logit per sample.

    Options: ``width`` (channels of the first layer, 64 in the paper, doubled at each step),
    ``spectral_norm`` (every layer, Miyato et al. 2018), ``mbstd=G`` (a minibatch-std map in
    groups of G before the logit), ``classes=K`` (projection, called as ``D(x, labels)``),
    ``pack=M`` (PacGAN: M samples stacked along channels, one logit per pack) and ``hidden=H``
    (a dense layer of H units between the convolutions and the logit; 0, the default, is off).
    """

    def __init__(self, sample_shape: Sequence[int], width: Width = 64, spectral_norm: Switch | None = False,
                 mbstd: GroupSize | None = 0, classes: ConvClasses | None = None, pack: ConvPack | None = 1,
                 hidden: DenseUnits | None = 0) -> None:
        super().__init__()
        channels, start, downs = image_plan(sample_shape, "disc=dcgan")
        self._setup(pack or 1, mbstd or 0, classes or 0)
        layers: list[nn.Module] = []
        c_in, c = self.pack * channels, width
        for _ in range(downs):
            layers += [nn.Conv2d(c_in, c, 4, 2, 1), nn.LeakyReLU(0.2)]
            c_in, c = c, c * 2
        self.body = nn.Sequential(*layers)
        features = (c_in + int(self.mbstd is not None)) * start * start
        if hidden:
            self.tail: nn.Module = nn.Sequential(nn.Flatten(), FusedDense(features, hidden, "leaky_relu", alpha=0.2))
            features = hidden
        else:
            self.tail = nn.Flatten()
        _init(self.body)
        _init(self.tail)
        self._finish(features, bool(spectral_norm))
        if not spectral_norm:
            _init(self.head)
