"""The mlp generator's discrete latent code (``gen.classes``): a class read off the noise."""

from __future__ import annotations

import math

import pytest
import torch
from scipy import stats

from ganforge.errors import ConfigError
from ganforge.models import MLPGenerator
from ganforge.models.mlp import DiscreteCode


@pytest.mark.parametrize("classes", [2, 7, 50])
def test_classes_are_equally_likely_under_gaussian_noise(classes):
    z = torch.randn(20_000, 3)
    counts = DiscreteCode(classes)(z)[:, 3:].sum(0)
    assert counts.sum() == len(z)  # exactly one class per sample
    _, p = stats.chisquare(counts.numpy())  # independent reference: scipy's goodness of fit
    assert p > 1e-4


def test_the_class_is_the_normal_cdf_bucket_of_the_first_noise_value():
    classes = 9
    z = torch.randn(500, 2, dtype=torch.float64)
    expected = torch.tensor([min(int(classes * stats.norm.cdf(v)), classes - 1) for v in z[:, 0].tolist()])
    code = DiscreteCode(classes)(z)
    assert torch.equal(code[:, :2], z)
    assert torch.equal(code[:, 2:].argmax(1), expected)


def test_the_generator_reads_z_and_the_code_and_its_gradients_reach_every_weight():
    g = MLPGenerator(2, (2,), hidden=(16, 16), classes=5)
    assert g.net[1].in_features == 2 + 5
    z = torch.randn(64, 2, requires_grad=True)
    g(z).square().sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in g.parameters())
    assert z.grad.abs().sum() > 0


def test_without_classes_the_network_and_its_state_dict_are_unchanged():
    g = MLPGenerator(2, (2,), hidden=(16,))
    assert not any(isinstance(m, DiscreteCode) for m in g.modules())
    assert next(iter(g.state_dict())) == "net.0.weight"


@pytest.mark.parametrize("bad", [1, -3, 2.5, True, "ten"])
def test_a_bad_class_count_names_the_option_and_an_example(bad):
    with pytest.raises(ConfigError, match=r"gen\.classes.*--set gen\.classes=50"):
        MLPGenerator(2, (2,), classes=bad)


def test_noise_on_the_cdf_boundary_gets_the_last_class_not_an_extra_one():
    code = DiscreteCode(4)(torch.tensor([[math.inf, 0.0], [-math.inf, 0.0]]))
    assert code[:, 2:].tolist() == [[0, 0, 0, 1], [1, 0, 0, 0]]
