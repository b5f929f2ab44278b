"""The MLP GAN's layers as four interchangeable implementations, for like-for-like timing.

- ``eager``: ``F.linear`` + the activation, what a hand-written PyTorch model does.
- ``fused``: :func:`ganforge.ops.dense_act`.
- ``compiled``: ``torch.compile`` of the eager version.
- ``floor``: only the matrix products forward+backward needs (forward GEMM, weight-gradient GEMM,
  input-gradient GEMM where the input needs a gradient), on preallocated inputs. Nothing that
  computes the same layer can beat it by more than noise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ganforge.ops import dense_act

# (in, out, activation): G 100-256-512-1024-784 (ReLU, tanh out), D 784-512-256-1 (LeakyReLU 0.2).
G_LAYERS = ((100, 256, "relu"), (256, 512, "relu"), (512, 1024, "relu"), (1024, 784, "tanh"))
D_LAYERS = ((784, 512, "leaky_relu"), (512, 256, "leaky_relu"), (256, 1, "none"))
STACKS = {"G": G_LAYERS, "D": D_LAYERS}
BATCHES = (64, 256, 1024)
ALPHA = 0.2

EAGER_ACT: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "none": lambda z: z,
    "relu": F.relu,
    "leaky_relu": lambda z: F.leaky_relu(z, ALPHA),
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
}


@dataclass
class Stack:
    """Parameters of a layer stack plus an input and an output gradient, all fixed."""

    layers: tuple[tuple[int, int, str], ...]
    params: list[tuple[torch.Tensor, torch.Tensor]]
    x: torch.Tensor
    grad_out: torch.Tensor

    @classmethod
    def make(cls, layers, batch: int, input_grad: bool = False, seed: int = 0,  # type: ignore[no-untyped-def]
             device: str = "cpu", dtype: torch.dtype = torch.float32) -> Stack:
        gen = torch.Generator().manual_seed(seed)
        to = dict(device=device, dtype=dtype)
        params = []
        for fan_in, fan_out, _ in layers:
            w = (torch.randn(fan_out, fan_in, generator=gen) / fan_in**0.5).to(**to).requires_grad_()
            b = (torch.randn(fan_out, generator=gen) * 0.1).to(**to).requires_grad_()
            params.append((w, b))
        x = torch.randn(batch, layers[0][0], generator=gen).to(**to).requires_grad_(input_grad)
        grad_out = torch.randn(batch, layers[-1][1], generator=gen).to(**to)
        return cls(tuple(layers), params, x, grad_out)

    def leaves(self) -> list[torch.Tensor]:
        out = [t for wb in self.params for t in wb]
        return ([self.x] if self.x.requires_grad else []) + out


def eager_forward(stack: Stack, x: torch.Tensor) -> torch.Tensor:
    for (w, b), (_, _, act) in zip(stack.params, stack.layers, strict=True):
        x = EAGER_ACT[act](F.linear(x, w, b))
    return x


def fused_forward(stack: Stack, x: torch.Tensor) -> torch.Tensor:
    for (w, b), (_, _, act) in zip(stack.params, stack.layers, strict=True):
        x = dense_act(x, w, b, act, alpha=ALPHA)
    return x


class _AddmmRelu(torch.autograd.Function):
    """``torch._addmm_activation`` has no derivative; its backward here is what eager's would be
    (ReLU's mask from the output, then the two GEMMs and the bias sum)."""

    @staticmethod
    def forward(ctx, b, x, w):  # type: ignore[no-untyped-def]
        y = torch._addmm_activation(b, x, w.t())
        ctx.save_for_backward(x, w, y)
        return y

    @staticmethod
    def backward(ctx, gy):  # type: ignore[no-untyped-def]
        x, w, y = ctx.saved_tensors
        gz = gy * (y > 0)
        return gz.sum(0), gz @ w if ctx.needs_input_grad[1] else None, gz.t() @ x


def addmm_activation_forward(stack: Stack, x: torch.Tensor) -> torch.Tensor:
    """PyTorch's own fused GEMM + ReLU (cuBLASLt epilogue on CUDA) where the layer is ReLU."""
    for (w, b), (_, _, act) in zip(stack.params, stack.layers, strict=True):
        if act == "relu":
            x = _AddmmRelu.apply(b, x, w)
        else:
            x = EAGER_ACT[act](F.linear(x, w, b))
    return x


def synchronized(run: Callable[[], object], device: torch.device) -> Callable[[], object]:
    """CUDA work is asynchronous: a timed call must wait for it."""
    if device.type != "cuda":
        return run

    def wrapped() -> object:
        out = run()
        torch.cuda.synchronize(device)
        return out

    return wrapped


def fwd_bwd(forward: Callable[[Stack, torch.Tensor], torch.Tensor], stack: Stack) -> Callable[[], object]:
    """One forward+backward of the stack, gradients returned (not accumulated)."""
    leaves = stack.leaves()

    def run() -> object:
        out = forward(stack, stack.x)
        return torch.autograd.grad(out, leaves, stack.grad_out)

    return synchronized(run, stack.x.device)


def compiled_fwd_bwd(stack: Stack) -> Callable[[], object]:
    # Each case compiles afresh: Dynamo caches per code object, and dozens of cases on the same
    # function would hit its recompile limit and time a fallback instead of compiled code.
    torch._dynamo.reset()
    compiled = torch.compile(eager_forward, fullgraph=True, dynamic=False)
    run = fwd_bwd(compiled, stack)
    for _ in range(3):  # compile outside the timed region
        run()
    return run


def floor(stack: Stack) -> Callable[[], object]:
    """The GEMMs alone: per layer x@W^T, then dZ^T@x and (if the input needs it) dZ@W."""
    batch = stack.x.shape[0]
    to = dict(device=stack.x.device, dtype=stack.x.dtype)
    plan = []
    for i, ((w, _), (fan_in, fan_out, _)) in enumerate(zip(stack.params, stack.layers, strict=True)):
        xin = torch.randn(batch, fan_in, **to)
        dz = torch.randn(batch, fan_out, **to)
        needs_dx = i > 0 or stack.x.requires_grad
        plan.append((xin, w.detach(), dz, needs_dx))

    def run() -> object:
        out = None
        for xin, w, _, _ in plan:
            out = torch.mm(xin, w.t())
        for xin, w, dz, needs_dx in reversed(plan):
            out = torch.mm(dz.t(), xin)
            if needs_dx:
                out = torch.mm(dz, w)
        return out

    return synchronized(run, stack.x.device)


def make_runner(variant: str, stack: Stack) -> Callable[[], object]:
    if variant == "eager":
        return fwd_bwd(eager_forward, stack)
    if variant == "fused":
        return fwd_bwd(fused_forward, stack)
    if variant == "compiled":
        return compiled_fwd_bwd(stack)
    if variant == "floor":
        return floor(stack)
    if variant == "addmm_activation":
        return fwd_bwd(addmm_activation_forward, stack)
    raise ValueError(variant)
