"""Losses against their textbook formulas, computed independently in float64."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from ganforge import RunConfig, Trainer
from ganforge.errors import ConfigError
from ganforge.losses import (
    GanLoss,
    MinimaxLoss,
    NonSaturatingLoss,
    RelativisticPairingLoss,
    WassersteinGPLoss,
    WassersteinLoss,
    discriminator_penalty,
)
from ganforge.run.folder import read_metrics
from ganforge.testing import check_loss


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


# --- rpgan: the relativistic pairing loss of R3GAN (Huang et al. 2024) ------------------------

def fresh_logits(n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng()  # fresh OS entropy every run
    return rng.normal(size=n) * 4, rng.normal(size=n) * 4


def minus_log_sigmoid(t: np.ndarray) -> np.ndarray:
    return -np.log(1.0 / (1.0 + np.exp(-t)))


def test_rpgan_matches_the_paired_formula():
    real, fake = fresh_logits(129)
    loss = RelativisticPairingLoss()
    d = loss.d_loss(torch.from_numpy(real), torch.from_numpy(fake)).item()
    g = loss.g_loss(torch.from_numpy(fake), torch.from_numpy(real)).item()
    # two float64 formulas of softplus agree to ~1e-11
    assert d == pytest.approx(minus_log_sigmoid(real - fake).mean(), rel=1e-9)
    assert g == pytest.approx(minus_log_sigmoid(fake - real).mean(), rel=1e-9)


def test_rpgan_pairs_elementwise_not_all_against_all():
    real, fake = fresh_logits(64)
    loss = RelativisticPairingLoss()
    paired = loss.d_loss(torch.from_numpy(real), torch.from_numpy(fake)).item()
    shuffled = fake[np.random.default_rng().permutation(len(fake))]
    assert loss.d_loss(torch.from_numpy(real), torch.from_numpy(shuffled)).item() != pytest.approx(paired)
    all_pairs = minus_log_sigmoid(real[:, None] - fake[None, :]).mean()
    assert paired != pytest.approx(all_pairs)


def test_rpgan_refuses_batches_that_do_not_pair_up():
    loss = RelativisticPairingLoss()
    real, fake = torch.randn(8), torch.randn(7)
    with pytest.raises(ValueError, match=r"real_logits\[i\] with fake_logits\[i\].*\(8,\) real and \(7,\) fake"):
        loss.d_loss(real, fake)
    with pytest.raises(ValueError, match="same shape"):
        loss.g_loss(fake, real)
    with pytest.raises(ValueError, match="needs real_logits"):
        loss.g_loss(fake)


def test_rpgan_generator_gradient_flows_through_the_fakes_only():
    real, fake = (torch.from_numpy(a).requires_grad_(True) for a in fresh_logits(16))
    RelativisticPairingLoss().g_loss(fake, real.detach()).backward()
    # d/df_i mean_j softplus(r_j - f_j) = -sigmoid(r_i - f_i) / n
    expected = -torch.sigmoid(real.detach() - fake.detach()) / 16
    assert torch.allclose(fake.grad, expected)
    assert real.grad is None


def test_rpgan_penalty_is_r1_plus_r2_with_one_gamma():
    class Quadratic(nn.Module):  # grad_x sum(x^2) = 2x
        def forward(self, x):
            return (x**2).sum(dim=1)

    gamma = float(np.random.default_rng().uniform(0.1, 10))
    real, fake = torch.randn(20, 3, dtype=torch.float64), torch.randn(20, 3, dtype=torch.float64)
    expected = gamma / 2 * (4 * (real**2).sum(1).mean() + 4 * (fake**2).sum(1).mean())
    penalty = discriminator_penalty(RelativisticPairingLoss(gamma=gamma), Quadratic(), real, fake)
    assert torch.allclose(penalty, expected)


def test_rpgan_declares_r3gans_optimiser_and_needs_real_logits(registry):
    factory = registry.get("loss", "rpgan").factory
    assert factory.g_needs_real is True
    assert factory.defaults["optimizer"] == "adam" and factory.defaults["betas"] == (0.0, 0.99)
    check_loss(registry.get("loss", "rpgan").build())


def test_rpgan_gamma_must_be_non_negative(registry):
    with pytest.raises(ConfigError, match=r"loss\.gamma"):
        registry.get("loss", "rpgan").build(gamma=-1)
    with pytest.raises(ConfigError, match="Its parameters: gamma"):
        registry.get("loss", "rpgan").build(r1=1.0)  # its factory takes gamma; r1/r2 are the run's (build_loss)


def test_rpgan_trains_end_to_end(tmp_path, registry, plugin_manager):
    config = RunConfig(data="ring8", loss="rpgan", steps=20, batch_size=32, out=str(tmp_path / "r"),
                       sample_every=0, ckpt_every=0, log_every=5,
                       options={"gen": {"hidden": (16,)}, "disc": {"hidden": (16,)}})
    trainer = Trainer(config, registry=registry, plugin_manager=plugin_manager)
    trainer.fit()
    assert trainer.config.betas == (0.0, 0.99)
    rows = read_metrics(trainer.folder.metrics)
    assert rows and rows[-1]["step"] == 20
    assert all(math.isfinite(r["d_loss"]) and math.isfinite(r["g_loss"]) for r in rows)


# --- ganforge.testing.check_loss with relativistic and old-style losses -----------------------

def test_check_loss_hands_real_logits_to_losses_that_need_them():
    class Recorder(GanLoss):
        g_needs_real = True

        def __init__(self):
            self.seen = []

        def d_loss(self, real_logits, fake_logits):
            return (fake_logits - real_logits).mean()

        def g_loss(self, fake_logits, real_logits=None):
            self.seen.append(real_logits)
            return (real_logits - fake_logits).mean()

    loss = Recorder()
    check_loss(loss)
    (real,) = loss.seen
    assert real is not None and real.shape == (5,) and not real.requires_grad


def test_check_loss_still_accepts_a_g_loss_of_fake_logits_only():
    class OldStyle(GanLoss):
        def d_loss(self, real_logits, fake_logits):
            return fake_logits.mean() - real_logits.mean()

        def g_loss(self, fake_logits):  # written before real_logits existed
            return -fake_logits.mean()

    check_loss(OldStyle())
