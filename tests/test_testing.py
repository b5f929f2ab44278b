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
