"""Mode coverage on the 2-D mixtures, as PacGAN (Lin et al. 2018) defines it.

Each sample is assigned to its nearest mode; it is *high quality* if it lies within 3 standard
deviations of that mode. A mode is *captured* if it receives at least ``min_count`` high-quality
samples (PacGAN's text: at least one; ganforge's default is 1, configurable). The reverse KL is
KL(q || uniform), where q is the histogram of high-quality samples over modes: 0 when every mode
gets the same share, log(M) when one mode gets all.
"""

from __future__ import annotations

import math

import torch


def mode_stats(samples: torch.Tensor, modes: torch.Tensor, std: float, n_sigma: float = 3.0,
               min_count: int = 1) -> dict[str, float]:
    samples = torch.as_tensor(samples, dtype=torch.float64)
    modes = torch.as_tensor(modes, dtype=torch.float64)
    dist = torch.cdist(samples, modes)
    nearest, which = dist.min(dim=1)
    good = nearest <= n_sigma * std
    counts = torch.bincount(which[good], minlength=len(modes)).double()
    captured = int((counts >= min_count).sum())
    total = counts.sum()
    if total > 0:
        q = counts[counts > 0] / total
        reverse_kl = float((q * (q * len(modes)).log()).sum())
    else:
        reverse_kl = math.log(len(modes))
    return {"modes": float(captured), "modes_total": float(len(modes)),
            "high_quality": float(100.0 * good.double().mean()), "reverse_kl": reverse_kl}
