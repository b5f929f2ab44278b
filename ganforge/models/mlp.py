"""The classic MNIST MLP GAN, built on the fused dense + activation op.

Generator: z -> 256 -> 512 -> 1024 -> data, ReLU, output activation matched to the data's range.
Discriminator: data -> 512 -> 256 -> 1, LeakyReLU(0.2), raw logits out (losses apply the
numerically stable sigmoid forms themselves). Options, all off by default: spectral normalisation,
PacGAN packing and maxout hidden units (see :class:`MLPDiscriminator`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import pairwise
from typing import Annotated, Literal

import torch
from torch import nn
from torch.nn.utils import parametrizations

from ganforge.errors import ConfigError
from ganforge.nn import BatchNorm1d, Dropout, FusedDense
from ganforge.options import Rule, checked_options
from ganforge.resources import require_memory

LOW_DIM = 16  # samples with at most this many values (the 2-D mixtures) get PacGAN-style networks


def low_dimensional(sample_shape: Sequence[int]) -> bool:
    return math.prod(sample_shape) <= LOW_DIM


def _require_memory(sizes: Sequence[int], name: str, pieces: int = 1) -> None:
    """Weights, gradients and Adam's two moments of the layers ``sizes``, before allocating them."""
    params = sum(i * o * max(pieces, 1) for i, o in pairwise(sizes))
    require_memory(4 * params, f"{name}.hidden={','.join(map(str, sizes[1:-1]))} with {sizes[0]} inputs",
                   f"use smaller layers (--set {name}.hidden=...) or a smaller --z-dim")


class OutputRange(nn.Module):
    """Affine map from tanh's (-1, 1) to the data's ``(lo, hi)``; identity for (-1, 1)."""

    def __init__(self, lo: float, hi: float) -> None:
        super().__init__()
        self.scale, self.shift = (hi - lo) / 2.0, (hi + lo) / 2.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale + self.shift


class DiscreteCode(nn.Module):
    """Append a one-hot code of ``classes`` equally likely classes, read off the first noise value.

    A generator that is continuous in a connected (Gaussian) latent space has a connected image:
    between two separated modes it must pass through the gap, and those bridges are the
    low-quality samples of a mixture or the half-formed digits between two classes
    (Khayatkhoei et al. 2018, "Disconnected manifold learning for generative adversarial
    networks"). A discrete latent variable lets it jump instead (as DeLiGAN's and InfoGAN's
    categorical codes do). Here the class is a function of the noise itself,
    ``floor(classes * Phi(z_0))`` with Phi the standard normal CDF, so the noise stays one Gaussian
    vector: fixed evaluation noise, EMA pictures, ``ganforge sample`` and resume need nothing new.
    """

    def __init__(self, classes: int) -> None:
        super().__init__()
        self.classes = classes
        self.codes: torch.Tensor
        self.register_buffer("codes", torch.arange(classes, dtype=torch.float32), persistent=False)

    def class_of(self, z: torch.Tensor) -> torch.Tensor:
        """``(N,)`` the class each noise vector codes for, as float indices."""
        uniform = 0.5 * (1.0 + torch.erf(z[:, 0].float() / math.sqrt(2.0)))
        return (uniform * self.classes).floor().clamp(max=self.classes - 1)

    def noise_of_class(self, z: torch.Tensor, labels: torch.Tensor, uniform: torch.Tensor) -> torch.Tensor:
        """``z`` with its first value redrawn inside the slice of the normal that codes for each
        row's label: ``Phi^-1((label + u) / classes)`` for ``uniform`` draws u in [0, 1), kept a
        hair inside the slice so that rounding never moves a row to the neighbouring class. With
        labels drawn in the data's proportions (balanced for MNIST) the noise stays a standard
        normal, so the unconditional samples of ``ganforge sample`` draw the classes alike."""
        inside = (labels.to(torch.float32) + 1e-3 + (1.0 - 2e-3) * uniform.to(torch.float32)) / self.classes
        out = z.clone()
        out[:, 0] = (math.sqrt(2.0) * torch.erfinv(2.0 * inside - 1.0)).to(z.dtype)
        return out

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        index = self.class_of(z).unsqueeze(1)
        return torch.cat([z, (index == self.codes).to(z.dtype)], dim=1)

    def extra_repr(self) -> str:
        return f"classes={self.classes}"


def _off_or_at_least_two(what: str, example: int) -> Rule:
    """An option that is off at 0 (or unset) and otherwise counts at least 2 of something."""
    return Rule(f"0 (off) or a number of {what} of at least 2", lambda v: v == 0 or v >= 2, str(example))


# The options' contracts, checked from the signatures by ganforge.options (and the registry).
Hidden = Annotated[Sequence[int] | int, Rule("positive whole numbers", lambda h: _sizes(h) and min(_sizes(h)) > 0,
                                             "256,512")]
