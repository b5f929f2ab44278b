"""R1 and R2 are the training step's, for every loss: a plugin loss takes ``--set loss.r1=...``.

The example plugin's ``hinge`` (plugins/ganforge-losses) knows nothing of penalties; these tests
show that D's update with it moves by exactly the R1/R2 gradient, computed here independently
(one sample at a time, without ganforge's batched form), that a plugin loss may declare default
weights, and that the option works from the command line with an installed plugin.
"""

from __future__ import annotations

import copy
import itertools
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from ganforge import RunConfig, hookimpl
from ganforge.errors import ConfigError, PluginError
from ganforge.losses import GanLoss, Penalties, split_penalty_options
from ganforge.models import MLPDiscriminator
from ganforge.plugins import build_registry, get_plugin_manager
from ganforge.registry import Registry
from ganforge.run.folder import RunFolder
from ganforge.train.build import build_loss
from ganforge.train.step import GanStep

PLUGIN_DIR = Path(__file__).resolve().parents[1] / "plugins" / "ganforge-losses"
if str(PLUGIN_DIR) not in sys.path:
    sys.path.append(str(PLUGIN_DIR))  # an installed copy, if any, still comes first

import ganforge_losses  # noqa: E402

BATCH, Z_DIM, LR = 16, 3, 0.1


class HingeWithR1(ganforge_losses.HingeLoss):
    """A plugin loss that declares a default R1 weight, and nothing else about penalties."""

    default_penalties = {"r1": 2.5}


class PenaltyDefaultsPlugin:
    @hookimpl
    def ganforge_register_losses(self, register):  # type: ignore[no-untyped-def]
        register("hinge-r1", HingeWithR1)


def plugin_registry(*extra: object) -> Registry:
    """The built-ins, the example plugin and ``extra`` plugins, never what else is installed."""
    return build_registry(get_plugin_manager(entry_points=False, extra=[ganforge_losses, *extra]))


@pytest.fixture(scope="module")
def registry() -> Registry:
    return plugin_registry(PenaltyDefaultsPlugin())


def loss_from_the_run(registry: Registry, name: str, **options: object) -> GanLoss:
    """The loss as ``ganforge run --loss NAME --set loss.KEY=VALUE ...`` builds it."""
    return build_loss(RunConfig(loss=name, options={"loss": dict(options)}), registry)


# --- where the weights come from --------------------------------------------------------------

def test_a_plugin_loss_takes_r1_and_r2_though_its_factory_does_not(registry):
    assert loss_from_the_run(registry, "hinge").penalties == Penalties(0.0, 0.0)
    assert loss_from_the_run(registry, "hinge", r1=10).penalties == Penalties(10.0, 0.0)
    assert loss_from_the_run(registry, "lsgan", r1=1, r2=2.5).penalties == Penalties(1.0, 2.5)


def test_a_plugin_loss_declares_default_weights_that_the_run_overrides(registry):
    assert loss_from_the_run(registry, "hinge-r1").penalties == Penalties(2.5, 0.0)
    assert loss_from_the_run(registry, "hinge-r1", r1=0).penalties == Penalties(0.0, 0.0)
    assert loss_from_the_run(registry, "hinge-r1", r2=4).penalties == Penalties(2.5, 4.0)
    assert HingeWithR1().penalties == Penalties(2.5, 0.0)  # from Python too, without the run


def test_rpgan_declares_point_01_each_and_gamma_sets_both(registry):
    assert loss_from_the_run(registry, "rpgan").penalties == Penalties(0.01, 0.01)
    assert loss_from_the_run(registry, "rpgan", gamma=0.5).penalties == Penalties(0.5, 0.5)
    assert loss_from_the_run(registry, "rpgan", r1=0.2).penalties == Penalties(0.2, 0.01)
    assert loss_from_the_run(registry, "rpgan", gamma=0.5, r2=0).penalties == Penalties(0.5, 0.0)


@pytest.mark.parametrize("value", [-1, float("nan"), "ten", True])
def test_a_bad_weight_with_a_plugin_loss_names_the_option(registry, value):
    with pytest.raises(ConfigError, match=r"loss\.r1 must be .*>= 0.*e\.g\. --set loss\.r1="):
        loss_from_the_run(registry, "hinge", r1=value)


def test_other_options_still_reach_the_factory_and_its_messages():
    weights, rest = split_penalty_options({"r1": 1, "gamma": 0.5, "clip": 0.1})
    assert weights == {"r1": 1.0} and rest == {"gamma": 0.5, "clip": 0.1}
    with pytest.raises(ConfigError, match="loss 'hinge' does not accept"):
        loss_from_the_run(plugin_registry(), "hinge", r3=1)


@pytest.mark.parametrize("declared", [{"gamma": 1.0}, {"r1": -1.0}])
def test_a_bad_declared_weight_is_the_plugins_mistake(declared):
    class Bad(ganforge_losses.HingeLoss):
        default_penalties = declared

    class BadPlugin:
        @hookimpl
        def ganforge_register_losses(self, register):  # type: ignore[no-untyped-def]
            register("bad", Bad)

    with pytest.raises(PluginError, match=r"loss 'bad' from plugin .*default_penalties.*the plugin needs fixing"):
        loss_from_the_run(plugin_registry(BadPlugin()), "bad")


# --- what the step does with them -------------------------------------------------------------

