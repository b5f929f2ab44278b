"""The device seam: every ``.to(device)`` decision is made here, nowhere else."""

from __future__ import annotations

import torch

from ganforge.errors import ConfigError


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cuda`` without a GPU is a usage error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda was asked for but torch sees no CUDA GPU "
                          f"(torch {torch.__version__}); use --device cpu or auto")
    return torch.device(name)


def seed_everything(seed: int) -> torch.Generator:
    """Seed torch's global RNG (init, noise, dropout) and return a separate data generator."""
    torch.manual_seed(seed)
    data_rng = torch.Generator()
    data_rng.manual_seed(seed + 1)
    return data_rng
