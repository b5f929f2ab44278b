"""What the convolutional generators and discriminators share: the image plan, the option
contracts, PacGAN packing along channels, the minibatch-std map, the class code and projection.

The networks themselves live in :mod:`ganforge.models.dcgan` and :mod:`ganforge.models.residual`.
Both follow the mlp networks' interface (:mod:`ganforge.models.mlp`) exactly: generators take
``(z_dim, sample_shape, value_range, **options)`` and, with ``classes=K``, offer
``noise_of_class``; discriminators take ``(sample_shape, **options)``, return raw logits (one per
sample, or per pack), are called as ``D(x, labels)`` when class-conditional and offer
``forward_pair``. Nothing here uses an op without a double backward (R1, R2 and WGAN-GP
differentiate D's input gradient): plain convolutions, LeakyReLU, average pooling, interpolation.

Thread invariance: unlike the mlp networks (fixed-order GEMMs), these train bit-identically
only for a fixed thread count. oneDNN, torch's CPU convolution, sums the weight gradients in an
order that depends on the number of threads; ``--thread-invariant`` sends a run's convolutions
through torch's im2col + GEMM path (:class:`ganforge.runtime.threads.ThreadTuner`), which is
invariant, but several times slower on the residual networks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Annotated

import torch
from torch import nn
from torch.nn.utils import parametrizations

from ganforge.errors import ConfigError
from ganforge.models.mlp import PROJECTION_INIT_STD, DiscreteCode, OutputRange
from ganforge.options import Rule

SIZES = (28, 32, 64)

Width = Annotated[int, Rule("a whole number of channels from 4 to 1024", lambda v: 4 <= v <= 1024, "32")]
GroupSize = Annotated[int, Rule("0 (off) or a group size of at least 2", lambda v: v == 0 or v >= 2, "4")]
ConvPack = Annotated[int, Rule("the number of samples per pack, at least 1 (1: no packing)", lambda v: v >= 1, "2")]
ConvClasses = Annotated[int, Rule("0 (off) or a number of classes of at least 2", lambda v: v == 0 or v >= 2, "10")]
Switch = Annotated[bool, Rule("true or false", lambda v: isinstance(v, bool), "true")]
DenseUnits = Annotated[int, Rule("0 (off) or a whole number of units from 1 to 8192", lambda v: 0 <= v <= 8192, "1024")]


def image_plan(sample_shape: Sequence[int], name: str) -> tuple[int, int, int]:
    """``(channels, start resolution, number of 2x steps)`` of a supported image shape: square
    28 px (from 7x7), 32 or 64 px (from 4x4), 1 or 3 channels; a ConfigError naming the fix else."""
    shape = tuple(sample_shape)
    if len(shape) != 3 or shape[1] != shape[2] or shape[1] not in SIZES or shape[0] not in (1, 3):
        raise ConfigError(f"{name} needs square images of {', '.join(map(str, SIZES))} pixels with 1 or 3 "
                          f"channels, got shape {shape}; for your own images use --data folder "
                          f"--set data.size=32 (or 28, 64) --set data.channels=3 (or 1), or an mlp network "
                          f"(--gen mlp --disc mlp) for other shapes")
    size = shape[1]
    start = 7 if size == 28 else 4
    return shape[0], start, int(math.log2(size // start))


def output_layer(value_range: Sequence[float] | None) -> list[nn.Module]:
    """tanh, then the affine map to the data's range (none for (-1, 1)); nothing for unbounded data."""
    if value_range is None:
        return []
    layers: list[nn.Module] = [nn.Tanh()]
    if tuple(value_range) != (-1.0, 1.0):
        layers.append(OutputRange(*value_range))
    return layers


class ClassCode(nn.Module):
    """The mlp generator's discrete code (:class:`DiscreteCode`) as a mixin: ``classes=K`` appends
    a one-hot class read off the first noise value, so unconditional sampling draws every class."""

    classes: int
    code: DiscreteCode | None

    def _set_classes(self, classes: int) -> int:
        self.classes = classes
        self.code = DiscreteCode(classes) if classes else None
        return classes

    def _with_code(self, z: torch.Tensor) -> torch.Tensor:
        return self.code(z) if self.code is not None else z

    def noise_of_class(self, z: torch.Tensor, labels: torch.Tensor, uniform: torch.Tensor) -> torch.Tensor:
        """Noise that makes this generator draw each row's class (``classes=K`` only): the
        conditional-training protocol of :mod:`ganforge.train.conditioning`."""
        if self.code is None:
            raise ConfigError("this generator has no class code; set --set gen.classes=K (as many as "
                              "disc.classes) to train it with a class-conditional discriminator")
        return self.code.noise_of_class(z, labels, uniform)


