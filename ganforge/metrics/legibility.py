"""Legible digits: the share of samples the shipped MNIST classifier reads with confidence, and
how those spread over the ten classes.

FID and precision/recall summarise the whole sample; a picture is judged cell by cell. The share
of samples classified with probability >= ``confidence`` is the number closest to "every cell a
recognisable digit", and the classes among them say whether every digit appears (the classifier
counts behind the mode coverage of Stacked MNIST in Metz et al. 2017 and PacGAN, Lin et al. 2018).
The real-vs-real row gives the share for real digits, the ceiling a generator is compared with.
"""

from __future__ import annotations

import torch


def legibility(probs: torch.Tensor, confidence: float = 0.9, min_share: float = 0.02) -> dict[str, float]:
    """``legible``: share of rows whose top class probability is >= ``confidence``;
    ``classes``: classes holding at least ``min_share`` of the legible rows; ``rarest_class``:
    the smallest class's share of the legible rows (1 / classes when balanced, 0 when a class is
    missing). ``probs`` is (N, classes), rows summing to 1."""
    probs = torch.as_tensor(probs, dtype=torch.float64)
    top, label = probs.max(dim=1)
    legible = top >= confidence
    counts = torch.bincount(label[legible], minlength=probs.shape[1]).double()
    shares = counts / counts.sum() if counts.sum() > 0 else counts
    return {"legible": float(legible.double().mean()), "classes": float((shares >= min_share).sum()),
            "rarest_class": float(shares.min())}
