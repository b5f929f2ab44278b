"""ganforge: a plugin-based GAN toolkit for PyTorch.

Public API: ``hookimpl`` for plugin authors, ``Trainer`` and ``RunConfig`` for notebooks,
``dense_act`` and ``FusedDense`` for the fused op.

``import ganforge`` does not import torch: the torch-backed names load on first use, so the
``ganforge`` command answers ``--help`` and usage errors at once, and a Ctrl-C while torch loads
reaches the command's own handler instead of printing a traceback.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# MKL reads this once, at its first call: GEMMs that give the same bits for any thread count
# (see ganforge/runtime/threads.py). Set before torch can run anything; a user's value is kept.
os.environ.setdefault("MKL_CBWR", "AUTO,STRICT")

from ganforge.config import RunConfig  # noqa: E402
from ganforge.hookspecs import hookimpl  # noqa: E402

if TYPE_CHECKING:  # pragma: no cover
    from ganforge.nn import FusedDense
    from ganforge.ops import dense_act
    from ganforge.train.trainer import Trainer

_LAZY = {"FusedDense": "ganforge.nn", "dense_act": "ganforge.ops", "Trainer": "ganforge.train.trainer"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'ganforge' has no attribute {name!r}")


__all__ = ["FusedDense", "RunConfig", "Trainer", "__version__", "dense_act", "hookimpl"]
