"""The plugin-author conformance checks accept every built-in and reject broken components."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ganforge.losses import GanLoss
from ganforge.testing import (
    check_dataset,
    check_discriminator,
    check_generator,
    check_loss,
)


def test_builtins_conform(registry):
    check_generator(registry.get("generator", "mlp").factory, hidden=(16,))
    check_discriminator(registry.get("discriminator", "mlp").factory, hidden=(16,))
    for name in registry.names("loss"):
        check_loss(registry.get("loss", name).build())
    for name in ("ring8", "grid25", "digits"):
        check_dataset(registry.get("dataset", name).build())


def test_a_log_of_sigmoid_loss_is_caught():
    class Naive(GanLoss):
        def d_loss(self, real, fake):
            return -(torch.log(torch.sigmoid(real)) + torch.log(1 - torch.sigmoid(fake))).mean()

        def g_loss(self, fake):
            return -torch.log(torch.sigmoid(fake)).mean()

    with pytest.raises(AssertionError, match="not finite"):
        check_loss(Naive())


def test_a_discriminator_returning_probabilities_of_the_wrong_shape_is_caught():
    def factory(sample_shape):
        return nn.Sequential(nn.Flatten(), nn.Linear(64, 2))

    with pytest.raises(AssertionError, match="logits of shape"):
        check_discriminator(factory)


class _Points:
    """A tiny points data set whose flaws the tests switch on one at a time."""

    def __init__(self, dtype=torch.float32, finite=True, endless=True, seeded=True):
        from ganforge.data.base import DataInfo

        self.info = DataInfo((2,), None, "points")
        self.dtype, self.finite, self.endless, self.seeded = dtype, finite, endless, seeded

    def batches(self, batch_size, generator):
        for _ in range(10**9 if self.endless else 3):
            x = torch.randn(batch_size, 2, generator=generator if self.seeded else None).to(self.dtype)
            if not self.finite:
                x[0, 0] = float("nan")
            yield x

    def real_samples(self, n, generator, split="test"):
        return torch.randn(n, 2, generator=generator)


@pytest.mark.parametrize("flaw, message", [
    ({"dtype": torch.float64}, "float32"),
    ({"finite": False}, "NaN"),
    ({"endless": False}, "endless"),
    ({"seeded": False}, "generator"),
])
def test_check_dataset_catches_what_would_break_training(flaw, message):
    check_dataset(_Points())  # the sound one passes
    with pytest.raises(AssertionError, match=message):
        check_dataset(_Points(**flaw))


def test_a_plugin_default_that_is_not_a_setting_names_the_plugin(tmp_path, plugin_manager):
    from ganforge import RunConfig, Trainer, hookimpl
    from ganforge.errors import PluginError
    from ganforge.losses import NonSaturatingLoss
    from ganforge.plugins import build_registry

    class Typo(NonSaturatingLoss):
        defaults = {"n_critc": 5}

    class Bad(NonSaturatingLoss):
        defaults = {"n_critic": "five"}

    class Plugin:
        @hookimpl
        def ganforge_register_losses(self, register):
            register("typo", Typo)
            register("bad", Bad)

    plugin_manager.register(Plugin(), name="sloppy-plugin")
    registry = build_registry(plugin_manager)
    for name, key in (("typo", "n_critc"), ("bad", "n_critic")):
        with pytest.raises(PluginError, match=f"sloppy-plugin.*{key}"):
            Trainer(RunConfig(data="ring8", loss=name, out=str(tmp_path / name)), registry=registry,
                    plugin_manager=plugin_manager)
