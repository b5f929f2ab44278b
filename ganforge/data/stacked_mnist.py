"""Stacked MNIST: three MNIST digits as the R, G and B channels, 1,000 modes (Lin et al. 2018).

The mode of a stack is its triple of digit labels, ``100 * r + 10 * g + b``. Every batch is drawn
fresh (three digits picked uniformly, with replacement, from a pool of single digits), as PacGAN,
VEEGAN and R3GAN do, so the run's generator state is the whole state of the stream and an exact
``--resume`` needs nothing more (:class:`~ganforge.data.base.SampledBatches`).

The pool is the one :class:`~ganforge.data.mnist.MNIST` reads: the 5,000 bundled digits (4,000 to
train on and MNIST's fixed 1,000-digit holdout, on which the shipped LeNet scores 98.2%), all of
MNIST as shipped (``digits=70000``: 60,000 to train on, the 10,000 test digits held out; what the
``stacked-mnist`` recipe and the published rows use), or the IDX files under ``data.root`` /
``$GANFORGE_DATA`` (train, and t10k as the holdout when present). The paper protocols draw from
the 60,000 training digits (``pool="train"``, the default) or from all 70,000 (``pool="all"``);
which pool a run used is in :attr:`StackedMNIST.source` and :attr:`StackedMNIST.description`.

``real_samples(n, generator, split)`` draws stacks from the held-out digits (``"test"``; the training
digits when there is no holdout), the training digits (``"train"``) or both (``"all"``). Stacks are
combinatorially new either way; the split only says which single digits they are made of.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

from ganforge.data.base import DataInfo, SampledDataset
from ganforge.data.mnist import MNIST
from ganforge.errors import ConfigError, DataError
from ganforge.options import checked_options

MODES = 1000
"""Distinct label triples: the number of modes a generator should cover."""
EVAL_SAMPLES = 26_000
"""PacGAN's VEEGAN-setting protocol (Lin et al. 2018, Table 2): modes and KL over 26,000 samples."""
SPLITS = ("train", "test", "all")


def mode_of(labels: torch.Tensor) -> torch.Tensor:
    """Mode ids 0..999 of label triples ``(n, 3)`` (R, G, B digits): ``100 * r + 10 * g + b``."""
    if labels.ndim != 2 or labels.shape[1] != 3:
        raise ValueError(f"mode_of needs label triples of shape (n, 3), got {tuple(labels.shape)}")
    return labels[:, 0] * 100 + labels[:, 1] * 10 + labels[:, 2]


def _to_bytes(images: torch.Tensor) -> torch.Tensor:
    """MNIST's float (N, 1, 28, 28) in [-1, 1] back to the uint8 (N, 28, 28) it came from (exact:
    each value was k / 127.5 - 1), a quarter of the memory for a 70,000-digit pool."""
    return images[:, 0].add(1.0).mul_(127.5).round_().to(torch.uint8)


@checked_options("data")
class StackedMNIST(SampledDataset):
    """Stacks of three MNIST digits, shape ``(3, size, size)``, values in [-1, 1], 1,000 modes.

    ``size=32`` pads each 28x28 digit with 2 pixels of background (-1) on every side, as R3GAN and
    DDGAN train at 32x32. ``root``, ``holdout`` and ``digits`` are MNIST's (IDX folder, bundled
    holdout, 5,000 bundled or 70,000 shipped digits).
    """

    stacked = True
    """Marks a data set whose samples are digit stacks (what the stacked-modes metric reads)."""
    modes_total = MODES
    eval_samples = EVAL_SAMPLES
    """How many samples ``ganforge eval`` draws by default (``-n`` overrides)."""

    def __init__(self, root: str | None = None, size: Literal[28, 32] = 28,
                 pool: Literal["train", "all"] = "train", holdout: int = 1000,
                 digits: Literal[5000, 70000] = 5000) -> None:
        mnist = MNIST(root=root, holdout=holdout, digits=digits)
        self.source = mnist.source
        self.size, self.pool = size, pool
        if mnist.info.sample_shape != (1, 28, 28):
            raise DataError(f"stacked MNIST needs 28x28 digits, but the IDX files in {mnist.source} hold "
                            f"{mnist.info.sample_shape[1]}x{mnist.info.sample_shape[2]} images; point "
                            f"--set data.root=DIR at MNIST's own files, or drop data.root for the bundled digits")
        if mnist.train_labels is None:
            raise DataError(f"stacked MNIST needs each digit's label (a stack's mode is its label triple), but "
                            f"{mnist.source} has no train-labels-idx1-ubyte[.gz]; put it next to the images")
        if len(mnist.test) and mnist.test_labels is None:
            raise DataError(f"{mnist.source} has t10k-images but no t10k-labels-idx1-ubyte[.gz]; add the labels "
                            f"or remove the t10k images (then the training digits also serve evaluation)")
        n_train, n_test = len(mnist.train), len(mnist.test)
        # one tensor of digits; each split is a range of it, so "all" costs no second copy
        self.digits = torch.cat([_to_bytes(mnist.train), _to_bytes(mnist.test)])
        test_labels = mnist.test_labels if mnist.test_labels is not None else torch.empty(0, dtype=torch.int64)
        self.digit_labels = torch.cat([mnist.train_labels, test_labels])
        self._ranges = {"train": (0, n_train), "test": (n_train, n_train + n_test) if n_test else (0, n_train),
                        "all": (0, n_train + n_test)}
        self._train_split = "all" if pool == "all" else "train"
        self.info = DataInfo(sample_shape=(3, size, size), value_range=(-1.0, 1.0), modality="image")
        where = {"bundled": "the bundled MNIST subset", "shipped": "MNIST as shipped with ganforge"}.get(
            mnist.source, f"the IDX files in {mnist.source}")
        held = (f"{n_test:,} held out" + (", also trained on" if pool == "all" else "")) if n_test else \
            "no holdout: evaluation reuses the training digits"
        self.description = (f"stacks of 3 digits from {self._count(self._train_split):,} digits of {where} "
                            f"({held}), {size}x{size}")

    def _count(self, split: str) -> int:
        lo, hi = self._ranges[split]
        return hi - lo

    def sample_with_labels(self, n: int, generator: torch.Generator,
                           split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` fresh stacks ``(n, 3, size, size)`` and their label triples ``(n, 3)`` (R, G, B).

        ``split``: "train" draws from the digits the run trains on (all of them with ``pool="all"``),
        "test" from the held-out digits, "all" from every digit. The generator's draws are the same
        whether or not the caller keeps the labels, so :meth:`sample` is this minus the labels.
        """
        if split not in SPLITS:
            raise ConfigError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
        if split == "train":
            split = self._train_split
        lo, hi = self._ranges[split]
        index = torch.randint(lo, hi, (n, 3), generator=generator)
        images = self.digits[index].float().div_(127.5).sub_(1.0)  # (n, 3, 28, 28), as MNIST scales
        if self.size == 32:
            images = F.pad(images, (2, 2, 2, 2), value=-1.0)  # background, not mid-grey
        return images, self.digit_labels[index]

    def describe(self) -> str:
        """One line for the run's log: which digits the stacks are drawn from."""
        return self.description

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """``n`` fresh training stacks."""
        return self.sample_with_labels(n, generator)[0]

    def real_samples(self, n: int, generator: torch.Generator, split: str = "test") -> torch.Tensor:
        """``n`` fresh stacks of held-out digits (``"test"``), training digits or all digits."""
        return self.sample_with_labels(n, generator, split)[0]