class SmallCritic(nn.Module):
    """A plain two-layer critic without ``forward_pair``: scored twice, penalised per batch."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(1)


def critics() -> dict[str, nn.Module]:
    return {"plain": SmallCritic(),
            "mlp": MLPDiscriminator((2,), hidden=(8, 8), dropout=0.0, mbstd=False)}  # has forward_pair


def d_after_one_step(generator: nn.Module, critic: nn.Module, loss: GanLoss, real: torch.Tensor,
                     seed: int) -> list[torch.Tensor]:
    """D's parameters after one step (one D update, plain SGD) from copies of the given networks."""
    G, D = copy.deepcopy(generator), copy.deepcopy(critic)
    step = GanStep(G, D, loss, torch.optim.SGD(G.parameters(), lr=LR), torch.optim.SGD(D.parameters(), lr=LR),
                   itertools.repeat(real), batch_size=BATCH, z_dim=Z_DIM, n_critic=1, device=torch.device("cpu"))
    torch.manual_seed(seed)
    step()
    return [p.detach().clone() for p in D.parameters()]


def independent_penalty_gradient(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor,
                                 r1: float, r2: float) -> list[torch.Tensor]:
    """d/dtheta of (r1/2) E||grad_x D(x_real)||^2 + (r2/2) E||grad_x D(x_fake)||^2, one sample's
    input gradient at a time."""
    def mean_squared_norm(batch: torch.Tensor) -> torch.Tensor:
        total = torch.zeros(())
        for x in batch:
            x = x.clone().requires_grad_(True)
            (g,) = torch.autograd.grad(critic(x[None]).sum(), x, create_graph=True)
            total = total + g.pow(2).sum()
        return total / len(batch)

    penalty = r1 / 2 * mean_squared_norm(real) + r2 / 2 * mean_squared_norm(fake)
    grads = torch.autograd.grad(penalty, list(critic.parameters()), allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for p, g in zip(critic.parameters(), grads, strict=True)]


@pytest.mark.parametrize("critic_kind", ["plain", "mlp"])
@pytest.mark.parametrize(("name", "options", "weights"), [
    ("hinge", {"r1": 10.0}, (10.0, 0.0)),
    ("hinge", {"r1": 3.0, "r2": 5.0}, (3.0, 5.0)),
    ("hinge-r1", {}, (2.5, 0.0)),  # the plugin's declared default
], ids=["hinge r1=10", "hinge r1=3 r2=5", "declared r1=2.5"])
def test_the_step_moves_d_by_exactly_the_penalty_gradient(registry, critic_kind, name, options, weights):
    seed = int.from_bytes(os.urandom(4), "little")
    print(f"torch seed {seed}")
    torch.manual_seed(seed)
    generator, critic = nn.Linear(Z_DIM, 2), critics()[critic_kind]
    real = torch.randn(BATCH, 2) * 2

    plain = d_after_one_step(generator, critic, loss_from_the_run(registry, "hinge"), real, seed)
    penalised = d_after_one_step(generator, critic, loss_from_the_run(registry, name, **options), real, seed)

    torch.manual_seed(seed)  # the step's first draw is the noise of its fake batch
    fake = generator(torch.randn(BATCH, Z_DIM)).detach()
    expected = independent_penalty_gradient(critic, real, fake, *weights)
    assert any(g.abs().max() > 1e-3 for g in expected), "the penalty must reach D's weights"
    for before_p, after_p, grad in zip(plain, penalised, expected, strict=True):
        # plain SGD: the same D loss gradient in both, so the difference is -lr * penalty gradient
        assert torch.allclose(after_p - before_p, -LR * grad, rtol=1e-4, atol=1e-6)


def test_the_step_adds_nothing_and_skips_d_when_the_weights_are_off(registry):
    calls = []

    class Counting(SmallCritic):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            calls.append(x.requires_grad)
            return super().forward(x)

    torch.manual_seed(0)
    d_after_one_step(nn.Linear(Z_DIM, 2), Counting(), loss_from_the_run(registry, "hinge"), torch.randn(BATCH, 2), 0)
    assert len(calls) == 3  # D(real) and D(fake) for D's loss, D(fake) for G's: no penalty pass


# --- from the command line, with the plugin installed ----------------------------------------

def installed_plugin_site(tmp_path: Path) -> Path:
    """A site folder in which ganforge-losses looks pip-installed: its distribution metadata with
    the entry point, the module itself beside it."""
    site = tmp_path / "site"
    dist = site / "ganforge_losses-0.1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: ganforge-losses\nVersion: 0.1.0\n")
    (dist / "entry_points.txt").write_text("[ganforge]\nlosses = ganforge_losses\n")
    (site / "ganforge_losses.py").write_text((PLUGIN_DIR / "ganforge_losses.py").read_text())
    return site


def run_cli(site: Path, out: Path, *extra: str) -> list[dict]:
    path = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "PYTHONPATH": path}
    args = [sys.executable, "-m", "ganforge", "run", "--loss", "hinge", "--data", "ring8", "--steps", "20",
            "--batch-size", "32", "--z-dim", "2", "--seed", "0", "--threads", "1", "--device", "cpu",
            "--log-every", "1", "--sample-every", "0", "--ckpt-every", "0",
            "--set", "gen.hidden=16", "--set", "disc.hidden=16", "--out", str(out), *extra]
    result = subprocess.run(args, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    return RunFolder(out).read_metrics()


def test_set_loss_r1_with_the_plugins_hinge_from_the_command_line(tmp_path):
    site = installed_plugin_site(tmp_path)
    without = run_cli(site, tmp_path / "plain")
    with_r1 = run_cli(site, tmp_path / "r1", "--set", "loss.r1=10")
    assert [r["step"] for r in with_r1] == list(range(1, 21))
    assert all(torch.isfinite(torch.tensor([r["d_loss"], r["g_loss"]])).all() for r in with_r1)
    # step 1 scores the same batch with the same weights; D's logged loss then includes R1 >= 0
    assert with_r1[0]["d_loss"] > without[0]["d_loss"]
    assert RunFolder(tmp_path / "r1").recorded_config()["options"]["loss"] == {"r1": 10}
