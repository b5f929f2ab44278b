"""The argument checks of ``csrc/checks.h`` for the fake (meta) implementations of the ops.

``torch.compile`` and ``opcheck`` run the fake implementations instead of the C++ kernels, so a bad
call must be rejected here too, with the same conditions and the same kind of message. Each check
uses ``torch._check``, which also works on symbolic shapes, and raises ``RuntimeError`` like
``TORCH_CHECK``.
"""

from __future__ import annotations

import torch

from ganforge.ops.activations import ACTIVATIONS

# The dtypes each device's kernels take (the C++ Epilogue::check_dtype); other devices are left to
# the kernels themselves.
KERNEL_DTYPES: dict[str, tuple[torch.dtype, ...]] = {
    "cpu": (torch.float32, torch.float64, torch.bfloat16),
    "cuda": (torch.float32, torch.float64, torch.float16, torch.bfloat16),
}


def _shape(t: torch.Tensor) -> list[int]:
    return list(t.shape)


def check_act(act: int, op: str) -> None:
    n = len(ACTIVATIONS)
    torch._check(0 <= act < n, lambda: f"{op}: unknown activation code {act}; expected 0..{n - 1} "
                                      f"({', '.join(ACTIVATIONS)})")


def check_same_dtype_and_device(a: torch.Tensor, a_name: str, b: torch.Tensor, b_name: str, op: str) -> None:
    torch._check(a.dtype == b.dtype, lambda: f"{op}: dtype mismatch: {a_name} is {a.dtype} but {b_name} is {b.dtype}")
    torch._check(a.device == b.device,
                 lambda: f"{op}: device mismatch: {a_name} is on {a.device} but {b_name} is on {b.device}")


def check_kernel_dtype(t: torch.Tensor, op: str) -> None:
    """The dtype check of the device's kernels (the C++ ``Epilogue::check_dtype``)."""
    supported = KERNEL_DTYPES.get(t.device.type)
    if supported is not None:
        names = [str(d).removeprefix("torch.") for d in supported]
        listed = f"{', '.join(names[:-1])} and {names[-1]}"
        torch._check(t.dtype in supported,
                     lambda: f"{op}: the {t.device.type.upper()} kernel supports {listed}, got {t.dtype}")


def check_inputs(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, act: int) -> None:
    """``dense_act(x, weight, bias, act, alpha)``."""
    op = "dense_act"
    check_act(act, op)
    torch._check(x.dim() == 2, lambda: f"{op}: expected x of rank 2 (batch, in_features), got rank {x.dim()} "
                                       f"with shape {_shape(x)}")
    torch._check(weight.dim() == 2,
                 lambda: f"{op}: expected weight of rank 2 (out_features, in_features), got shape {_shape(weight)}")
    torch._check(x.shape[1] == weight.shape[1],
                 lambda: f"{op}: x has {x.shape[1]} in_features but weight expects {weight.shape[1]} "
                         f"(weight shape {_shape(weight)})")
    check_same_dtype_and_device(x, "x", weight, "weight", op)
    torch._check(x.dtype.is_floating_point, lambda: f"{op}: expected a floating-point dtype, got {x.dtype}")
    if bias is not None:
        def bias_message() -> str:
            return (f"{op}: expected bias of shape ({weight.shape[0]},) to match weight's out_features, "
                    f"got shape {_shape(bias)}")

        torch._check(bias.dim() == 1, bias_message)
        torch._check(bias.shape[0] == weight.shape[0], bias_message)
        check_same_dtype_and_device(x, "x", bias, "bias", op)


def check_grad_z_args(grad: torch.Tensor, y: torch.Tensor, act: int, op: str) -> None:
    """``dense_act_grad_z(grad, y, act, alpha)`` and ``dense_act_grad_z_`` (``op`` names the one called)."""
    check_act(act, op)
    torch._check(y.dim() == 2, lambda: f"{op}: expected the output y of rank 2, got shape {_shape(y)}")

    def shape_message() -> str:
        return f"{op}: expected grad of shape {_shape(y)} like the output, got {_shape(grad)}"

    torch._check(grad.dim() == y.dim(), shape_message)
    for got, want in zip(grad.shape, y.shape, strict=True):
        torch._check(got == want, shape_message)
    check_same_dtype_and_device(grad, "grad", y, "output", op)


def check_overwritable(y: torch.Tensor, op: str) -> None:
    """The in-place form writes dZ over ``y``: it must be contiguous."""
    torch._check(y.is_contiguous(), lambda: f"{op}: expected a contiguous y to overwrite")
