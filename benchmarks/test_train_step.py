"""A whole ganforge training step (mlp/nonsat on MNIST-shaped data) against a hand-written PyTorch
loop doing the same work with nn.Linear models: the trainer's overhead, as a ratio."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ganforge.models import MLPDiscriminator, MLPGenerator


def hand_written_models():
    g = nn.Sequential(nn.Linear(100, 256), nn.ReLU(), nn.Linear(256, 512), nn.ReLU(), nn.Linear(512, 1024),
                      nn.ReLU(), nn.Linear(1024, 784), nn.Tanh())
    d = nn.Sequential(nn.Linear(784, 512), nn.LeakyReLU(0.2), nn.Linear(512, 256), nn.LeakyReLU(0.2),
                      nn.Linear(256, 1))
    return g, d


def ganforge_models():
    # the bare tutorial network, like the hand-written one (no dropout, no minibatch-std feature)
    return MLPGenerator(100, (784,), (-1.0, 1.0)), MLPDiscriminator((784,), dropout=0.0, mbstd=False)


def make_step(g, d, batch):
    opt_g = torch.optim.Adam(g.parameters(), 2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), 2e-4, betas=(0.5, 0.999))
    real = torch.rand(batch, 784) * 2 - 1

    def step():
        with torch.no_grad():
            fake = g(torch.randn(batch, 100))
        d_loss = F.softplus(-d(real)).mean() + F.softplus(d(fake)).mean()
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        d.requires_grad_(False)
        g_loss = F.softplus(-d(g(torch.randn(batch, 100)))).mean()
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        d.requires_grad_(True)

    return step


@pytest.mark.parametrize("variant", ["eager", "fused"])
@pytest.mark.parametrize("batch", [64, 256])
def test_gan_train_step(benchmark, batch, variant):
    benchmark.group = f"train-step b{batch}"
    torch.manual_seed(0)
    g, d = hand_written_models() if variant == "eager" else ganforge_models()
    benchmark.pedantic(make_step(g, d, batch), rounds=10, iterations=5, warmup_rounds=2)
