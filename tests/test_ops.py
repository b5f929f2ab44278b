"""dense_act against an independent reference, in pytorch/extension-cpp's shape.

Fresh random inputs every test; every activation and dtype; forward and all gradients; float64
gradcheck and gradgradcheck; opcheck; torch.compile(fullgraph=True); the reference fallback with
ganforge._C hidden; error messages; CUDA tests skipped with a reason when no GPU is present.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ganforge.nn import FusedDense
from ganforge.ops import backend, dense_act
from ganforge.ops.activations import ACTIVATIONS

ACTS = list(ACTIVATIONS)
ALPHA = 0.2
COMPILED = backend() in ("cpp", "cuda")
needs_ext = pytest.mark.skipif(not COMPILED, reason="ganforge._C is not built (GANFORGE_NO_EXT?)")
# `cuda` marks what tools/gpu_check.sh runs (pytest -m cuda); the skip says why it does not run here.
CUDA_MARKS = (pytest.mark.cuda, pytest.mark.skipif(not (torch.cuda.is_available() and backend() == "cuda"),
                                                   reason="needs a CUDA GPU and the CUDA build of ganforge._C"))


def needs_cuda(test):  # type: ignore[no-untyped-def]
    for mark in CUDA_MARKS:
        test = mark(test)
    return test


def reference(x, w, b, act, alpha=ALPHA):
    """Independent of ganforge: plain matmul and torch's own activations."""
    z = x @ w.t() + (b if b is not None else 0)
    return {"none": lambda: z, "relu": lambda: torch.relu(z), "leaky_relu": lambda: F.leaky_relu(z, alpha),
            "tanh": lambda: torch.tanh(z), "sigmoid": lambda: torch.sigmoid(z)}[act]()


def inputs(batch=33, fin=19, fout=27, dtype=torch.float32, device="cpu", bias=True, grad=True):
    x = torch.randn(batch, fin, dtype=dtype, device=device, requires_grad=grad)
    w = torch.randn(fout, fin, dtype=dtype, device=device, requires_grad=grad)
    b = torch.randn(fout, dtype=dtype, device=device, requires_grad=grad) if bias else None
    return x, w, b


TOL = {torch.float32: dict(rtol=1e-5, atol=1e-5), torch.float64: dict(rtol=1e-10, atol=1e-10),
       torch.float16: dict(rtol=1e-2, atol=1e-2), torch.bfloat16: dict(rtol=5e-2, atol=5e-2)}


def check_against_reference(x, w, b, act):
    tol = TOL[x.dtype]
    y = dense_act(x, w, b, act, alpha=ALPHA)
    y_ref = reference(x, w, b, act)
    torch.testing.assert_close(y, y_ref, **tol)
    g = torch.randn_like(y)
    leaves = [t for t in (x, w, b) if t is not None]
    grads = torch.autograd.grad(y, leaves, g)
    grads_ref = torch.autograd.grad(y_ref, leaves, g)
    for got, want in zip(grads, grads_ref, strict=True):
        torch.testing.assert_close(got, want, **tol)


@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("bias", [True, False])
def test_forward_and_gradients_match_reference(act, dtype, bias):
    check_against_reference(*inputs(dtype=dtype, bias=bias), act)


def bf16_inputs(batch, fin, fout, act):
    """bf16-representable float32 leaves whose pre-activations stay away from ReLU's kink, so the
    float64 reference and a bf16 computation take the same branch everywhere."""
    torch.manual_seed(0)
    x = torch.randn(batch, fin).bfloat16().float().requires_grad_()
    w = (torch.randn(fout, fin) / (4 * fin**0.5)).bfloat16().float().requires_grad_()
    sign = torch.where(torch.rand(fout) < 0.5, -1.0, 1.0)
    b = (sign * (1 + torch.rand(fout)) if act in ("relu", "leaky_relu") else torch.randn(fout) * 0.5)
    return x, w, b.bfloat16().float().requires_grad_()