GenClasses = Annotated[int, _off_or_at_least_two("discrete latent classes", 50)]
DiscClasses = Annotated[int, _off_or_at_least_two("data classes", 10)]
Slope = Annotated[float, Rule("a LeakyReLU slope >= 0", lambda v: v >= 0, "0.2")]
DropoutRate = Annotated[float, Rule("a probability in [0, 1) (0: off)", lambda v: 0 <= v < 1, "0.3")]
PackSize = Annotated[int, Rule("the number of samples per pack, at least 1 (1: no packing)", lambda v: v >= 1, "2")]
MaxoutPieces = Annotated[int, _off_or_at_least_two("linear pieces", 5)]
Switch = Annotated[bool, Rule("true or false", lambda v: isinstance(v, bool), "true")]


def _sizes(hidden: Sequence[int] | int) -> tuple[int, ...]:
    return (hidden,) if isinstance(hidden, int) else tuple(hidden)


@checked_options("gen")
class MLPGenerator(nn.Module):
    """MLP generator (z-100, 256, 512, 1024, data; ReLU); tanh out for bounded data, linear else.

    ``norm="batch"`` puts BatchNorm between each hidden layer's product and its ReLU (as in
    PacGAN's and DCGAN's generators); the hidden layers then run a fused dense + BatchNorm + ReLU
    instead of one fused dense+ReLU.

    Defaults depend on the data: images get the tutorial's network above; low-dimensional data
    (at most 16 values, e.g. the 2-D mixtures) gets PacGAN's 2-D generator, 4 x 400 with
    BatchNorm, which covers more modes there (see docs/experiments.md).

    ``classes=K`` (off by default) feeds the first layer a one-hot discrete code next to z (see
    :class:`DiscreteCode`), so the network can map K classes to separate regions. Against a
    discriminator with ``classes=K`` too, the code becomes the data's class label
    (:mod:`ganforge.train.conditioning`).
    """

    def __init__(self, z_dim: int, sample_shape: Sequence[int],
                 value_range: Sequence[float] | None = None,
                 hidden: Hidden | None = None, norm: Literal["none", "batch"] | None = None,
                 classes: GenClasses | None = None) -> None:
        super().__init__()
        classes = classes or 0
        small = low_dimensional(sample_shape)
        hidden = hidden if hidden is not None else ((400,) * 4 if small else (256, 512, 1024))
        norm = norm if norm is not None else ("batch" if small else "none")
        self.sample_shape = tuple(sample_shape)
        sizes = (z_dim + classes, *_sizes(hidden), math.prod(sample_shape))
        _require_memory(sizes, "gen")
        sizes = sizes[:-1]
        layers: list[nn.Module] = [DiscreteCode(classes)] if classes else []
        for i, o in pairwise(sizes):
            if norm == "batch":
                layers += [FusedDense(i, o, act="none", bias=False), BatchNorm1d(o), nn.ReLU()]
            else:
                layers.append(FusedDense(i, o, act="relu"))
        out_act = "none" if value_range is None else "tanh"
        layers.append(FusedDense(sizes[-1], math.prod(self.sample_shape), act=out_act))
        if value_range is not None and tuple(value_range) != (-1.0, 1.0):
            layers.append(OutputRange(*value_range))
        self.net = nn.Sequential(*layers)
        self.classes = classes

    def noise_of_class(self, z: torch.Tensor, labels: torch.Tensor, uniform: torch.Tensor) -> torch.Tensor:
        """Noise that makes this generator draw each row's class (``classes=K`` only): the
        conditional-training protocol of :mod:`ganforge.train.conditioning`."""
        if not self.classes:
            raise ConfigError("this generator has no class code; set --set gen.classes=K (as many as "
                              "disc.classes) to train it with a class-conditional discriminator")
        code = self.net[0]
        assert isinstance(code, DiscreteCode)
        return code.noise_of_class(z, labels, uniform)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).unflatten(1, self.sample_shape)  # len(z) would fix the batch in an export


class MinibatchStd(nn.Module):
    """Append the batch's mean feature standard deviation as one extra feature (Karras et al. 2018).

    A collapsed generator produces batches with almost no spread; this feature lets the
    discriminator see that, which is the cheapest strong defence against mode collapse.
    """

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        spread = h.std(dim=0, unbiased=False).mean() if len(h) > 1 else h.new_zeros(())
        return torch.cat([h, spread.expand(len(h), 1)], dim=1)


