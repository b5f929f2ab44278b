"""The CUDA epilogue kernels' own code, run on the CPU: no GPU needed.

``ganforge._C`` carries a host emulation of the CUDA launches (``csrc/cuda_host_emulation.cpp``): host
loops over the same grid, blocks and threads as ``csrc/cuda/dense_act_kernels.cu``, calling the same
``__host__ __device__`` functions (both include ``csrc/cuda/dense_act_kernels.cuh``), reached through
the same tensor glue (``csrc/dense_act_glue.h``: checks, GEMM, ``.contiguous()``, allocation). It is
registered as ``torch.ops.ganforge_cuda_host.*`` with the schemas of the real ops, for float32 and
float64. Every test draws fresh random inputs and compares with float64 references built from the
Python activation table (``ganforge/ops/activations.py``) and torch's autograd.
"""

from __future__ import annotations

import platform

import pytest
import torch

from ganforge.ops import backend
from ganforge.ops.activations import ACTIVATIONS

pytestmark = pytest.mark.skipif(backend() == "reference", reason="ganforge._C is not built (GANFORGE_NO_EXT?)")

ACTS = list(ACTIVATIONS)
ALPHA = 0.2
DTYPES = [torch.float32, torch.float64]
ROWS = [0, 1, 3, 64]  # empty batch, fewer rows than the 8 row-groups, several rows per group
COLS = [1, 7, 1025]  # one column, a partial block of 32 columns, 32 blocks and one column more
TOL = {torch.float32: dict(rtol=1e-5, atol=1e-5), torch.float64: dict(rtol=1e-10, atol=1e-10)}
SUM_TOL = {torch.float32: dict(rtol=1e-5, atol=1e-4), torch.float64: dict(rtol=1e-10, atol=1e-10)}

# The kernel's launch shape (csrc/cuda/dense_act_kernels.cuh).
ROW_GROUPS = 8
BIAS_ACT_THREADS, BIAS_ACT_MAX_BLOCKS = 256, 65535


def host_ops():  # type: ignore[no-untyped-def]
    return torch.ops.ganforge_cuda_host


def forward_reference(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, act: str) -> torch.Tensor:
    """act(x @ w.T + b) in float64."""
    z = x.double() @ w.double().t()
    if b is not None:
        z = z + b.double()
    return ACTIVATIONS[act].forward(z, ALPHA)