@needs_ext
@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("shape", [(64, 100, 256), (7, 33, 45), (256, 784, 1), (3, 5, 130)])
def test_bf16_autocast_runs_the_op_and_matches_the_float64_reference(act, shape):
    """Under CPU bf16 autocast the compiled op runs its own bf16 kernels (not the reference) with
    float32 accumulation; results and float32 gradients within bf16 tolerances of float64."""
    x, w, b = bf16_inputs(*shape, act)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = dense_act(x, w, b, act, alpha=ALPHA)
    assert y.dtype == torch.bfloat16 and y.grad_fn.name() == "DenseActBackward"
    g = torch.randn_like(y)
    grads = torch.autograd.grad(y, (x, w, b), g)
    assert all(t.dtype == torch.float32 for t in grads)  # autocast's casts carry gradients back
    leaves64 = [t.detach().double().requires_grad_() for t in (x, w, b)]
    y64 = reference(*leaves64, act)
    grads64 = torch.autograd.grad(y64, leaves64, g.double())
    for got, want in ((y, y64), *zip(grads, grads64, strict=True)):  # bf16: 8 mantissa bits, relative to the scale
        scale = want.abs().max().item() + 1e-6
        torch.testing.assert_close(got.double() / scale, want / scale, rtol=2e-2, atol=2e-2)


@needs_ext
@pytest.mark.parametrize("act", ACTS)
def test_bf16_kernels_match_float32_and_double_backward_works(act):
    """The bf16 kernels called on bf16 tensors directly (no autocast), including the backward's
    in-place path and a second-order gradient (R1 / WGAN-GP differentiate D's backward)."""
    x, w, b = bf16_inputs(48, 40, 70, act)
    w2 = torch.randn(3, 70)
    leaves16 = [t.detach().bfloat16().requires_grad_() for t in (x, w, b)]
    y16 = dense_act(dense_act(*leaves16, act, alpha=ALPHA), w2.bfloat16(), None, "none")
    y32 = reference(reference(x, w, b, act), w2, None, "none")
    torch.testing.assert_close(y16.float(), y32, rtol=3e-2, atol=3e-2)
    g16 = torch.autograd.grad(y16.float().square().sum(), leaves16, create_graph=True)
    g32 = torch.autograd.grad(y32.square().sum(), (x, w, b), create_graph=True)
    for a, c in zip(g16, g32, strict=True):
        scale = c.abs().max().item() + 1e-6
        torch.testing.assert_close(a.float() / scale, c / scale, rtol=3e-2, atol=3e-2)
    gg16 = torch.autograd.grad(sum(t.float().square().sum() for t in g16), leaves16[0])[0]
    gg32 = torch.autograd.grad(sum(t.square().sum() for t in g32), x)[0]
    scale = gg32.abs().max().item() + 1e-6
    torch.testing.assert_close(gg16.float() / scale, gg32 / scale, rtol=5e-2, atol=5e-2)


@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("shape", [(1, 1, 1), (64, 100, 256), (7, 784, 1), (130, 33, 65)])
def test_odd_and_model_shapes(act, shape):
    check_against_reference(*inputs(*shape), act)


@pytest.mark.parametrize("act", ACTS)
def test_gradcheck_and_gradgradcheck_float64(act):
    x, w, b = inputs(6, 5, 4, dtype=torch.float64)
    if act in ("relu", "leaky_relu"):  # keep pre-activations away from the kink at 0
        with torch.no_grad():
            z = x @ w.t() + b
            b += torch.where(z.abs() < 0.1, 0.5, 0.0).amax(0)
    fn = lambda x, w, b: dense_act(x, w, b, act, alpha=ALPHA)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x, w, b))
    assert torch.autograd.gradgradcheck(fn, (x, w, b))


def test_double_backward_through_a_critic_like_wgan_gp():
    critic_fused = nn.Sequential(FusedDense(5, 8, act="leaky_relu"), FusedDense(8, 1)).double()
    critic_ref = nn.Sequential(nn.Linear(5, 8), nn.LeakyReLU(0.2), nn.Linear(8, 1)).double()
    critic_ref[0].load_state_dict(critic_fused[0].state_dict())
    critic_ref[2].load_state_dict(critic_fused[1].state_dict())
    x = torch.randn(9, 5, dtype=torch.float64, requires_grad=True)
    grads = []
    for critic in (critic_fused, critic_ref):
        (g,) = torch.autograd.grad(critic(x).sum(), x, create_graph=True)
        penalty = ((g.norm(dim=1) - 1) ** 2).mean()
        params = list(critic.parameters())
        found = torch.autograd.grad(penalty, params, allow_unused=True)  # the last bias plays no part
        grads.append([torch.zeros_like(p) if g is None else g for p, g in zip(params, found, strict=True)])
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b)
    assert grads[0][0].abs().sum() > 0


