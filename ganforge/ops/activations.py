"""The activation table: one row per activation, shared by the reference, the C++ and CUDA paths.

Each derivative is written in terms of the activation's *output* ``y``, which is why the op saves
only x, W and y for backward. The ``code`` is the integer the compiled kernels switch on; keep it in
step with ``csrc/activations.h``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

Tensor = torch.Tensor


@dataclass(frozen=True)
class Activation:
    code: int
    forward: Callable[[Tensor, float], Tensor]
    grad_from_output: Callable[[Tensor, float], Tensor]
    """d act / d z expressed with y = act(z); differentiable in y (needed for double backward)."""


ACTIVATIONS: dict[str, Activation] = {
    "none": Activation(0, lambda z, a: z, lambda y, a: torch.ones_like(y)),
    "relu": Activation(1, lambda z, a: F.relu(z), lambda y, a: (y > 0).to(y.dtype)),
    "leaky_relu": Activation(
        2, lambda z, a: F.leaky_relu(z, a), lambda y, a: torch.where(y > 0, 1.0, a).to(y.dtype)
    ),
    "tanh": Activation(3, lambda z, a: torch.tanh(z), lambda y, a: 1 - y * y),
    "sigmoid": Activation(4, lambda z, a: torch.sigmoid(z), lambda y, a: y * (1 - y)),
}


def activation(name: str) -> Activation:
    """The table row for ``name``, or a ValueError listing the supported activations."""
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(
            f"dense_act: unknown activation {name!r}; expected one of {', '.join(ACTIVATIONS)}"
        ) from None
