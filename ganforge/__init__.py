"""ganforge: a plugin-based GAN toolkit for PyTorch.

Public API: ``hookimpl`` for plugin authors, ``Trainer`` and ``RunConfig`` for notebooks,
``dense_act`` and ``FusedDense`` for the fused op.
"""

from __future__ import annotations

__version__ = "0.1.0"

# Before anything runs a matrix product: MKL reads this once (see ganforge/train/threads.py).
from ganforge.train.threads import request_reproducible_gemm

request_reproducible_gemm()

from ganforge.config import RunConfig
from ganforge.hookspecs import hookimpl
from ganforge.nn import FusedDense
from ganforge.ops import dense_act
from ganforge.train.trainer import Trainer

__all__ = ["FusedDense", "RunConfig", "Trainer", "__version__", "dense_act", "hookimpl"]