def test_empty_batch_and_non_contiguous_inputs():
    x, w, b = inputs(0, 5, 4)
    y = dense_act(x, w, b, "relu")
    assert y.shape == (0, 4)
    y.sum().backward()
    base = torch.randn(12, 10)
    x_nc = base[::2, ::2].requires_grad_()  # strided view
    w_nc = torch.randn(5, 7).t().requires_grad_()  # transposed
    check_against_reference(x_nc, w_nc, torch.randn(7, requires_grad=True), "tanh")


def test_leading_dimensions_like_f_linear():
    x = torch.randn(2, 3, 5)
    w, b = torch.randn(4, 5), torch.randn(4)
    torch.testing.assert_close(dense_act(x, w, b, "sigmoid"), torch.sigmoid(F.linear(x, w, b)))


def test_fused_dense_is_a_drop_in_for_linear():
    torch.manual_seed(0)
    fused = FusedDense(6, 3, act="tanh")
    torch.manual_seed(0)
    linear = nn.Linear(6, 3)
    assert list(fused.state_dict()) == ["weight", "bias"]
    torch.testing.assert_close(fused.weight, linear.weight)  # same initialisation
    fused.load_state_dict(linear.state_dict())
    x = torch.randn(4, 6)
    torch.testing.assert_close(fused(x), torch.tanh(linear(x)))
    assert "act=tanh" in repr(fused)


@needs_ext
@pytest.mark.parametrize("act", ACTS)
def test_opcheck(act):
    code = ACTIVATIONS[act].code
    x, w, b = inputs(8, 5, 4)
    torch.library.opcheck(torch.ops.ganforge.dense_act.default, (x, w, b, code, ALPHA))
    torch.library.opcheck(torch.ops.ganforge.dense_act.default, (x, w, None, code, ALPHA))
    y = torch.rand(8, 4)
    torch.library.opcheck(torch.ops.ganforge.dense_act_grad_z.default, (torch.randn(8, 4), y, code, ALPHA))
    torch.library.opcheck(torch.ops.ganforge.dense_act_grad_z_.default, (torch.randn(8, 4), y.clone(), code, ALPHA))


@needs_ext
def test_torch_compile_fullgraph_without_graph_breaks():
    model = nn.Sequential(FusedDense(10, 16, act="relu"), FusedDense(16, 1, act="sigmoid"))
    x = torch.randn(5, 10)
    expected = model(x)
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(compiled(x), expected)
    compiled(x).sum().backward()
    assert model[0].weight.grad is not None


def test_backend_is_compiled_after_the_readme_install():
    assert backend() == "cpp" or backend() == "cuda", (
        "ganforge._C is missing: build it with `pip install --no-build-isolation -e .`")