class Maxout(nn.Module):
    """Maxout units (Goodfellow et al. 2013): each unit outputs the largest of ``pieces`` features.

    Fed by one dense layer with ``pieces * width`` outputs, unit ``j`` takes the maximum of
    outputs ``j * pieces`` to ``j * pieces + pieces - 1`` (the layout of Blocks' ``LinearMaxout``,
    which PacGAN's code uses), so a maxout layer costs one GEMM, not ``pieces`` small ones. Each
    unit learns its own convex piecewise-linear activation instead of a fixed one.
    """

    def __init__(self, pieces: int) -> None:
        super().__init__()
        self.pieces = pieces

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h.unflatten(1, (-1, self.pieces)).amax(dim=2)

    def extra_repr(self) -> str:
        return f"pieces={self.pieces}"


def spectral_normalise(net: nn.Module) -> nn.Module:
    """Divide the weight of every :class:`FusedDense` in ``net`` by its largest singular value.

    Spectral normalisation (Miyato et al. 2018) bounds each layer's Lipschitz constant by 1, which
    keeps the discriminator's gradients useful to the generator without a gradient penalty. It uses
    ``torch.nn.utils.parametrizations.spectral_norm``: reading ``layer.weight`` returns
    ``W / sigma``, and in training mode each read first runs one power-iteration step (the paper's
    setting) to refine sigma's singular vectors. ``FusedDense.forward`` reads its weight once, so a
    forward pass runs one step per layer; ``forward_pair`` scores both batches with one read, so a
    step too. In eval mode the stored vectors are used unchanged. Sigma = u^T W v is a plain
    expression of W (u and v are constants to autograd, copied before use so that a later
    forward's in-place update does not break an earlier graph), so the normalised weight is twice
    differentiable, as gradient penalties need, and D may be scored several times per step.

    The state_dict then holds ``parametrizations.weight.original`` and the vectors ``..._u``,
    ``..._v`` in place of ``weight``: such checkpoints load only into a normalised network.
    """
    for layer in [m for m in net.modules() if isinstance(m, FusedDense)]:
        parametrizations.spectral_norm(layer)
    return net


