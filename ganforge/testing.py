"""Conformance checks for plugin authors: call these from your plugin's tests.

    from ganforge.testing import check_loss
    def test_my_loss_conforms():
        check_loss(MyLoss())

Each check builds tiny inputs, exercises the contract the trainer relies on, and raises an
AssertionError that says which part of the contract failed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ganforge.data import GanDataset
from ganforge.losses import GanLoss


def check_generator(factory: Callable[..., nn.Module], sample_shape: tuple[int, ...] = (1, 8, 8),
                    value_range: tuple[float, float] | None = (-1.0, 1.0), z_dim: int = 5, **options: Any) -> None:
    """The generator maps (N, z_dim) noise to (N, *sample_shape) samples inside ``value_range``."""
    gen = factory(z_dim=z_dim, sample_shape=sample_shape, value_range=value_range, **options)
    assert isinstance(gen, nn.Module), "a generator factory must return an nn.Module"
    out = gen(torch.randn(3, z_dim) * 10)
    assert tuple(out.shape) == (3, *sample_shape), \
        f"expected samples of shape (3, *{sample_shape}), got {tuple(out.shape)}"
    if value_range is not None:
        lo, hi = value_range
        assert out.min() >= lo - 1e-5 and out.max() <= hi + 1e-5, f"samples leave the data range {value_range}"
    out.sum().backward()
    assert any(p.grad is not None for p in gen.parameters()), "no gradient reaches the generator's parameters"


def check_discriminator(factory: Callable[..., nn.Module], sample_shape: tuple[int, ...] = (1, 8, 8),
                        **options: Any) -> None:
    """The discriminator returns one raw logit per sample and is twice differentiable in its input.

    A packed (PacGAN) discriminator, one with a ``pack`` attribute M > 1, returns one logit per
    pack of M consecutive samples instead: it is given 4 * M samples and must return 4 logits.
    """
    disc = factory(sample_shape=sample_shape, **options)
    assert isinstance(disc, nn.Module), "a discriminator factory must return an nn.Module"
    pack = int(getattr(disc, "pack", 1))
    x = torch.randn(4 * pack, *sample_shape, requires_grad=True)
    logits = disc(x)
    per = "sample" if pack == 1 else f"pack of {pack} samples"
    assert logits.shape in ((4,), (4, 1)), \
        f"expected logits of shape (4,) or (4, 1), one per {per}, got {tuple(logits.shape)}"
    (grad,) = torch.autograd.grad(logits.sum(), x, create_graph=True)
    grad.pow(2).sum().backward()  # gradient penalties (WGAN-GP, R1) need this
    assert any(p.grad is not None for p in disc.parameters()), "double backward does not reach the parameters"


def check_loss(loss: GanLoss) -> None:
    """Both losses are finite scalars for extreme logits and give gradients to the logits.

    A loss with ``g_needs_real`` (a relativistic loss) gets the real logits as ``g_loss``'s second
    argument, as the trainer passes them: detached, since the trainer scores the real batch without
    a graph. Other losses are called with the fake logits only, so a ``g_loss(fake_logits)`` written
    before ``real_logits`` existed still passes.
    """
    assert isinstance(loss, GanLoss), "a loss factory must return a ganforge.losses.GanLoss"
    real = torch.tensor([-80.0, -1.0, 0.0, 1.0, 80.0], requires_grad=True)
    fake = torch.tensor([80.0, 1.0, 0.0, -1.0, -80.0], requires_grad=True)
    d = loss.d_loss(real, fake)
    if getattr(loss, "g_needs_real", False):
        g = loss.g_loss(fake, real.detach())
    else:
        g = loss.g_loss(fake)
    for name, value in (("d_loss", d), ("g_loss", g)):
        assert value.dim() == 0, f"{name} must be a scalar, got shape {tuple(value.shape)}"
        assert math.isfinite(value.item()), f"{name} is not finite for logits of +-80: use softplus forms"
    d.backward()
    assert real.grad is not None and fake.grad is not None, "d_loss must depend on both real and fake logits"
    assert g.requires_grad and torch.autograd.grad(g, fake, allow_unused=True)[0] is not None, \
        "g_loss must depend on the fake logits"
    defaults = getattr(loss, "defaults", {})
    allowed = {"n_critic", "optimizer", "lr_g", "lr_d", "betas"}
    assert set(defaults) <= allowed, f"unknown training defaults {set(defaults) - allowed}; allowed: {allowed}"


def check_dataset(dataset: GanDataset, batch_size: int = 4, batches: int = 50) -> None:
    """What the trainer relies on (docs/plugins.md, "The data set contract"): float32 batches of
    the declared shape, finite and inside the declared range, for as long as it asks (``batches``
    of them here, past an epoch of a small set), the same stream again for the same generator
    seed (exact resume), and real samples of the same shape, dtype and range."""
    info = dataset.info
    assert info.modality in ("image", "points"), "modality must be 'image' or 'points'"
    shape = tuple(info.sample_shape)
    assert shape and all(isinstance(d, int) and d > 0 for d in shape), \
        f"sample_shape must be positive ints, got {shape}"
    if info.modality == "image":
        assert len(shape) == 3, f"image data must declare (channels, height, width), got {shape}"

    def check(x: torch.Tensor, what: str, expected: tuple[int, ...]) -> None:
        assert isinstance(x, torch.Tensor), f"{what} must be a torch.Tensor, got {type(x).__name__}"
        assert x.dtype == torch.float32, f"{what} must be float32 (the networks' dtype), got {x.dtype}"
        assert tuple(x.shape) == expected, f"{what} has shape {tuple(x.shape)}, expected {expected}"
        assert bool(torch.isfinite(x).all()), f"{what} holds NaN or infinite values"
        if info.value_range is not None:
            lo, hi = info.value_range
            assert x.min() >= lo and x.max() <= hi, f"{what} leaves the declared value range {(lo, hi)}"

    def draw(seed: int) -> list[torch.Tensor]:
        stream = iter(dataset.batches(batch_size, torch.Generator().manual_seed(seed)))
        out = []
        for i in range(batches):
            try:
                out.append(next(stream))
            except StopIteration:
                raise AssertionError(f"batches() ended after {i} batches; the trainer needs an endless stream "
                                     f"(start a new epoch instead of stopping)") from None
        return out

    first = draw(0)
    for i, batch in enumerate(first):
        check(batch, f"batch {i}", (batch_size, *shape))
    again = draw(0)
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True)), \
        "the same generator seed gave other batches: the stream must draw its randomness from `generator` only"
    real = dataset.real_samples(3, torch.Generator().manual_seed(0))
    check(real, "real_samples(3)", (len(real), *shape))
    assert 1 <= len(real) <= 3, f"real_samples(3) returned {len(real)} samples"