def test_reference_fallback_when_the_extension_is_hidden():
    code = (
        "import sys, warnings\n"
        "sys.modules['ganforge._C'] = None\n"  # makes `from ganforge import _C` raise ImportError
        "with warnings.catch_warnings(record=True) as w:\n"
        "    warnings.simplefilter('always')\n"
        "    import torch, ganforge.ops as ops\n"
        "print(ops.backend())\n"
        "print(sum('pip install --no-build-isolation' in str(x.message) for x in w))\n"
        "x = torch.randn(3, 4, requires_grad=True); w_ = torch.randn(2, 4)\n"
        "y = ops.dense_act(x, w_, None, 'tanh'); y.sum().backward()\n"
        "print(torch.allclose(y, torch.tanh(x @ w_.t())))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["reference", "1", "True"]


def tensor_mode(mode: str):  # type: ignore[no-untyped-def]
    """"real": the C++ checks run; "fake": the register_fake checks run (as under torch.compile)."""
    from contextlib import nullcontext

    from torch._subclasses.fake_tensor import FakeTensorMode

    return FakeTensorMode() if mode == "fake" else nullcontext()


@needs_ext
@pytest.mark.parametrize("mode", ["real", "fake"])
@pytest.mark.parametrize("make_args, message", [
    (lambda: (torch.randn(3), torch.randn(4, 3), None), "expected x of rank 2"),
    (lambda: (torch.randn(2, 3), torch.randn(4), None), "expected weight of rank 2"),
    (lambda: (torch.randn(2, 3), torch.randn(4, 5), None), "x has 3 in_features but weight expects 5"),
    (lambda: (torch.randn(2, 3), torch.randn(4, 3), torch.randn(5)), "expected bias of shape (4,)"),
    (lambda: (torch.randn(2, 3), torch.randn(4, 3), torch.randn(4, 1)), "expected bias of shape (4,)"),
    (lambda: (torch.randn(2, 3), torch.randn(4, 3, dtype=torch.float64), None), "dtype mismatch: x is"),
    (lambda: (torch.randn(2, 3), torch.randn(4, 3), torch.randn(4, dtype=torch.float64)), "but bias is"),
    (lambda: (torch.zeros(2, 3, dtype=torch.int32), torch.zeros(4, 3, dtype=torch.int32), None),
     "expected a floating-point dtype"),
    (lambda: (torch.randn(2, 3, dtype=torch.float16), torch.randn(4, 3, dtype=torch.float16), None),
     "CPU kernel supports float32, float64 and bfloat16"),
])
def test_bad_calls_raise_clear_errors(make_args, message, mode):
    with tensor_mode(mode):
        x, w, b = make_args()
        with pytest.raises(RuntimeError) as info:
            torch.ops.ganforge.dense_act(x, w, b, 1, 0.2)
    assert message in str(info.value)


@needs_ext
@pytest.mark.parametrize("mode", ["real", "fake"])
@pytest.mark.parametrize("op", ["dense_act_grad_z", "dense_act_grad_z_"])
@pytest.mark.parametrize("make_args, message", [
    (lambda: (torch.randn(2, 3), torch.randn(2, 3), 9), "unknown activation code 9"),
    (lambda: (torch.randn(3), torch.randn(3), 1), "expected the output y of rank 2"),
    (lambda: (torch.randn(2, 4), torch.randn(2, 3), 1), "expected grad of shape [2, 3] like the output"),
    (lambda: (torch.randn(2, 3, dtype=torch.float64), torch.randn(2, 3), 1), "dtype mismatch: grad is"),
])
def test_bad_grad_z_calls_raise_clear_errors(make_args, message, op, mode):
    with tensor_mode(mode):
        grad, y, act = make_args()
        with pytest.raises(RuntimeError) as info:
            getattr(torch.ops.ganforge, op)(grad, y, act, 0.2)
    assert f"{op}: {message}" in str(info.value)


@needs_ext
@pytest.mark.parametrize("mode", ["real", "fake"])
def test_in_place_grad_z_needs_a_contiguous_output(mode):
    with tensor_mode(mode):
        y = torch.rand(3, 2).t()
        with pytest.raises(RuntimeError, match="dense_act_grad_z_: expected a contiguous y to overwrite"):
            torch.ops.ganforge.dense_act_grad_z_(torch.randn(2, 3), y, 1, 0.2)


@needs_ext
@pytest.mark.parametrize("mode", ["real", "fake"])
def test_unknown_activation_code_and_name(mode):
    with tensor_mode(mode):
        x, w = torch.randn(2, 3), torch.randn(4, 3)
        with pytest.raises(RuntimeError, match=r"unknown activation code 9; expected 0..4 \(none, relu, leaky_relu"):
            torch.ops.ganforge.dense_act(x, w, None, 9, 0.2)
    with pytest.raises(ValueError, match="expected one of none, relu"):
        dense_act(torch.randn(2, 3), torch.randn(4, 3), None, "gelu")


@needs_ext
def test_python_activation_codes_match_the_cpp_table():
    from ganforge import _C

    assert _C.activation_names() == sorted(ACTIVATIONS, key=lambda name: ACTIVATIONS[name].code)
    assert sorted(row.code for row in ACTIVATIONS.values()) == list(range(len(ACTIVATIONS)))


@pytest.mark.parametrize("act", ACTS)
def test_retain_graph_backward_twice_gives_the_same_gradients(act):
    x, w, b = inputs(16, 8, 12)
    hidden = dense_act(x, w, b, act)
    out = dense_act(hidden, torch.randn(3, 12), None, "none")
    g = torch.randn_like(out)
    first = torch.autograd.grad(out, (x, w, b), g, retain_graph=True)
    second = torch.autograd.grad(out, (x, w, b), g)
    for a, c in zip(first, second, strict=True):
        torch.testing.assert_close(a, c, rtol=0, atol=0)


def test_in_place_modified_output_is_detected():
    x, w, b = inputs(4, 3, 2)
    y = dense_act(x, w, b, "tanh")
    y.mul_(2)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


def test_output_held_by_the_caller_is_not_overwritten():
    x, w, b = inputs(8, 5, 6)
    hidden = dense_act(x, w, b, "relu")
    kept = hidden.detach().clone()
    dense_act(hidden, torch.randn(2, 6), None, "none").sum().backward()
    assert torch.equal(hidden.detach(), kept)


def test_bias_gradient_is_deterministic():
    x, w, b = inputs(1000, 64, 300)
    y = dense_act(x, w, b, "tanh")
    g = torch.randn_like(y)
    first = torch.autograd.grad(y, b, g, retain_graph=True)[0]
    again = torch.autograd.grad(y, b, g)[0]
    assert torch.equal(first, again)


@needs_cuda
@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_cuda_matches_reference(act, dtype):
    check_against_reference(*inputs(dtype=dtype, device="cuda"), act)


@needs_cuda
@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_cuda_autocast_runs_the_op(act, dtype):
    """CUDA autocast casts like F.linear's policy and runs the op's own half / bf16 kernels."""
    x, w, b = (t.detach().cuda().requires_grad_() for t in bf16_inputs(64, 100, 256, act))
    with torch.autocast("cuda", dtype=dtype):
        y = dense_act(x, w, b, act, alpha=ALPHA)
    assert y.dtype == dtype and y.grad_fn.name() == "DenseActBackward"
    grads = torch.autograd.grad(y, (x, w, b), torch.ones_like(y))
    want = torch.autograd.grad(reference(x, w, b, act), (x, w, b), torch.ones_like(y, dtype=torch.float32))
    for got, ref in zip(grads, want, strict=True):
        scale = ref.abs().max().item() + 1e-6
        torch.testing.assert_close(got / scale, ref / scale, rtol=2e-2, atol=2e-2)


@needs_cuda
@pytest.mark.parametrize("act", ACTS)
def test_cuda_gradcheck_float64(act):
    x, w, b = inputs(6, 5, 4, dtype=torch.float64, device="cuda")
    fn = lambda x, w, b: dense_act(x, w, b, act, alpha=ALPHA)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x, w, b)) and torch.autograd.gradgradcheck(fn, (x, w, b))


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=CUDA_MARKS)])
@pytest.mark.parametrize("act", ACTS)
def test_hidden_layer_backward_reuses_the_output_buffer_correctly(act, device):
    """Two layers, output dropped: the hidden layer's backward takes the in-place dZ path."""
    x, w, b = inputs(64, 32, 48, device=device)
    w2 = torch.randn(5, 48, device=device, requires_grad=True)
    got = torch.autograd.grad(dense_act(dense_act(x, w, b, act), w2, None, "none").sum(), (x, w, b, w2))
    want = torch.autograd.grad(reference(reference(x, w, b, act), w2, None, "none").sum(), (x, w, b, w2))
    for a, c in zip(got, want, strict=True):
        torch.testing.assert_close(a, c, **TOL[torch.float32])