def pack_samples(x: torch.Tensor, pack: int) -> torch.Tensor:
    """``(N, *sample_shape)`` -> ``(N / pack, pack * prod(sample_shape))``: each row holds
    ``pack`` consecutive samples side by side, the input of a PacGAN discriminator."""
    flat = x.flatten(1)
    if pack == 1:
        return flat
    if len(flat) % pack:
        example = pack * max(1, len(flat) // pack)
        raise ConfigError(
            f"disc.pack={pack} scores samples in packs of {pack}, but got a batch of {len(flat)} samples, "
            f"which does not split into packs: choose a batch size divisible by disc.pack "
            f"(e.g. --batch-size {example})")
    return flat.reshape(len(flat) // pack, pack * flat.shape[1])


PROJECTION_INIT_STD = 0.05
"""Class embeddings start small, so a conditional D starts close to an unconditional one."""


def _conditional_classes(classes: int, pack: int) -> int:
    if classes and pack > 1:
        raise ConfigError("disc.classes and disc.pack cannot be combined: a pack of samples has no single "
                          "class; drop --set disc.pack or --set disc.classes")
    return classes


def _hidden_layer(fan_in: int, width: int, slope: float, pieces: int) -> list[nn.Module]:
    """A fused dense + LeakyReLU layer, or with ``pieces`` a maxout layer of ``width`` units
    (a fused dense without activation, whose ``pieces * width`` outputs :class:`Maxout` reduces)."""
    if pieces:
        return [FusedDense(fan_in, width * pieces, act="none"), Maxout(pieces)]
    return [FusedDense(fan_in, width, act="leaky_relu", alpha=slope)]


@checked_options("disc")
class MLPDiscriminator(nn.Module):
    """MLP discriminator (data, 512, 256, 1; LeakyReLU 0.2) returning one logit per sample
    (per pack of samples with ``pack``).

    Two defaults go beyond the tutorial's bare MLP, because on the 4,000 bundled digits it
    collapses to a single mode within a few thousand steps (measured: per-pixel spread across
    samples fell to 0.03): dropout 0.3 after each hidden layer (as in Goodfellow et al.'s own MNIST
    discriminator) and a minibatch-standard-deviation feature before the output layer.
    ``--set disc.dropout=0 --set disc.mbstd=false`` gives the bare network. Low-dimensional data
    (the 2-D mixtures) gets PacGAN's 2-D size instead, 3 x 200, with neither (both lowered the
    share of high-quality samples there).

    Three options, off by default (the default network and its state_dict keys are unchanged):

    - ``spectral_norm=True``: every dense layer's weight, the output layer's included, is divided
      by its largest singular value (Miyato et al. 2018); see :func:`spectral_normalise`.
    - ``pack=M`` (PacGAN, Lin et al. 2018): the network reads M samples at once, concatenated
      into one input of ``M * prod(sample_shape)`` values, and returns one logit per *pack*: a
      batch of N samples (consecutive samples form a pack) gives N / M logits, and a batch size
      that M does not divide raises a ConfigError. Real and fake samples are never packed
      together; the minibatch-std feature, if on, is taken over the batch's packs. Why N / M
      logits rather than each pack's logit repeated M times: the losses average over logits, so
      both give the same mean losses (PacGAN's objective, a mean over packs), but gradient
      penalties differentiate the *sum* of the logits with respect to the input, which
      repetition would scale by M. With one logit per pack, each sample's input gradient is
      exactly its part of d(pack logit)/d(pack); a penalty that takes per-sample norms then
      constrains those parts, not the whole pack's gradient.
    - ``maxout=K``: each hidden layer is a layer of maxout units with K linear pieces
      (Goodfellow et al. 2013) instead of dense + LeakyReLU (``slope`` is then unused).
    - ``classes=K``: a class-conditional discriminator by projection (Miyato & Koyama 2018): the
      logit of a sample labelled y gains ``<embed(y), h>``, h being the last hidden layer's
      features, so D judges "is this a real *y*" rather than "is this real". Called as
      ``D(x, labels)``; trained with a generator whose class is in its noise (``gen.classes=K``),
      see :mod:`ganforge.train.conditioning`. Not combined with ``pack``.

    PacGAN's 2-D discriminator (in the authors' code) is three maxout layers of 200 units
    with 5 pieces each and no dropout or minibatch feature, packing M = 2 to 4 samples: on the
    2-D mixtures, ``--set disc.maxout=5 --set disc.pack=2`` gives that architecture.
    """

    def __init__(self, sample_shape: Sequence[int], hidden: Hidden | None = None,
                 slope: Slope = 0.2, dropout: DropoutRate | None = None, mbstd: Switch | None = None,
                 spectral_norm: Switch | None = False, pack: PackSize | None = 1, maxout: MaxoutPieces | None = 0,
                 classes: DiscClasses | None = None) -> None:
        super().__init__()
        small = low_dimensional(sample_shape)
        hidden = hidden if hidden is not None else ((200,) * 3 if small else (512, 256))
        dropout = float(dropout if dropout is not None else (0.0 if small else 0.3))
        mbstd = mbstd if mbstd is not None else not small
        self.pack = pack or 1
        pieces = maxout or 0
        sizes = (self.pack * math.prod(sample_shape), *_sizes(hidden))
        _require_memory((*sizes, 1), "disc", pieces)
        layers: list[nn.Module] = []
        for i, o in pairwise(sizes):
            layers += _hidden_layer(i, o, slope, pieces)
            if dropout > 0:
                layers.append(Dropout(dropout))
        if mbstd:
            layers.append(MinibatchStd())
        layers.append(FusedDense(sizes[-1] + int(mbstd), 1, act="none"))
        self.net = nn.Sequential(*layers)
        self.classes = _conditional_classes(classes or 0, self.pack)
        self._head = len(layers) - 1 - int(mbstd)  # where the last hidden layer's features leave
        if self.classes:
            self.embed = nn.Embedding(self.classes, sizes[-1])
            nn.init.normal_(self.embed.weight, std=PROJECTION_INIT_STD)
        if spectral_norm:
            spectral_normalise(self.net)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """One logit per sample, or per pack of ``self.pack`` consecutive samples; with
        ``classes``, each sample's ``labels`` (an integer tensor) are required."""
        return self._score(pack_samples(x, self.pack), labels, split=None)

    def forward_pair(self, real: torch.Tensor, fake: torch.Tensor,
                     labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(self(real, labels), self(fake, labels))`` in one pass over both batches stacked: every
        layer runs one GEMM of twice the rows, which is cheaper than two. Each batch is packed on
        its own (a pack never mixes real and fake samples) and the minibatch-std feature is
        computed over each batch on its own, so the result equals two separate calls. Both
        batches are scored with the same labels: conditional training draws the fake batch with
        the real batch's classes."""
        real, fake = pack_samples(real, self.pack), pack_samples(fake, self.pack)
        n = len(real)
        logits = self._score(torch.cat([real, fake]), None if labels is None else torch.cat([labels, labels]), split=n)
        return logits[:n], logits[n:]

    def _score(self, h: torch.Tensor, labels: torch.Tensor | None, split: int | None) -> torch.Tensor:
        """The logits of the packed rows ``h``; ``split``: rows before it and after it are two
        batches, whose minibatch-std features are taken apart."""
        if self.classes and labels is None:
            raise ConfigError(f"this discriminator is class-conditional (disc.classes={self.classes}) and "
                              f"needs each sample's label: call D(x, labels)")
        features = h
        for i, layer in enumerate(self.net):
            if split is not None and isinstance(layer, MinibatchStd):
                h = torch.cat([layer(h[:split]), layer(h[split:])])
            else:
                h = layer(h)
            if i == self._head - 1:
                features = h
        logits = h.squeeze(1)
        if self.classes:
            logits = logits + (self.embed(labels) * features).sum(1)
        return logits
