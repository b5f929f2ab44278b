"""Three ways to take one training step of the MNIST MLP GAN, for like-for-like timing.

- ``baseline``: the loop a tutorial writes: ``nn.Sequential`` of ``nn.Linear`` and activations,
  ``BCEWithLogitsLoss``, torch's default ``Adam``, separate D calls on real and fake, D's gradients
  left on during the G step. It reuses its fake batch for the G step, as tutorials do.
- ``ganforge``: a step of the real :class:`ganforge.Trainer` (hooks, logging every 100 steps and
  the progress display on, as in ``ganforge run``; pictures and checkpoints off), with the bare
  tutorial networks (``disc.dropout=0``, ``disc.mbstd=false``) so both do the same work.
- ``floor``: only the matrix products one step needs, at the step's shapes, plus one fused Adam
  update of all parameters. Nothing that trains the same networks can beat it by more than noise.

The same three for DCGAN at 28x28 (``baseline_dcgan_step`` against the Trainer with ``gen="dcgan"``).
Both real steps draw their batches from the same bundled MNIST digits.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from itertools import pairwise
from pathlib import Path

import torch
from torch import nn

from ganforge import RunConfig, Trainer
from ganforge.data.mnist import MNIST

G_SIZES = (100, 256, 512, 1024, 784)
D_SIZES = (784, 512, 256, 1)


def mnist_batches(batch: int) -> Iterator[torch.Tensor]:
    data = MNIST()
    return data.batches(batch, torch.Generator().manual_seed(1))


def baseline_step(batch: int) -> Callable[[], None]:
    torch.manual_seed(0)
    g = nn.Sequential(nn.Linear(100, 256), nn.ReLU(), nn.Linear(256, 512), nn.ReLU(), nn.Linear(512, 1024),
                      nn.ReLU(), nn.Linear(1024, 784), nn.Tanh())
    d = nn.Sequential(nn.Linear(784, 512), nn.LeakyReLU(0.2), nn.Linear(512, 256), nn.LeakyReLU(0.2),
                      nn.Linear(256, 1))
    return tutorial_loop(g, d, batch, flatten=True)


def baseline_dcgan_step(batch: int, width: int = 64) -> Callable[[], None]:
    """A DCGAN step on 28x28 MNIST as tutorials write it (PyTorch's DCGAN example): ``nn.Sequential``
    networks of the same shapes as ganforge's built-in ``dcgan`` pair, ``BCEWithLogitsLoss``, torch's
    default Adam, D called on real and on fake, D's gradients left on in the G step."""
    torch.manual_seed(0)
    top = 2 * width
    g = nn.Sequential(nn.Linear(100, top * 7 * 7, bias=False), nn.Unflatten(1, (top, 7, 7)), nn.BatchNorm2d(top),
                      nn.ReLU(), nn.ConvTranspose2d(top, width, 4, 2, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
                      nn.ConvTranspose2d(width, 1, 4, 2, 1), nn.Tanh())
    d = nn.Sequential(nn.Conv2d(1, width, 4, 2, 1), nn.LeakyReLU(0.2), nn.Conv2d(width, top, 4, 2, 1),
                      nn.LeakyReLU(0.2), nn.Flatten(), nn.Linear(top * 7 * 7, 1))
    return tutorial_loop(g, d, batch, flatten=False)


def tutorial_loop(g: nn.Module, d: nn.Module, batch: int, *, flatten: bool) -> Callable[[], None]:
    """The step as tutorials write it, for any G and D: torch's default Adam, ``BCEWithLogitsLoss``,
    D called on real and on fake, D's gradients left on in the G step, the fake batch reused."""
    opt_g = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    bce = nn.BCEWithLogitsLoss()
    ones, zeros = torch.ones(batch, 1), torch.zeros(batch, 1)
    batches = mnist_batches(batch)

    def step() -> None:
        real = next(batches)
        if flatten:
            real = real.flatten(1)
        fake = g(torch.randn(batch, 100))
        opt_d.zero_grad()
        d_loss = bce(d(real), ones) + bce(d(fake.detach()), zeros)
        d_loss.backward()
        opt_d.step()
        opt_g.zero_grad()
        g_loss = bce(d(fake), ones)
        g_loss.backward()
        opt_g.step()

    return step


def ganforge_trainer(batch: int, out: Path, *, hooks: bool = True, threads: int = 0,
                     precision: str = "fp32", gen: str = "mlp") -> Trainer:
    """A started Trainer on the bare tutorial networks (``gen="mlp"``) or the built-in DCGAN pair
    (``gen="dcgan"``); drive it with ``trainer.train(n)``."""
    from rich.console import Console

    from ganforge.cli.progress import ProgressDisplay
    from ganforge.plugins import build_registry, get_plugin_manager

    options = {"disc": {"dropout": 0.0, "mbstd": False}} if gen == "mlp" else {}
    config = RunConfig(gen=gen, loss="nonsat", data="mnist", steps=10**9, batch_size=batch, out=str(out),
                       threads=threads, ema=0.0, log_every=100, sample_every=0, ckpt_every=0, precision=precision,
                       options=options)
    extra = [ProgressDisplay(Console(file=io.StringIO(), force_terminal=True))] if hooks else []
    pm = get_plugin_manager(extra=extra)
    trainer = Trainer(config, registry=build_registry(pm), plugin_manager=pm)
    trainer.start()
    return trainer


def floor_step(batch: int) -> Callable[[], None]:
    """The GEMMs of ganforge's step (G once forward and backward, D forward and backward on the
    2B-row real+fake batch, D forward and input-gradient backward on the fakes) and fused Adam."""
    gen = torch.Generator().manual_seed(0)
    rand = lambda *shape: torch.randn(*shape, generator=gen)  # noqa: E731
    g_w = [rand(o, i) for i, o in pairwise(G_SIZES)]
    d_w = [rand(o, i) for i, o in pairwise(D_SIZES)]
    params = [nn.Parameter(w.clone()) for w in g_w + d_w]
    for p in params:
        p.grad = torch.randn_like(p)
    adam = torch.optim.Adam(params, lr=2e-4, betas=(0.5, 0.999), fused=True)
    adam.step()  # allocate the state outside the timing
    # each layer's input; the extra last entry (the output size) is never paired: strict=False below
    g_x = [rand(batch, i) for i in G_SIZES]
    d_x2 = [rand(2 * batch, i) for i in D_SIZES]
    d_x = [rand(batch, i) for i in D_SIZES]

    def step() -> None:
        for x, w in zip(g_x, g_w, strict=False):  # G forward
            torch.mm(x, w.t())
        for x, w in zip(d_x2, d_w, strict=False):  # D forward on real + fake
            torch.mm(x, w.t())
        for k, w in reversed(list(enumerate(d_w))):  # D backward: weight grads, input grads past layer 0
            dz = d_x2[k + 1]
            torch.mm(dz.t(), d_x2[k])
            if k > 0:
                torch.mm(dz, w)
        for x, w in zip(d_x, d_w, strict=False):  # G step: D forward on fake
            torch.mm(x, w.t())
        for k, w in reversed(list(enumerate(d_w))):  # D backward: input grads only
            torch.mm(d_x[k + 1], w)
        for k, w in reversed(list(enumerate(g_w))):  # G backward
            dz = g_x[k + 1]
            torch.mm(dz.t(), g_x[k])
            if k > 0:
                torch.mm(dz, w)
        adam.step()

    return step


def ablation_step(batch: int, adam: str, pair: bool) -> Callable[[], None]:
    """ganforge's step algorithm on the bare tutorial networks with one choice switched:
    ``adam`` in single_tensor / foreach / fused, ``pair``: D scores real and fake in one pass."""
    from ganforge.losses.standard import NonSaturatingLoss
    from ganforge.models import MLPDiscriminator, MLPGenerator
    from ganforge.train.step import GanStep

    torch.manual_seed(0)
    g, d = MLPGenerator(100, (1, 28, 28), (-1.0, 1.0)), MLPDiscriminator((1, 28, 28), dropout=0.0, mbstd=False)
    if not pair:
        d.forward_pair = None  # score_pair then calls D twice
    kind = {"single_tensor": {"foreach": False}, "foreach": {"foreach": True}, "fused": {"fused": True}}[adam]
    opt_g = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999), **kind)
    opt_d = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999), **kind)
    step = GanStep(g, d, NonSaturatingLoss(), opt_g, opt_d, mnist_batches(batch), batch_size=batch, z_dim=100,
                   n_critic=1, device=torch.device("cpu"))
    return lambda: step()
