"""The plugin's own tests: formulas, and that ganforge finds it through its entry point."""

from __future__ import annotations

import importlib.metadata as md
import json
import math

import ganforge_losses
import numpy as np
import pytest
import torch

from ganforge import RunConfig, Trainer
from ganforge.losses import Penalties
from ganforge.plugins import build_registry, get_plugin_manager
from ganforge.testing import check_loss
from ganforge.train.build import build_loss

LOSSES = [ganforge_losses.HingeLoss(), ganforge_losses.LeastSquaresLoss(), ganforge_losses.RelativisticAverageLoss()]


@pytest.mark.parametrize("loss", LOSSES, ids=lambda loss: type(loss).__name__)
def test_conforms_to_the_loss_contract(loss):
    check_loss(loss)


def test_formulas():
    real, fake = torch.tensor([2.0, 0.5]), torch.tensor([-2.0, 0.0])
    assert ganforge_losses.HingeLoss().d_loss(real, fake).item() == pytest.approx(0.25 + 0.5)
    assert ganforge_losses.LeastSquaresLoss().g_loss(fake).item() == pytest.approx(0.5 * (9 + 1) / 2)


def fresh_logits(n_real: int, n_fake: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng()  # fresh OS entropy every run
    return rng.normal(size=n_real) * 3, rng.normal(size=n_fake) * 3


def log_sigmoid(t: np.ndarray) -> np.ndarray:
    return np.log(1.0 / (1.0 + np.exp(-t)))


def test_ragan_matches_the_papers_rasgan_formulas():
    real, fake = fresh_logits(40, 24)  # averages, not pairs: the batches need not match
    d_real = real - fake.mean()  # C(x_r) - E C(x_f)
    d_fake = fake - real.mean()  # C(x_f) - E C(x_r)
    expected_d = -log_sigmoid(d_real).mean() - np.log(1 - 1 / (1 + np.exp(-d_fake))).mean()
    expected_g = -log_sigmoid(d_fake).mean() - np.log(1 - 1 / (1 + np.exp(-d_real))).mean()
    loss = ganforge_losses.RelativisticAverageLoss()
    r, f = torch.from_numpy(real), torch.from_numpy(fake)
    assert loss.d_loss(r, f).item() == pytest.approx(expected_d, rel=1e-10)
    assert loss.g_loss(f, r).item() == pytest.approx(expected_g, rel=1e-10)


def test_ragan_generator_loss_depends_on_the_real_logits():
    loss = ganforge_losses.RelativisticAverageLoss()
    assert loss.g_needs_real
    real, fake = (torch.from_numpy(a) for a in fresh_logits(16, 16))
    assert loss.g_loss(fake, real).item() != pytest.approx(loss.g_loss(fake, real + 1).item())
    with pytest.raises(ValueError, match="needs real_logits"):
        loss.g_loss(fake)


@pytest.mark.parametrize(("loss", "expected"), [
    (ganforge_losses.RelativisticAverageLoss, {"lr_g": 2e-4, "lr_d": 2e-4, "betas": (0.5, 0.999), "n_critic": 1}),
    (ganforge_losses.HingeLoss, {"lr_g": 1e-4, "lr_d": 4e-4, "betas": (0.0, 0.9), "n_critic": 1}),
    (ganforge_losses.LeastSquaresLoss, {"lr_g": 2e-4, "lr_d": 2e-4, "betas": (0.5, 0.999), "n_critic": 1}),
])
def test_optimiser_defaults_of_the_papers(loss, expected):
    assert loss.defaults["optimizer"] == "adam"
    assert {k: loss.defaults[k] for k in expected} == expected


def test_ragan_trains_end_to_end(tmp_path):
    pm = get_plugin_manager(entry_points=False, extra=[ganforge_losses])  # installed or not
    registry = build_registry(pm)
    config = RunConfig(data="ring8", loss="ragan", steps=10, batch_size=16, z_dim=2, out=str(tmp_path / "r"),
                       sample_every=0, ckpt_every=0, log_every=5,
                       options={"gen": {"hidden": (8,)}, "disc": {"hidden": (8,)}})
    trainer = Trainer(config, registry=registry, plugin_manager=pm)
    trainer.fit()
    assert trainer.config.betas == (0.5, 0.999)
    rows = [json.loads(line) for line in trainer.folder.metrics.read_text().splitlines()]
    assert rows and rows[-1]["step"] == 10
    assert all(math.isfinite(r["d_loss"]) and math.isfinite(r["g_loss"]) for r in rows)


@pytest.mark.parametrize("name", ["hinge", "lsgan", "ragan"])
def test_r1_and_r2_are_ganforges_options_for_every_loss_here(name):
    """The losses declare no penalty and accept no r1/r2, yet the run's options reach the step."""
    pm = get_plugin_manager(entry_points=False, extra=[ganforge_losses])
    registry = build_registry(pm)
    config = RunConfig(loss=name, options={"loss": {"r1": 10, "r2": 0.5}})
    assert build_loss(config, registry).penalties == Penalties(10.0, 0.5)
    assert build_loss(RunConfig(loss=name), registry).penalties == Penalties(0.0, 0.0)


def test_registered_through_the_entry_point(tmp_path):
    if not any(ep.name == "losses" and ep.value == "ganforge_losses" for ep in md.entry_points(group="ganforge")):
        pytest.skip("ganforge-losses is not pip-installed here; run: pip install ./plugins/ganforge-losses")
    pm = get_plugin_manager()
    registry = build_registry(pm)
    assert registry.get("loss", "hinge").provider.distribution == "ganforge-losses"
    assert registry.get("loss", "ragan").provider.distribution == "ganforge-losses"
    config = RunConfig(data="ring8", loss="hinge", steps=5, batch_size=16, z_dim=2, out=str(tmp_path / "r"),
                       options={"gen": {"hidden": (8,)}, "disc": {"hidden": (8,)}})
    assert Trainer(config, registry=registry, plugin_manager=pm).fit().is_dir()
