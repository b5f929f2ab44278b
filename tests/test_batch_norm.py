"""ganforge's BatchNorm1d: torch's BatchNorm1d in value, float64 gradcheck, and the same bits with
any thread count (torch's own CPU kernel is not)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ganforge.nn import BatchNorm1d
from ganforge.ops.batch_norm import batch_norm_train


def fresh(n: int, c: int, dtype=torch.float32):
    g = torch.Generator().manual_seed(int(torch.randint(0, 2**31, ())))
    x = (torch.randn(n, c, generator=g, dtype=dtype) * 3 + 1).requires_grad_()
    w = torch.rand(c, generator=g, dtype=dtype).requires_grad_()
    b = torch.randn(c, generator=g, dtype=dtype).requires_grad_()
    return x, w, b, torch.randn(n, c, generator=g, dtype=dtype)


def test_gradcheck_float64():
    x, w, b, _ = fresh(7, 5, torch.float64)
    assert torch.autograd.gradcheck(lambda *t: batch_norm_train(*t)[0], (x, w, b))


@pytest.mark.parametrize("shape", [(2, 3), (64, 256), (100, 400)])
def test_matches_torch_batch_norm(shape):
    x, w, b, gy = fresh(*shape, dtype=torch.float64)
    ours, mean, var = batch_norm_train(x, w, b)
    theirs = F.batch_norm(x, None, None, w, b, training=True)
    torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(mean, x.mean(0), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(var, x.var(0, unbiased=False), rtol=1e-12, atol=1e-12)
    grads = torch.autograd.grad(ours, (x, w, b), gy)
    expected = torch.autograd.grad(theirs, (x, w, b), gy)
    for a, e in zip(grads, expected, strict=True):
        torch.testing.assert_close(a, e, rtol=1e-10, atol=1e-10)


def test_module_keeps_torchs_running_statistics_and_state_dict():
    ours, theirs = BatchNorm1d(6), torch.nn.BatchNorm1d(6)
    assert ours.state_dict().keys() == theirs.state_dict().keys()
    for _ in range(3):
        x = torch.randn(10, 6) * 2 + 0.5
        ours(x), theirs(x)
    for key, value in theirs.state_dict().items():
        torch.testing.assert_close(ours.state_dict()[key], value, rtol=1e-6, atol=1e-6)
    ours.eval(), theirs.eval()
    x = torch.randn(4, 6)
    torch.testing.assert_close(ours(x), theirs(x))


@pytest.mark.parametrize("shape", [(64, 1024), (100, 400), (64, 256)])
def test_the_same_bits_with_any_thread_count(shape):
    x, w, b, gy = fresh(*shape)
    before = torch.get_num_threads()
    results = []
    try:
        for threads in (1, 2, 4):
            torch.set_num_threads(threads)
            y = batch_norm_train(x, w, b)[0]
            results.append((y, *torch.autograd.grad(y, (x, w, b), gy)))
    finally:
        torch.set_num_threads(before)
    for other in results[1:]:
        assert all(torch.equal(a, o) for a, o in zip(results[0], other, strict=True))
