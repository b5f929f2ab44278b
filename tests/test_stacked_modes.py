"""The stacked-modes metric: PacGAN's mode count and KL to uniform, its classifier, its floor."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import entropy

from ganforge.data.mnist import MNIST
from ganforge.data.stacked_mnist import StackedMNIST, mode_of
from ganforge.errors import ConfigError
from ganforge.metrics.base import EvalData
from ganforge.metrics.stacked_modes import StackedModes, centre_digits, digit_stats, mode_stats


@pytest.fixture(scope="module")
def stacked() -> StackedMNIST:
    return StackedMNIST()


@pytest.fixture(scope="module")
def metric() -> StackedModes:
    return StackedModes()


def eval_data(fake: torch.Tensor, dataset, seed: int = 0) -> EvalData:
    return EvalData(fake, fake[:1], dataset.info, dataset, None, seed)


def real_stacks(dataset: StackedMNIST, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    return dataset.sample_with_labels(n, torch.Generator().manual_seed(seed), split="test")


@pytest.mark.parametrize("seed", range(5))
def test_kl_is_scipy_relative_entropy_to_uniform(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 30_000))
    # from spread out to a few modes: the concentration of a Dirichlet over the 1,000 modes
    p = rng.dirichlet(np.full(1000, 10.0 ** rng.uniform(-2, 1)))
    modes = torch.from_numpy(rng.choice(1000, size=n, p=p))
    stats = mode_stats(modes)
    counts = np.bincount(modes.numpy(), minlength=1000)
    assert stats["kl"] == pytest.approx(entropy(counts / n, np.full(1000, 1e-3)), rel=1e-9, abs=1e-12)
    assert stats["modes"] == (counts > 0).sum() and stats["n"] == n


@pytest.mark.parametrize("seed", range(5))
def test_kl_parts_are_scipy_relative_entropies_and_sum_to_the_kl(seed):
    """The channels' part against scipy's KL of each channel's shares to 1/10, the dependence
    against scipy's KL of the joint to the product of the marginals; the two add up to the KL
    to uniform (the chain rule), which nothing in the code forces."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(50, 30_000))
    # channels skewed by a Dirichlet each, then a share of samples copying R's digit into G
    shares = [rng.dirichlet(np.full(10, 10.0 ** rng.uniform(-1, 1))) for _ in range(3)]
    digits = np.stack([rng.choice(10, size=n, p=p) for p in shares], 1)
    copy = rng.random(n) < rng.uniform(0, 0.5)
    digits[copy, 1] = digits[copy, 0]
    stats = digit_stats(torch.from_numpy(digits))
    marginals = [np.bincount(digits[:, c], minlength=10) / n for c in range(3)]
    channels = sum(entropy(m, np.full(10, 0.1)) for m in marginals)
    joint = np.bincount(digits[:, 0] * 100 + digits[:, 1] * 10 + digits[:, 2], minlength=1000) / n
    product = np.einsum("i,j,k->ijk", *marginals).reshape(-1)
    assert stats["kl_channels"] == pytest.approx(channels, rel=1e-9, abs=1e-12)
    assert stats["kl_dependence"] == pytest.approx(entropy(joint, product), rel=1e-9, abs=1e-12)
    assert stats["rarest_digit"] == pytest.approx(min(m.min() for m in marginals))
    total = mode_stats(torch.from_numpy(digits[:, 0] * 100 + digits[:, 1] * 10 + digits[:, 2]))["kl"]
    assert stats["kl_channels"] + stats["kl_dependence"] == pytest.approx(total, rel=1e-9, abs=1e-12)


