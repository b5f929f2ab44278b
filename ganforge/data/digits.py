"""scikit-learn's 8x8 handwritten digits (1,797 images): a tiny image set for fast tests."""

from __future__ import annotations

import numpy as np
import torch

from ganforge.data.base import DataInfo, TensorDataset
from ganforge.errors import DataError


class Digits(TensorDataset):
    """8x8 digits scaled from 0..16 to [-1, 1], shape (1, 8, 8); the last ``holdout`` are test."""

    def __init__(self, holdout: int = 297) -> None:
        try:
            from sklearn.datasets import load_digits
        except ImportError:
            raise DataError("the digits data set needs scikit-learn: pip install scikit-learn") from None
        bunch = load_digits()
        images = torch.from_numpy(bunch.images.astype(np.float32) / 8.0 - 1.0).unsqueeze(1)
        order = torch.from_numpy(np.random.default_rng(0).permutation(len(images)))
        images = images[order]
        train_labels = torch.from_numpy(bunch.target)[order][holdout:]
        info = DataInfo(sample_shape=(1, 8, 8), value_range=(-1.0, 1.0), modality="image")
        super().__init__(images[holdout:], images[:holdout], info, train_labels)
