"""The training step: one generator forward per step, real and fake scored in one pass, fused Adam."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ganforge import RunConfig, Trainer
from ganforge.models import MLPDiscriminator
from ganforge.train.step import score_pair


@pytest.mark.parametrize("mbstd", [True, False])
def test_forward_pair_equals_two_calls(mbstd):
    disc = MLPDiscriminator((784,), mbstd=mbstd, dropout=0.0)
    real, fake = torch.randn(64, 784), torch.randn(48, 784)
    pair = disc.forward_pair(real, fake)
    assert torch.allclose(pair[0], disc(real), atol=1e-6) and torch.allclose(pair[1], disc(fake), atol=1e-6)


def test_score_pair_calls_a_plain_discriminator_twice():
    calls = []

    class Plain(nn.Module):
        def forward(self, x):
            calls.append(len(x))
            return x.sum(1)

    real, fake = torch.ones(3, 2), torch.zeros(5, 2)
    r, f = score_pair(Plain(), real, fake)
    assert calls == [3, 5] and r.tolist() == [2.0] * 3 and f.tolist() == [0.0] * 5


@pytest.mark.parametrize("loss, n_critic", [("nonsat", 1), ("wgan-gp", 3)])
def test_generator_runs_forward_once_per_critic_step(loss, n_critic, tmp_path, registry, plugin_manager):
    config = RunConfig(data="ring8", loss=loss, n_critic=n_critic, steps=4, batch_size=16, z_dim=4,
                       out=str(tmp_path / "run"), sample_every=0, ckpt_every=0,
                       options={"gen": {"hidden": (8,)}, "disc": {"hidden": (8,)}})
    trainer = Trainer(config, registry=registry, plugin_manager=plugin_manager)
    forwards = []
    trainer.generator.register_forward_hook(lambda module, args, out: forwards.append(torch.is_grad_enabled()))
    trainer.start()
    trainer.train(4)
    trainer.stop()
    # n_critic forwards per step; only the last one keeps its graph for the generator update
    assert forwards == ([False] * (n_critic - 1) + [True]) * 4


def test_discriminator_gets_no_parameter_gradients_from_the_generator_update(tmp_path, registry, plugin_manager):
    config = RunConfig(data="ring8", steps=1, batch_size=16, out=str(tmp_path / "run"), sample_every=0,
                       ckpt_every=0, options={"gen": {"hidden": (8,)}, "disc": {"hidden": (8,)}})
    trainer = Trainer(config, registry=registry, plugin_manager=plugin_manager)
    trainer.start()
    seen = []

    def snapshot(step):
        def wrapped(*args, **kwargs):
            seen.append([p.grad.clone() for p in trainer.discriminator.parameters()])
            return step(*args, **kwargs)
        return wrapped

    trainer.opt_d.step = snapshot(trainer.opt_d.step)  # after D's backward
    trainer.opt_g.step = snapshot(trainer.opt_g.step)  # after G's backward, which went through D
    trainer.train(1)
    trainer.stop()
    after_d, after_g = seen
    assert all(torch.equal(a, b) for a, b in zip(after_d, after_g, strict=True))
    assert all(p.requires_grad for p in trainer.discriminator.parameters())


def test_adam_is_fused(tmp_path, registry, plugin_manager):
    trainer = Trainer(RunConfig(data="ring8", steps=1, out=str(tmp_path / "r")), registry=registry,
                      plugin_manager=plugin_manager)
    assert trainer.opt_g.defaults["fused"] and trainer.opt_d.defaults["fused"]
