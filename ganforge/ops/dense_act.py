"""The public face of the op: the compiled ``torch.ops.ganforge.dense_act`` or the reference.

The compiled op carries its own C++ autograd (low per-call overhead, double backward included) and
is registered with ``register_fake`` here so ``torch.compile(fullgraph=True)`` and
``torch.library.opcheck`` understand it.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import warnings
from collections.abc import Iterator

import torch

from ganforge.ops import checks
from ganforge.ops.activations import activation
from ganforge.ops.reference import dense_act_reference

DISABLE_ENV = "GANFORGE_OP_REFERENCE"


class ExtensionMissingWarning(UserWarning):
    """ganforge._C is not built; dense_act runs on the slower pure-PyTorch reference."""


def _load_extension() -> tuple[object | None, str]:
    if os.environ.get(DISABLE_ENV, "") not in {"", "0"}:
        return None, f"{DISABLE_ENV} is set"
    try:  # importing registers torch.ops.ganforge.*
        return importlib.import_module("ganforge._C"), ""
    except ImportError as exc:
        return None, str(exc)


_C, _why = _load_extension()
if _C is None and DISABLE_ENV not in os.environ:
    warnings.warn(
        f"ganforge._C is not available ({_why}); dense_act uses the pure-PyTorch reference. "
        "Build the extension with `pip install --no-build-isolation -e .` (unset GANFORGE_NO_EXT).",
        ExtensionMissingWarning, stacklevel=2)

if _C is not None:
    _op = torch.ops.ganforge.dense_act.default

    # The fake implementations check what the C++ ops check (csrc/checks.h), in the same order.
    @torch.library.register_fake("ganforge::dense_act")
    def _dense_act_fake(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, act: int,
                        alpha: float) -> torch.Tensor:
        checks.check_inputs(x, weight, bias, act)
        checks.check_kernel_dtype(x, "dense_act")
        return x.new_empty((x.shape[0], weight.shape[0]))

    @torch.library.register_fake("ganforge::dense_act_grad_z")
    def _grad_z_fake(grad: torch.Tensor, y: torch.Tensor, act: int,
                     alpha: float) -> tuple[torch.Tensor, torch.Tensor]:
        checks.check_grad_z_args(grad, y, act, "dense_act_grad_z")
        checks.check_kernel_dtype(y, "dense_act_grad_z")
        return torch.empty_like(y, memory_format=torch.contiguous_format), y.new_empty((y.shape[1],))

    @torch.library.register_fake("ganforge::dense_act_grad_z_")
    def _grad_z_inplace_fake(grad: torch.Tensor, y: torch.Tensor, act: int, alpha: float) -> torch.Tensor:
        checks.check_grad_z_args(grad, y, act, "dense_act_grad_z_")
        checks.check_overwritable(y, "dense_act_grad_z_")
        checks.check_kernel_dtype(y, "dense_act_grad_z_")
        return y.new_empty((y.shape[1],))


_reference_only = False


@contextlib.contextmanager
def reference_ops() -> Iterator[None]:
    """Within the block, :func:`dense_act` runs the pure-PyTorch reference (plain ``linear`` +
    activation). ``ganforge export`` traces under it, so an exported model holds only standard
    ATen ops and loads where ganforge is not installed."""
    global _reference_only
    before, _reference_only = _reference_only, True
    try:
        yield
    finally:
        _reference_only = before


def backend() -> str:
    """Which implementation :func:`dense_act` uses: ``"cpp"``, ``"cuda"`` or ``"reference"``.

    ``"cuda"`` means the extension was built with its CUDA kernels (CPU tensors still use the C++
    kernel).
    """
    if _C is None:
        return "reference"
    return "cuda" if getattr(_C, "with_cuda", False) else "cpp"


def _autocast_without_kernel(device: str) -> bool:
    """Under autocast the compiled op casts to autocast's dtype itself (its Autocast kernel, like
    F.linear's policy); only a dtype the device's kernels lack (float16 on the CPU) takes the
    reference, whose F.linear then follows autocast's policy."""
    if not torch.is_autocast_enabled(device):
        return False
    supported = checks.KERNEL_DTYPES.get(device)
    return supported is not None and torch.get_autocast_dtype(device) not in supported


def dense_act(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
              act: str = "relu", *, alpha: float = 0.2) -> torch.Tensor:
    """``act(x @ weight.T + bias)`` for ``act`` in none, relu, leaky_relu, tanh, sigmoid.

    ``x`` may have any number of leading dimensions, like ``F.linear``.
    """
    code = activation(act).code
    if _C is None or _reference_only or _autocast_without_kernel(x.device.type):
        return dense_act_reference(x, weight, bias, act, alpha)
    if x.dim() == 2:
        return _op(x, weight, bias, code, alpha)
    if x.dim() == 0:
        raise ValueError("dense_act: expected x with at least one dimension (in_features,), got a scalar")
    lead = x.shape[:-1]
    return _op(x.reshape(-1, x.shape[-1]), weight, bias, code, alpha).reshape(*lead, weight.shape[0])