@needs_cuda
def test_cuda_opcheck_and_double_backward():
    x, w, b = inputs(8, 5, 4, device="cuda")
    torch.library.opcheck(torch.ops.ganforge.dense_act.default, (x, w, b, 2, ALPHA))
    x64, w64, b64 = inputs(6, 5, 4, dtype=torch.float64, device="cuda")
    assert torch.autograd.gradgradcheck(lambda x, w, b: dense_act(x, w, b, "tanh"), (x64, w64, b64))


@needs_ext
def test_backward_writes_dz_into_the_dropped_output_but_not_a_kept_one():
    from torch.profiler import profile

    def ops_run(keep_hidden: bool) -> set[str]:
        x, w, b = inputs(64, 32, 48)
        w2 = torch.randn(5, 48, requires_grad=True)
        with profile() as prof:
            hidden = dense_act(x, w, b, "relu")
            out = dense_act(hidden, w2, None, "none").sum()
            if not keep_hidden:
                del hidden
            torch.autograd.grad(out, (x, w, b, w2))
        return {e.name for e in prof.events() if e.name.startswith("ganforge::")}

    assert "ganforge::dense_act_grad_z_" in ops_run(keep_hidden=False)
    assert "ganforge::dense_act_grad_z_" not in ops_run(keep_hidden=True)
