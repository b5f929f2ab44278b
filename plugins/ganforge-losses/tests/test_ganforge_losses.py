"""The plugin's own tests: formulas, and that ganforge finds it through its entry point."""

from __future__ import annotations

import importlib.metadata as md

import ganforge_losses
import pytest
import torch

from ganforge import RunConfig, Trainer
from ganforge.plugins import build_registry, get_plugin_manager
from ganforge.testing import check_loss


@pytest.mark.parametrize("loss", [ganforge_losses.HingeLoss(), ganforge_losses.LeastSquaresLoss()])
def test_conforms_to_the_loss_contract(loss):
    check_loss(loss)


def test_formulas():
    real, fake = torch.tensor([2.0, 0.5]), torch.tensor([-2.0, 0.0])
    assert ganforge_losses.HingeLoss().d_loss(real, fake).item() == pytest.approx(0.25 + 0.5)
    assert ganforge_losses.LeastSquaresLoss().g_loss(fake).item() == pytest.approx(0.5 * (9 + 1) / 2)


def test_registered_through_the_entry_point(tmp_path):
    if not any(ep.name == "losses" and ep.value == "ganforge_losses" for ep in md.entry_points(group="ganforge")):
        pytest.skip("ganforge-losses is not pip-installed here; run: pip install ./plugins/ganforge-losses")
    pm = get_plugin_manager()
    registry = build_registry(pm)
    assert registry.get("loss", "hinge").provider.distribution == "ganforge-losses"
    config = RunConfig(data="ring8", loss="hinge", steps=5, batch_size=16, z_dim=2, out=str(tmp_path / "r"),
                       options={"gen": {"hidden": (8,)}, "disc": {"hidden": (8,)}})
    assert Trainer(config, registry=registry, plugin_manager=pm).fit().is_dir()
