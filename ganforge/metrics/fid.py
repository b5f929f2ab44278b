"""Fréchet distance between Gaussians fitted to two feature sets (Heusel et al. 2017).

FID = ||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)). The trace of the matrix square root is the
sum of the square roots of the eigenvalues of S1 S2 (they are real and >= 0 for covariance
matrices; round-off imaginary parts and tiny negatives are dropped), the robust form torchmetrics
and torch-fidelity use instead of an iterative sqrtm. Everything is computed in float64.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch


def gaussian_stats(features: torch.Tensor | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and unbiased covariance of (N, D) features, in float64."""
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or len(f) < 2:
        raise ValueError(f"FID needs at least 2 feature vectors of shape (N, D), got shape {f.shape}")
    if len(f) < f.shape[1]:
        warnings.warn(f"FID from {len(f)} samples of {f.shape[1]}-d features: the covariance is singular and "
                      f"the estimate is strongly biased; use at least {f.shape[1]} samples (10,000 is usual)",
                      RuntimeWarning, stacklevel=3)
    return f.mean(axis=0), np.cov(f, rowvar=False)


def frechet_distance(mu1: np.ndarray, s1: np.ndarray, mu2: np.ndarray, s2: np.ndarray) -> float:
    """The Fréchet distance between N(mu1, s1) and N(mu2, s2)."""
    eig = np.linalg.eigvals(s1 @ s2)
    trace_sqrt = np.sqrt(np.clip(eig.real, 0.0, None)).sum()
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * trace_sqrt)


def fid(features_a: torch.Tensor | np.ndarray, features_b: torch.Tensor | np.ndarray) -> float:
    """FID between two feature sets of shape (N, D) and (M, D)."""
    return frechet_distance(*gaussian_stats(features_a), *gaussian_stats(features_b))