def grad_z_reference(g: torch.Tensor, z: torch.Tensor, act: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(g * act'(z), its column sums) in float64, by autograd through the reference forward."""
    z64 = z.double().requires_grad_()
    (gz,) = torch.autograd.grad(ACTIVATIONS[act].forward(z64, ALPHA), z64, g.double())
    return gz, gz.sum(0)


def fixed_order_column_sums(gz: torch.Tensor) -> torch.Tensor:
    """The bias gradient in the kernel's order: row-group k sums rows k, k + 8, ... in turn, then
    the 8 partial sums are added from group 0 to 7; in gz's dtype, as the kernel computes."""
    partial = torch.zeros(ROW_GROUPS, gz.shape[1], dtype=gz.dtype)
    for r in range(gz.shape[0]):
        partial[r % ROW_GROUPS] += gz[r]
    total = torch.zeros(gz.shape[1], dtype=gz.dtype)
    for k in range(ROW_GROUPS):
        total += partial[k]
    return total


def outputs(z: torch.Tensor, act: str) -> torch.Tensor:
    """y = act(z), the saved output the backward starts from."""
    return ACTIVATIONS[act].forward(z, ALPHA)


@pytest.mark.parametrize("cols", COLS)
@pytest.mark.parametrize("rows", ROWS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", ACTS)
def test_forward_matches_reference(act: str, dtype: torch.dtype, rows: int, cols: int) -> None:
    x, w, b = torch.randn(rows, 5, dtype=dtype), torch.randn(cols, 5, dtype=dtype), torch.randn(cols, dtype=dtype)
    code = ACTIVATIONS[act].code
    for bias in (b, None):
        y = host_ops().dense_act(x, w, bias, code, ALPHA)
        assert y.shape == (rows, cols) and y.dtype == dtype
        torch.testing.assert_close(y.double(), forward_reference(x, w, bias, act), **TOL[dtype])


@pytest.mark.parametrize("cols", COLS)
@pytest.mark.parametrize("rows", ROWS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", ACTS)
def test_grad_z_matches_reference(act: str, dtype: torch.dtype, rows: int, cols: int) -> None:
    z = torch.randn(rows, cols, dtype=dtype)
    y, g = outputs(z, act), torch.randn(rows, cols, dtype=dtype)
    code = ACTIVATIONS[act].code
    gz, gb = host_ops().dense_act_grad_z(g, y, code, ALPHA)
    gz_ref, gb_ref = grad_z_reference(g, z, act)
    torch.testing.assert_close(gz.double(), gz_ref, **TOL[dtype])
    torch.testing.assert_close(gb.double(), gb_ref, **SUM_TOL[dtype])
    # The in-place form (backward when y's buffer is free) computes the same bits into y.
    y_inplace = y.clone()
    gb_inplace = host_ops().dense_act_grad_z_(g, y_inplace, code, ALPHA)
    assert torch.equal(y_inplace, gz) and torch.equal(gb_inplace, gb)


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"),
                    reason="bitwise sums assume the baseline x86-64 build (no fused multiply-add)")
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", ["tanh", "leaky_relu"])
def test_bias_gradient_is_summed_in_the_kernels_fixed_order(act: str, dtype: torch.dtype) -> None:
    rows, cols = 203, 70  # rows not a multiple of the row-groups, columns not of the block width
    y, g = outputs(torch.randn(rows, cols, dtype=dtype), act), torch.randn(rows, cols, dtype=dtype) * 1e3
    gz, gb = host_ops().dense_act_grad_z(g, y, ACTIVATIONS[act].code, ALPHA)
    assert torch.equal(gb, fixed_order_column_sums(gz))
    assert torch.equal(gb, host_ops().dense_act_grad_z(g, y, ACTIVATIONS[act].code, ALPHA)[1])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", ACTS)
def test_non_contiguous_inputs_are_made_contiguous_like_on_cuda(act: str, dtype: torch.dtype) -> None:
    rows, fin, cols = 9, 6, 40
    code = ACTIVATIONS[act].code
    x = torch.randn(2 * rows, 3 * fin, dtype=dtype)[::2, ::3]  # strided view
    w = torch.randn(fin, cols, dtype=dtype).t()  # transposed
    b = torch.randn(2 * cols, dtype=dtype)[::2]
    assert not (x.is_contiguous() or w.is_contiguous() or b.is_contiguous())
    torch.testing.assert_close(host_ops().dense_act(x, w, b, code, ALPHA).double(), forward_reference(x, w, b, act),
                               **TOL[dtype])
    z = torch.randn(cols, rows, dtype=dtype).t()
    y, g = outputs(z, act), torch.randn(cols, rows, dtype=dtype).t()
    assert not (y.is_contiguous() or g.is_contiguous())
    gz, gb = host_ops().dense_act_grad_z(g, y, code, ALPHA)
    assert gz.is_contiguous()
    gz_ref, gb_ref = grad_z_reference(g, z, act)
    torch.testing.assert_close(gz.double(), gz_ref, **TOL[dtype])
    torch.testing.assert_close(gb.double(), gb_ref, **SUM_TOL[dtype])
    with pytest.raises(RuntimeError, match="expected a contiguous y to overwrite"):
        host_ops().dense_act_grad_z_(g, y, code, ALPHA)


def test_forward_grid_stride_loop_past_the_largest_grid() -> None:
    """More elements than the capped grid has threads: each thread takes a second element."""
    cols = 257
    rows = BIAS_ACT_THREADS * BIAS_ACT_MAX_BLOCKS // cols + 2
    assert rows * cols > BIAS_ACT_THREADS * BIAS_ACT_MAX_BLOCKS
    x, w, b = torch.randn(rows, 2), torch.randn(cols, 2), torch.randn(cols)
    y = host_ops().dense_act(x, w, b, ACTIVATIONS["leaky_relu"].code, ALPHA)
    torch.testing.assert_close(y, forward_reference(x, w, b, "leaky_relu").float(), **TOL[torch.float32])


@pytest.mark.parametrize("call, message", [
    (lambda ops: ops.dense_act(torch.randn(3), torch.randn(4, 3), None, 1, ALPHA), "expected x of rank 2"),
    (lambda ops: ops.dense_act(torch.randn(2, 3), torch.randn(4, 5), None, 1, ALPHA),
     "x has 3 in_features but weight expects 5"),
    (lambda ops: ops.dense_act(torch.randn(2, 3), torch.randn(4, 3), torch.randn(5), 1, ALPHA),
     "expected bias of shape (4,)"),
    (lambda ops: ops.dense_act(torch.randn(2, 3), torch.randn(4, 3), None, 9, ALPHA), "unknown activation code 9"),
    (lambda ops: ops.dense_act_grad_z(torch.randn(2, 3), torch.randn(2, 4), 1, ALPHA), "expected grad of shape"),
    (lambda ops: ops.dense_act_grad_z(torch.randn(2, 3), torch.randn(2, 3, dtype=torch.float64), 1, ALPHA),
     "dtype mismatch: grad is Float but output is Double"),
])
def test_bad_calls_fail_like_the_real_ops(call, message: str) -> None:  # type: ignore[no-untyped-def]
    """The emulation and the CPU op share their checks (csrc/checks.h): same message."""
    for ops in (host_ops(), torch.ops.ganforge):
        with pytest.raises(RuntimeError) as info:
            call(ops)
        assert message in str(info.value)
