"""Mode coverage on Stacked MNIST, counted as PacGAN (Lin et al. 2018) and R3GAN count it.

Each channel of a generated stack is read by an MNIST classifier (the shipped LeNet; the centre
28x28 of a 32-pixel stack); the three argmax digits give the stack's mode, 0..999. Reported:

- ``modes``: how many of the 1,000 modes got at least one sample;
- ``kl``: KL(p || uniform) = sum over p > 0 of p * log(p / 0.001), where p is the share of samples
  in each mode, as PacGAN's code computes it (0 for a perfect spread, log(1000) = 6.91 when every
  sample lands in one mode);
- ``n``: the number of samples (PacGAN's protocol: 26,000, the data set's ``eval_samples``);
- where the KL comes from, by the chain rule KL(p || U) = sum_c KL(p_c || U_10) + KL(p || p_R p_G p_B):
  ``kl_channels``, the three channels' digit shares against 1/10 each (a generator that draws too
  few 1s), and ``kl_dependence``, what the channels' digits say about each other (a generator
  that pairs a red 3 with a green 5 too often); ``rarest_digit``, the smallest share of any digit
  in any channel (0.1 for a perfect spread).

Both numbers depend on N (a finite sample of a uniform distribution is not uniform: KL is about
999 / (2N), 0.019 at 26,000), so the floor is the metric on as many fresh real stacks, which also
reports how often the classifier reads a real digit right (``classifier_accuracy``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch

from ganforge.data import DataInfo, GanDataset
from ganforge.data.stacked_mnist import MODES, StackedMNIST, mode_of
from ganforge.errors import ConfigError
from ganforge.metrics.base import EvalData, Metric
from ganforge.metrics.lenet import DIGIT_READER, LeNetExtractor

DIGIT = 28
BATCH = 1000  # digits per classifier pass; smaller is faster on an idle CPU, far slower on a busy one
FLOOR_SEED_OFFSET = 9_173  # the floor's stacks are not the draws evaluate() made for data.real


def mode_stats(modes: torch.Tensor, total: int = MODES) -> dict[str, float]:
    """``modes`` (mode ids 0..total-1 of N samples) -> modes covered, KL to uniform, N."""
    n = len(modes)
    if n == 0:
        raise ValueError("no samples to count modes in")
    counts = torch.bincount(modes.long(), minlength=total).double()
    p = counts[counts > 0] / n
    kl = float((p * (p * total).log()).sum())  # p * log(p / (1 / total))
    return {"modes": float(len(p)), "kl": max(kl, 0.0), "n": float(n)}


def digit_stats(digits: torch.Tensor) -> dict[str, float]:
    """``digits`` ``(N, 3)`` (R, G, B digits of N samples) -> the KL's two parts and the rarest digit.

    Each part is computed on its own (the channels' KLs to 1/10, the joint's KL to the product of
    its marginals), so their sum equals :func:`mode_stats`'s ``kl`` by the chain rule, not by
    construction."""
    n = len(digits)
    if n == 0:
        raise ValueError("no samples to count digits in")
    shares = torch.stack([torch.bincount(digits[:, c].long(), minlength=10).double() / n for c in range(3)])
    present = shares[shares > 0]
    kl_channels = float((present * (present * 10).log()).sum())
    joint = torch.bincount(mode_of(digits.long()), minlength=MODES).double() / n
    product = (shares[0][:, None, None] * shares[1][None, :, None] * shares[2][None, None, :]).reshape(-1)
    seen = joint > 0
    kl_dependence = float((joint[seen] * (joint[seen] / product[seen]).log()).sum())
    return {"kl_channels": max(kl_channels, 0.0), "kl_dependence": max(kl_dependence, 0.0),
            "rarest_digit": float(shares.min())}


def stacked_stats(digits: torch.Tensor) -> dict[str, float]:
    """Everything the metric reports of digit triples ``(N, 3)``, the KL's parts right after it."""
    stats = mode_stats(mode_of(digits))
    n = stats.pop("n")
    return stats | digit_stats(digits) | {"n": n}


