"""Improved precision and recall (Kynkäänniemi et al. 2019) and density and coverage (Naeem et al.
2020), from k-nearest-neighbour balls. Distances are computed in blocks, so 10,000 x 10,000 samples
need a few hundred MB, never the full N x M matrix at once.

- precision: fraction of fake samples inside at least one real sample's k-NN ball.
- recall: fraction of real samples inside at least one fake sample's k-NN ball.
- density: (1 / kM) sum over fakes of the number of real balls containing it (k = 5).
- coverage: fraction of real samples whose ball contains at least one fake (k = 5).
"""

from __future__ import annotations

import torch

BLOCK = 2048


def knn_radii(x: torch.Tensor, k: int) -> torch.Tensor:
    """Distance from each row of x to its k-th nearest other row."""
    radii = []
    for i in range(0, len(x), BLOCK):
        d = torch.cdist(x[i: i + BLOCK], x)
        radii.append(d.kthvalue(k + 1, dim=1).values)  # +1: the point itself is at distance 0
    return torch.cat(radii)


def ball_counts(queries: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor) -> torch.Tensor:
    """For each query, how many balls (centres, radii) contain it."""
    counts = []
    for i in range(0, len(queries), BLOCK):
        d = torch.cdist(queries[i: i + BLOCK], centres)
        counts.append((d <= radii[None, :]).sum(dim=1))
    return torch.cat(counts)


def nearest_distance(queries: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    out = []
    for i in range(0, len(queries), BLOCK):
        out.append(torch.cdist(queries[i: i + BLOCK], points).min(dim=1).values)
    return torch.cat(out)


def prdc(real: torch.Tensor, fake: torch.Tensor, k_pr: int = 3, k_dc: int = 5) -> dict[str, float]:
    """precision, recall (k_pr) and density, coverage (k_dc) of ``fake`` against ``real``."""
    real = torch.as_tensor(real, dtype=torch.float64).flatten(1)
    fake = torch.as_tensor(fake, dtype=torch.float64).flatten(1)
    need = max(k_pr, k_dc) + 1
    if len(real) < need or len(fake) < k_pr + 1:
        raise ValueError(f"PRDC needs more than k samples: got {len(real)} real and {len(fake)} fake, "
                         f"k = {k_pr} / {k_dc}")
    real_r_pr, fake_r_pr = knn_radii(real, k_pr), knn_radii(fake, k_pr)
    real_r_dc = real_r_pr if k_dc == k_pr else knn_radii(real, k_dc)
    precision = (ball_counts(fake, real, real_r_pr) > 0).double().mean()
    recall = (ball_counts(real, fake, fake_r_pr) > 0).double().mean()
    density = ball_counts(fake, real, real_r_dc).double().sum() / (k_dc * len(fake))
    coverage = (nearest_distance(real, fake) <= real_r_dc).double().mean()
    return {"precision": float(precision), "recall": float(recall), "density": float(density),
            "coverage": float(coverage)}
