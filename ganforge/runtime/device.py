"""The device seam: every ``.to(device)`` decision is made here, nowhere else."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
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
    """Seed torch's global RNG (init, noise, dropout), numpy's and Python's (for plugins that draw
    from them), and return a separate data generator."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)
    data_rng = torch.Generator()
    data_rng.manual_seed(seed + 1)
    return data_rng


def global_rng_state() -> dict[str, Any]:
    """Every global RNG a training step may draw from: torch's CPU and CUDA generators, numpy's
    and Python's. A checkpoint saves them so a resumed run draws what the uninterrupted one did."""
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(),
                             "python": random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_global_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "numpy" in state:
        np.random.set_state(tuple(state["numpy"]))
    if "python" in state:
        version, internal, gauss = state["python"]
        random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(list(state["cuda"]))
