"""Training-mode batch normalisation whose results do not depend on the thread count.

torch's CPU batch-norm kernel splits its reductions over the batch between threads, so the same
inputs give different last bits with 1, 2 or 4 threads, and a GAN amplifies those bits into
different runs (docs/performance.md, "On a busy machine"). Column sums of a ``(N, C)`` tensor reduce
each column in one fixed order whatever the thread count, so this version, built on them, is
bit-identical across thread counts (tests/test_batch_norm.py) at about the kernel's speed for the
MLP generators' widths. Backward is written out (the textbook batch-norm gradient) instead of being
traced through five small ops, which would cost far more.
"""

from __future__ import annotations

import torch
from torch.autograd.function import FunctionCtx, once_differentiable


class _BatchNorm(torch.autograd.Function):
    @staticmethod
    def forward(ctx: FunctionCtx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
                eps: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mean = x.mean(0)
        centred = x - mean
        var = centred.square().mean(0)
        inv_std = torch.rsqrt(var + eps)
        x_hat = centred.mul_(inv_std)
        ctx.save_for_backward(x_hat, inv_std, weight)
        ctx.mark_non_differentiable(mean, var)
        return torch.addcmul(bias, x_hat, weight), mean, var

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, grad_y: torch.Tensor, _mean: torch.Tensor,
                 _var: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, None]:
        x_hat, inv_std, weight = ctx.saved_tensors  # type: ignore[attr-defined]  # FunctionCtx's stub lacks saved_tensors
        n = grad_y.shape[0]
        grad_bias = grad_y.sum(0)
        grad_weight = (grad_y * x_hat).sum(0)
        grad_x = (grad_y - x_hat * (grad_weight / n) - grad_bias / n).mul_(weight * inv_std)
        return grad_x, grad_weight, grad_bias, None


def batch_norm_train(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
                     eps: float = 1e-5) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(y, batch mean, biased batch variance)`` of a ``(N, C)`` batch, normalised per column."""
    return _BatchNorm.apply(x, weight, bias, eps)