def centre_digits(stacks: torch.Tensor) -> torch.Tensor:
    """``(N, 3, H, W)`` stacks -> ``(3N, 1, 28, 28)`` single digits, R, G, B of each stack in turn;
    larger stacks (32 pixels: 2 of padding each side) are cropped to their centre."""
    if stacks.ndim != 4 or stacks.shape[1] != 3 or min(stacks.shape[2:]) < DIGIT:
        raise ConfigError(f"stacked-modes reads stacks of shape (3, H, W) with H, W >= {DIGIT} (three MNIST "
                          f"digits), got samples of shape {tuple(stacks.shape[1:])}")
    h, w = stacks.shape[2:]
    top, left = (h - DIGIT) // 2, (w - DIGIT) // 2
    digits = stacks[:, :, top: top + DIGIT, left: left + DIGIT]
    return digits.reshape(-1, 1, DIGIT, DIGIT)


class StackedModes(Metric):
    """Stacked-MNIST modes covered (of 1,000) and KL(modes || uniform), PacGAN's definition."""

    has_floor: ClassVar[bool] = True
    needs_features: ClassVar[bool] = False  # reads digits with its own classifier, at any stack size
    needs_real: ClassVar[bool] = False  # the floor draws its own stacks from held-out digits
    requires: ClassVar[str] = "the stacked-mnist data set, --data stacked-mnist"
    comparable: ClassVar[str] = (
        "PacGAN's Table 2 (VEEGAN setting) and R3GAN's Table 3 at -n 26000: digits read, as theirs, by a "
        "classifier trained on MNIST's training digits (the shipped LeNet, its accuracy the "
        "classifier_accuracy row); see docs/metrics.md for each table's protocol")
    labels: ClassVar[dict[str, str]] = {"modes": "stacked-MNIST modes", "kl": "KL(modes || uniform)",
                                        "kl_channels": "  of it: the channels' digit shares",
                                        "kl_dependence": "  of it: dependence between channels",
                                        "rarest_digit": "rarest digit's share (0.1 even)",
                                        "n": "samples counted",
                                        "classifier_accuracy": "classifier accuracy (real digits)"}

    def __init__(self, weights: str | None = None) -> None:
        """``weights``: another LeNet's safetensors instead of the shipped digit reader (trained on
        MNIST's training digits less the bundled held-out ones, 99.4 % on MNIST's test set)."""
        self.weights = weights
        self._classifier: LeNetExtractor | None = None

    def applies_to(self, info: DataInfo, dataset: GanDataset | None) -> bool:
        return isinstance(dataset, StackedMNIST)

    def classifier(self) -> LeNetExtractor:
        if self._classifier is None:
            classifier = LeNetExtractor(self.weights, batch_size=BATCH, shipped=DIGIT_READER)
            # channels-last convolutions: 1.5 to 2 times as fast on the CPU (torch's
            # stub for Module.to lacks memory_format)
            classifier.model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
            self._classifier = classifier
        return self._classifier

    def digits_of(self, stacks: torch.Tensor) -> torch.Tensor:
        """The classifier's digit triples ``(N, 3)`` for stacks ``(N, 3, H, W)``."""
        probabilities = self.classifier().probabilities(centre_digits(stacks))
        return probabilities.argmax(1).view(len(stacks), 3)

    def compute(self, data: EvalData) -> dict[str, float]:
        if not isinstance(data.dataset, StackedMNIST):
            raise ConfigError("the stacked-modes metric needs the stacked-mnist data set (--data stacked-mnist)")
        return stacked_stats(self.digits_of(data.fake))

    def real_floor(self, data: EvalData) -> dict[str, float] | None:
        """The metric on ``len(data.fake)`` fresh stacks of held-out real digits, and the classifier's
        share of their digits read right: what a perfect generator scores with this classifier."""
        if not isinstance(data.dataset, StackedMNIST):
            return None
        rng = torch.Generator().manual_seed(data.seed + FLOOR_SEED_OFFSET)
        stacks, labels = data.dataset.sample_with_labels(len(data.fake), rng, split="test")
        read = self.digits_of(stacks)
        stats = stacked_stats(read)
        stats["classifier_accuracy"] = float((read == labels).double().mean())
        return stats

    def format(self, values: Mapping[str, float], *, spread: bool = True) -> dict[str, str]:
        """``modes`` as "987 / 1000", ``n`` as a whole number, the rest as numbers."""
        shown = super().format(values, spread=spread)
        if "modes" in values:
            shown["modes"] = f"{int(values['modes'])} / {MODES}"
        if "n" in values:
            shown["n"] = f"{int(values['n']):,}"
        if "classifier_accuracy" in values:
            shown["classifier_accuracy"] = f"{100 * values['classifier_accuracy']:.2f}%"
        return shown

    def describe(self) -> dict[str, Any]:
        return {"classifier": self.weights or f"shipped {DIGIT_READER}", "modes_total": MODES}