def pack_channels(x: torch.Tensor, pack: int) -> torch.Tensor:
    """``(N, C, H, W)`` -> ``(N / pack, pack * C, H, W)``: ``pack`` consecutive samples stacked
    along channels, the input of a PacGAN discriminator."""
    if pack == 1:
        return x
    n = len(x)
    if n % pack:
        example = pack * max(1, n // pack)
        raise ConfigError(
            f"disc.pack={pack} scores samples in packs of {pack}, but got a batch of {n} samples, which does "
            f"not split into packs: choose a batch size divisible by disc.pack (e.g. --batch-size {example})")
    return x.reshape(n // pack, pack * x.shape[1], *x.shape[2:])


class MinibatchStdMap(nn.Module):
    """StyleGAN's minibatch standard deviation (Karras et al. 2018) as one extra feature map: in
    groups of ``group`` samples, the standard deviation of each feature over the group, averaged
    over features and positions. A batch that ``group`` does not divide uses the largest common
    divisor of the two, so any batch (the evaluation's, the last of a sample run) is scored."""

    def __init__(self, group: int) -> None:
        super().__init__()
        self.group = group

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        n, c, height, width = h.shape
        g = math.gcd(self.group, n)
        if g < 2:
            spread = h.new_zeros(n, 1, height, width)
        else:
            grouped = h.reshape(g, n // g, c, height, width)  # sample i joins group i % (n / g)
            std = (grouped.var(dim=0, unbiased=False) + 1e-8).sqrt().mean(dim=(1, 2, 3))
            spread = std.repeat(g).reshape(n, 1, 1, 1).expand(n, 1, height, width)
        return torch.cat([h, spread], dim=1)

    def extra_repr(self) -> str:
        return f"group={self.group}"


def conditional_classes(classes: int, pack: int) -> int:
    if classes and pack > 1:
        raise ConfigError("disc.classes and disc.pack cannot be combined: a pack of samples has no single "
                          "class; drop --set disc.pack or --set disc.classes")
    return classes


def spectral_normalise_convs(net: nn.Module) -> None:
    """Spectral normalisation (Miyato et al. 2018) of every convolution and linear layer of ``net``,
    as :func:`ganforge.models.mlp.spectral_normalise` does for the mlp's layers: twice
    differentiable, one power iteration per forward pass in training mode."""
    for layer in [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]:
        parametrizations.spectral_norm(layer)


class ConvDiscriminator(nn.Module):
    """The shared frame: ``body`` maps the packed images to ``(N, features, r, r)`` maps, the
    optional minibatch-std map joins them, ``tail`` reduces to ``features`` values per sample and
    ``head`` to one logit; with ``classes``, the logit gains ``<embed(y), features>`` (projection,
    Miyato & Koyama 2018). Subclasses build ``body`` and ``tail`` and call :meth:`_finish`."""

    body: nn.Module
    tail: nn.Module
    head: nn.Linear
    mbstd: MinibatchStdMap | None

    def _setup(self, pack: int, mbstd: int, classes: int) -> None:
        self.pack = pack
        self.mbstd = MinibatchStdMap(mbstd) if mbstd else None
        self.classes = conditional_classes(classes, pack)

    def _finish(self, features: int, spectral_norm: bool) -> None:
        self.head = nn.Linear(features, 1)
        if self.classes:
            self.embed = nn.Embedding(self.classes, features)
            nn.init.normal_(self.embed.weight, std=PROJECTION_INIT_STD)
        if spectral_norm:
            spectral_normalise_convs(self)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """One logit per sample, or per pack of ``self.pack`` consecutive samples; with
        ``classes``, each sample's ``labels`` (an integer tensor) are required."""
        return self._score(pack_channels(x, self.pack), labels, split=None)

    def forward_pair(self, real: torch.Tensor, fake: torch.Tensor,
                     labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(self(real, labels), self(fake, labels))`` in one pass over both batches stacked; each
        batch is packed on its own and its minibatch-std map taken on its own, so the result equals
        two calls (nothing else in D mixes samples)."""
        real, fake = pack_channels(real, self.pack), pack_channels(fake, self.pack)
        n = len(real)
        both = None if labels is None else torch.cat([labels, labels])
        logits = self._score(torch.cat([real, fake]), both, split=n)
        return logits[:n], logits[n:]

    def _score(self, x: torch.Tensor, labels: torch.Tensor | None, split: int | None) -> torch.Tensor:
        if self.classes and labels is None:
            raise ConfigError(f"this discriminator is class-conditional (disc.classes={self.classes}) and "
                              f"needs each sample's label: call D(x, labels)")
        h = self.body(x)
        if self.mbstd is not None:
            h = self.mbstd(h) if split is None else torch.cat([self.mbstd(h[:split]), self.mbstd(h[split:])])
        features = self.tail(h)
        logits = self.head(features).squeeze(1)
        if self.classes:
            assert labels is not None
            logits = logits + (self.embed(labels) * features).sum(1)
        return logits
