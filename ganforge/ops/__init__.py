"""dense_act: ``act(x @ W.T + b)`` as one op, compiled (C++/CUDA) or pure-PyTorch reference.

This package knows nothing of GANs. At import it tries the compiled ``ganforge._C``; without it,
it falls back to the reference with one warning that says how to build the extension.
"""

from __future__ import annotations

from ganforge.ops.dense_act import backend, dense_act

__all__ = ["backend", "dense_act"]
