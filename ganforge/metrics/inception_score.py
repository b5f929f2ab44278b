"""Inception-style score (Salimans et al. 2016) from a classifier's class probabilities:
exp(E_x KL(p(y|x) || p(y))), computed on ``splits`` disjoint splits; mean and std across splits.
With the shipped MNIST classifier the maximum is 10 (ten equally frequent, confidently classified
digits)."""

from __future__ import annotations

import torch


def inception_score(probs: torch.Tensor, splits: int = 10, eps: float = 1e-12) -> tuple[float, float]:
    probs = torch.as_tensor(probs, dtype=torch.float64)
    splits = max(1, min(splits, len(probs)))
    scores = []
    for part in torch.chunk(probs, splits):
        marginal = part.mean(dim=0, keepdim=True)
        kl = (part * ((part + eps).log() - (marginal + eps).log())).sum(dim=1).mean()
        scores.append(kl.exp())
    values = torch.stack(scores)
    return float(values.mean()), float(values.std(unbiased=False))