def test_kl_parts_of_constructed_digit_sets():
    every = torch.tensor([[m // 100, m // 10 % 10, m % 10] for m in range(1000)])
    assert digit_stats(every) == {"kl_channels": 0.0, "kl_dependence": 0.0, "rarest_digit": 0.1}
    # every channel uniform, but G's digit always equal to R's: all of the KL is dependence
    tied = torch.tensor([[d, d, b] for d in range(10) for b in range(10)])
    assert digit_stats(tied) == {"kl_channels": pytest.approx(0.0, abs=1e-12),
                                 "kl_dependence": pytest.approx(math.log(10)), "rarest_digit": 0.1}
    # independent channels, R never draws a 1: all of it is the channels' shares
    no_ones = every[every[:, 0] != 1]
    stats = digit_stats(no_ones)
    assert stats["kl_channels"] == pytest.approx(math.log(10 / 9)) and stats["rarest_digit"] == 0.0
    assert stats["kl_dependence"] == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="no samples"):
        digit_stats(torch.empty(0, 3, dtype=torch.int64))


@pytest.mark.parametrize("k", [1, 2, 37, 500, 999, 1000])
def test_mode_count_of_constructed_label_sets(k):
    chosen = torch.randperm(1000, generator=torch.Generator().manual_seed(k))[:k]
    modes = chosen.repeat(3)
    stats = mode_stats(modes)
    assert stats["modes"] == k
    assert stats["kl"] == pytest.approx(math.log(1000 / k), abs=1e-12)  # k equally full modes


def test_every_mode_once_and_one_mode_only():
    assert mode_stats(torch.arange(1000)) == {"modes": 1000.0, "kl": 0.0, "n": 1000.0}
    assert mode_stats(torch.full((26_000,), 123)) == {"modes": 1.0, "kl": pytest.approx(math.log(1000)),
                                                      "n": 26_000.0}
    with pytest.raises(ValueError, match="no samples"):
        mode_stats(torch.empty(0, dtype=torch.int64))


def test_applies_to_stacked_mnist_only(metric, stacked):
    assert metric.applies_to(stacked.info, stacked)
    mnist = MNIST()
    assert not metric.applies_to(mnist.info, mnist) and not metric.applies_to(stacked.info, None)
    with pytest.raises(ConfigError, match="--data stacked-mnist"):
        metric.compute(eval_data(torch.zeros(4, 3, 28, 28), mnist))
    assert metric.real_floor(eval_data(torch.zeros(4, 3, 28, 28), mnist)) is None
    assert not metric.needs_features and metric.has_floor


def test_the_classifier_reads_real_stacks(metric, stacked):
    """At N=2,000 the classified modes are those of the true labels, up to the classifier's ~2% of
    misread digits (a too-weak classifier, or channels read in the wrong order, fails here)."""
    stacks, labels = real_stacks(stacked, 2000, seed=1)
    read = metric.digits_of(stacks)
    assert (read == labels).double().mean() > 0.97
    truth, got = mode_stats(mode_of(labels)), metric.compute(eval_data(stacks, stacked))
    assert abs(got["modes"] - truth["modes"]) <= 15 and abs(got["kl"] - truth["kl"]) < 0.03
    assert got["n"] == 2000


def test_a_collapsed_generator_has_one_mode(metric, stacked):
    one = stacked.sample(1, torch.Generator().manual_seed(3))
    stats = metric.compute(eval_data(one.expand(300, -1, -1, -1), stacked))
    assert stats["modes"] == 1 and stats["kl"] == pytest.approx(math.log(1000))


def test_32_pixel_stacks_are_read_at_their_centre(metric, stacked):
    padded = StackedMNIST(size=32)
    x32, labels = real_stacks(padded, 100, seed=4)
    x28, _ = real_stacks(stacked, 100, seed=4)
    assert torch.equal(centre_digits(x32), centre_digits(x28))
    assert torch.equal(metric.digits_of(x32), metric.digits_of(x28))
    with pytest.raises(ConfigError, match=r"shape \(3, H, W\)"):
        centre_digits(torch.zeros(2, 1, 28, 28))


def test_real_floor_is_the_metric_on_fresh_real_stacks(metric, stacked):
    fake = torch.zeros(400, 3, 28, 28)
    floor = metric.real_floor(eval_data(fake, stacked, seed=5))
    assert floor is not None and set(floor) == {"modes", "kl", "kl_channels", "kl_dependence", "rarest_digit",
                                                "n", "classifier_accuracy"}
    assert floor["n"] == 400 and 300 < floor["modes"] <= 400 and 0.9 < floor["classifier_accuracy"] <= 1
    assert metric.real_floor(eval_data(fake, stacked, seed=5)) == floor  # seeded
    assert metric.real_floor(eval_data(fake, stacked, seed=6)) != floor


def test_format_shows_modes_out_of_1000(metric):
    shown = metric.format({"modes": 987.0, "kl": 0.0412, "n": 26_000.0, "classifier_accuracy": 0.9823})
    assert shown == {"modes": "987 / 1000", "kl": "0.0412", "n": "26,000", "classifier_accuracy": "98.23%"}


@pytest.mark.slow
def test_pacgan_protocol_on_real_stacks(metric, stacked):
    """N=26,000 real stacks: all 1,000 modes and a KL near the finite-sample 999 / (2N) = 0.019."""
    stacks, _ = real_stacks(stacked, 26_000, seed=0)
    data = eval_data(stacks, stacked)
    stats = metric.compute(data)
    assert stats["modes"] == 1000 and stats["kl"] < 0.05
    floor = metric.real_floor(data)
    assert floor is not None and floor["modes"] == 1000 and floor["kl"] < 0.05
    assert floor["classifier_accuracy"] > 0.975
