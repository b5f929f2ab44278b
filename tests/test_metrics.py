"""Metrics against independent references: scipy, closed forms, brute force, the prdc package."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import torch

from ganforge.data.mixtures import grid25, ring8
from ganforge.metrics.fid import fid
from ganforge.metrics.inception_score import inception_score
from ganforge.metrics.kid import kid, mmd2_unbiased
from ganforge.metrics.modes import mode_stats
from ganforge.metrics.prdc import prdc


def fresh_rng():
    return np.random.default_rng()  # fresh inputs every run: the checks hold for any draw


def scipy_fid(a, b):
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


def test_fid_matches_scipy_sqrtm():
    rng = fresh_rng()
    a = rng.normal(size=(600, 16)) @ rng.normal(size=(16, 16))
    b = rng.normal(size=(500, 16)) * 1.3 + 0.2
    assert fid(a, b) == pytest.approx(scipy_fid(a, b), rel=1e-6)


def test_fid_closed_form_for_two_gaussians():
    # For N(m1, s1^2 I) and N(m2, s2^2 I) in d dims: |m1-m2|^2 + d (s1 - s2)^2
    rng = fresh_rng()
    d, n = 4, 200_000
    a = rng.normal(0.0, 1.0, size=(n, d))
    b = rng.normal(0.5, 2.0, size=(n, d))
    assert fid(a, b) == pytest.approx(d * 0.25 + d * 1.0, rel=0.02)


def test_fid_warns_when_fewer_samples_than_dimensions():
    with pytest.warns(RuntimeWarning, match="singular"):
        fid(np.random.rand(5, 10), np.random.rand(5, 10))


def naive_mmd2(x, y):
    k = lambda a, b: (np.dot(a, b) / len(a) + 1) ** 3  # noqa: E731
    m, n = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return xx + yy - 2 * xy


def test_kid_matches_a_naive_loop():
    rng = fresh_rng()
    x, y = rng.normal(size=(25, 6)), rng.normal(0.3, 1.0, size=(20, 6))
    assert mmd2_unbiased(x, y) == pytest.approx(naive_mmd2(x, y), rel=1e-9)
    mean, std = kid(x, y, n_subsets=1, subset_size=1000)  # one subset = everything (size min(N, M))
    assert std == 0.0


def test_kid_is_near_zero_for_the_same_distribution_and_deterministic():
    rng = fresh_rng()
    a, b = rng.normal(size=(2000, 8)), rng.normal(size=(2000, 8))
    mean, _ = kid(a, b, n_subsets=20, subset_size=500)
    assert abs(mean) < 0.05
    assert kid(a, b, n_subsets=5, seed=3) == kid(a, b, n_subsets=5, seed=3)


def brute_prdc(real, fake, k):
    real, fake = np.asarray(real), np.asarray(fake)
    drr = np.linalg.norm(real[:, None] - real[None], axis=-1)
    dff = np.linalg.norm(fake[:, None] - fake[None], axis=-1)
    drf = np.linalg.norm(real[:, None] - fake[None], axis=-1)
    rr = np.sort(drr, axis=1)[:, k]
    rf = np.sort(dff, axis=1)[:, k]
    precision = np.mean([(drf[:, j] <= rr).any() for j in range(len(fake))])
    recall = np.mean([(drf[i, :] <= rf).any() for i in range(len(real))])
    density = sum((drf[:, j] <= rr).sum() for j in range(len(fake))) / (k * len(fake))
    coverage = np.mean([drf[i].min() <= rr[i] for i in range(len(real))])
    return dict(precision=precision, recall=recall, density=density, coverage=coverage)


@pytest.mark.parametrize("k", [3, 5])
def test_prdc_matches_brute_force(k):
    rng = fresh_rng()
    real, fake = rng.normal(size=(120, 5)), rng.normal(0.4, 1.2, size=(90, 5))
    got = prdc(torch.from_numpy(real), torch.from_numpy(fake), k_pr=k, k_dc=k)
    want = brute_prdc(real, fake, k)
    for key in want:
        assert got[key] == pytest.approx(want[key], abs=1e-12), key


def test_prdc_matches_the_prdc_package():
    prdc_pkg = pytest.importorskip("prdc", reason="the prdc package (pip install prdc) is the reference")
    rng = fresh_rng()
    real, fake = rng.normal(size=(300, 8)), rng.normal(0.2, 1.1, size=(250, 8))
    want = prdc_pkg.compute_prdc(real_features=real, fake_features=fake, nearest_k=5)
    got = prdc(torch.from_numpy(real), torch.from_numpy(fake), k_pr=5, k_dc=5)
    for key in ("precision", "recall", "density", "coverage"):
        assert got[key] == pytest.approx(float(want[key]), abs=1e-9), key


def test_prdc_handles_10000_by_10000_in_blocks():
    rng = fresh_rng()
    real = torch.from_numpy(rng.normal(size=(10_000, 2)))
    fake = torch.from_numpy(rng.normal(size=(10_000, 2)))
    out = prdc(real, fake)
    assert out["coverage"] > 0.9 and 0.9 < out["precision"] <= 1


def test_real_vs_real_gives_fid_near_zero_and_full_coverage():
    rng = fresh_rng()
    a, b = rng.normal(size=(5000, 8)), rng.normal(size=(5000, 8))
    assert fid(a, b) < 0.05
    assert prdc(torch.from_numpy(a), torch.from_numpy(b))["coverage"] > 0.95


@pytest.mark.parametrize("make, n_modes", [(ring8, 8), (grid25, 25)])
def test_modes_on_true_samples(make, n_modes):
    data = make()
    samples = data.sample(25_000, torch.Generator().manual_seed(int(np.random.randint(1 << 30))))
    out = mode_stats(samples, data.modes, data.std)
    assert out["modes"] == n_modes
    assert out["high_quality"] == pytest.approx(100 * (1 - math.exp(-4.5)), abs=0.5)  # 98.9 %
    assert out["reverse_kl"] < 0.01


def test_modes_of_a_collapsed_generator():
    data = grid25()
    collapsed = data.modes[7] + 0.01 * torch.randn(2500, 2)
    out = mode_stats(collapsed, data.modes, data.std)
    assert out["modes"] == 1 and out["reverse_kl"] == pytest.approx(math.log(25))


def test_inception_score_bounds():
    confident_uniform = torch.eye(10).repeat(100, 1)
    assert inception_score(confident_uniform, splits=10)[0] == pytest.approx(10.0, rel=1e-6)
    one_class = torch.zeros(1000, 10)
    one_class[:, 3] = 1
    assert inception_score(one_class)[0] == pytest.approx(1.0, rel=1e-6)


# -- how a metric is displayed -----------------------------------------------------------------

def test_a_metric_declares_its_labels_and_format():
    from ganforge.metrics.base import Metric
    from ganforge.metrics.builtin_metrics import FID, KID, PRDC, InceptionScore, Legible, Modes

    assert Metric().format({"x": 1.234567, "y": 2.0, "y_std": 0.01234}) == {"x": "1.235", "y": "2 ± 0.012"}
    assert Metric().format({"y": 2.0, "y_std": 0.01234}, spread=False) == {"y": "2"}
    assert Modes().format({"modes": 7.0, "modes_total": 8.0, "high_quality": 91.25, "reverse_kl": 0.0123}) == {
        "modes": "7 / 8", "high_quality": "91.25", "reverse_kl": "0.0123"}
    labels = {**FID.labels, **KID.labels, **PRDC.labels, **InceptionScore.labels, **Legible.labels, **Modes.labels}
    assert labels == {"fid": "FID", "kid": "KID (MMD^2)", "is": "IS", "precision": "precision", "recall": "recall",
                      "density": "density", "coverage": "coverage", "legible": "legible share",
                      "classes": "digit classes", "rarest_class": "rarest class share", "modes": "modes captured",
                      "high_quality": "high-quality %", "reverse_kl": "reverse KL"}


def test_the_eval_table_is_rendered_from_the_metrics_declarations():
    """`ganforge eval` spells no metric's key: each row is its metric's label and format, the
    real-vs-real column without the spread, and keys no metric claims in the default format."""
    import inspect

    import ganforge.cli.evaluate as cli
    from ganforge.metrics.builtin_metrics import KID, Modes
    from ganforge.metrics.evaluate import EvalResult

    source = inspect.getsource(cli)
    assert not any(f'"{key}"' in source for key in ("fid", "kid", "modes", "modes_total", "legible", "_std"))
    result = EvalResult(1, 10, 10, values={"modes": 3.0, "modes_total": 8.0, "kid": 0.5, "kid_std": 0.01, "odd": 2.0},
                        floor={"kid": 0.001, "kid_std": 0.0001}, metrics={"modes": Modes(), "kid": KID()},
                        keys={"modes": ["modes", "modes_total"], "kid": ["kid", "kid_std"]})
    assert cli.rows(result) == [("modes captured", "3 / 8", ""), ("KID (MMD^2)", "0.5 ± 0.01", "0.001"),
                                ("odd", "2", "")]
