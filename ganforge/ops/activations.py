"""The activation table of the Python side: the reference forward of each activation and the code
the compiled op switches on.

The compiled op has its own table (``csrc/activations.h``, the forward and derivative formulas of
the CPU and CUDA kernels and the C++ autograd); this one is written independently with torch's own
activations, so the tests compare the two. Codes must match the C++ enum (a test checks them
against ``ganforge._C.activation_names()``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

Tensor = torch.Tensor


@dataclass(frozen=True)
class Activation:
    code: int
    forward: Callable[[Tensor, float], Tensor]
    """``act(z)`` for the slope ``alpha`` (used by leaky_relu only)."""


ACTIVATIONS: dict[str, Activation] = {
    "none": Activation(0, lambda z, a: z),
    "relu": Activation(1, lambda z, a: F.relu(z)),
    "leaky_relu": Activation(2, lambda z, a: F.leaky_relu(z, a)),
    "tanh": Activation(3, lambda z, a: torch.tanh(z)),
    "sigmoid": Activation(4, lambda z, a: torch.sigmoid(z)),
}


def activation(name: str) -> Activation:
    """The table row for ``name``, or a ValueError listing the supported activations."""
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(
            f"dense_act: unknown activation {name!r}; expected one of {', '.join(ACTIVATIONS)}"
        ) from None
