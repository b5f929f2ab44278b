"""Losses against their textbook formulas, computed independently in float64."""

from __future__ import annotations

import torch
from torch import nn

from ganforge.losses import (
    MinimaxLoss,
    NonSaturatingLoss,
    WassersteinGPLoss,
    WassersteinLoss,
)


def logits(n=257):
    return torch.randn(n, dtype=torch.float64) * 4


def test_sigmoid_losses_match_the_log_formulas():
    real, fake = logits(), logits()
    d_real, d_fake = torch.sigmoid(real), torch.sigmoid(fake)
    expected_d = -(torch.log(d_real) + torch.log(1 - d_fake)).mean()
    for loss in (MinimaxLoss(), NonSaturatingLoss()):
        assert torch.allclose(loss.d_loss(real, fake), expected_d)
    assert torch.allclose(MinimaxLoss().g_loss(fake), torch.log(1 - d_fake).mean())
    assert torch.allclose(NonSaturatingLoss().g_loss(fake), -torch.log(d_fake).mean())


def test_sigmoid_losses_are_stable_for_huge_logits():
    big = torch.tensor([1000.0, -1000.0])
    for loss in (MinimaxLoss(), NonSaturatingLoss()):
        values = [loss.d_loss(big, -big), loss.g_loss(big), loss.g_loss(-big)]
        assert all(torch.isfinite(v) for v in values)
    assert NonSaturatingLoss().g_loss(torch.tensor([-1000.0])).item() == 1000.0


def test_wasserstein_and_clipping():
    real, fake = logits(), logits()
    loss = WassersteinLoss(clip=0.05)
    assert torch.allclose(loss.d_loss(real, fake), fake.mean() - real.mean())
    assert torch.allclose(loss.g_loss(fake), -fake.mean())
    critic = nn.Linear(3, 1)
    nn.init.normal_(critic.weight, std=10)
    loss.after_d_step(critic)
    assert all(p.abs().max() <= 0.05 for p in critic.parameters())


def test_gradient_penalty_matches_a_direct_computation():
    torch.manual_seed(int(torch.randint(1 << 30, ())))
    critic = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1)).double()
    real, fake = torch.randn(16, 2, dtype=torch.float64), torch.randn(16, 2, dtype=torch.float64)
    state = torch.get_rng_state()
    penalty = WassersteinGPLoss(weight=10).penalty(critic, real, fake)
    torch.set_rng_state(state)
    eps = torch.rand(16, 1, dtype=torch.float64)
    expected = 0.0
    for i in range(16):
        x = (eps[i] * real[i] + (1 - eps[i]) * fake[i]).requires_grad_(True)
        (g,) = torch.autograd.grad(critic(x[None]).sum(), x)
        expected += (g.norm() - 1) ** 2
    assert torch.allclose(penalty, 10 * expected / 16)
    penalty.backward()  # the penalty is differentiable w.r.t. the critic's weights
    assert critic[0].weight.grad is not None
