"""scripts/divergence.py (the theory tools, kept out of the package) against independent references,
and the statements of docs/theory.md.

References: scipy.integrate (quad, dblquad) for JS and the theorems' integrals, scipy.stats for
Gaussian densities and the 1-D Wasserstein distance, scikit-learn's KernelDensity for the KDE,
plain histograms of the data sets' own samples for the mixture density.

Inputs are fresh every run: each test draws its own seed (printed; pytest shows it when a test
fails, and ``GANFORGE_TEST_SEED=S`` replays it). Monte-Carlo comparisons allow 5 standard errors,
each computed from the samples themselves: a correct estimator misses by more with probability
about 6e-7 per comparison, and each test also bounds the standard error so that the check stays
sharp.
"""

from __future__ import annotations

import importlib.util
import math
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import integrate, stats
from scipy.special import expit, logsumexp

from ganforge.data.mixtures import grid25, ring8

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "divergence.py"


def _load_script(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module  # its dataclasses look their module up while they are built
    spec.loader.exec_module(module)
    return module


_divergence = _load_script(SCRIPT)
Estimate = _divergence.Estimate
gaussian_kde = _divergence.gaussian_kde
js_divergence = _divergence.js_divergence
js_lower_bound = _divergence.js_lower_bound
loo_log_likelihood = _divergence.loo_log_likelihood
mixture_density = _divergence.mixture_density
mixture_log_density = _divergence.mixture_log_density
optimal_discriminator = _divergence.optimal_discriminator
select_bandwidth = _divergence.select_bandwidth

LOG2 = math.log(2.0)
N_SIGMA = 5.0


@pytest.fixture
def rng() -> np.random.Generator:
    seed = int(os.environ.get("GANFORGE_TEST_SEED", np.random.SeedSequence().entropy % 2**32))
    print(f"seed {seed} (replay with GANFORGE_TEST_SEED={seed})")
    return np.random.default_rng(seed)


def torch_generator(rng: np.random.Generator):  # type: ignore[no-untyped-def]
    import torch

    return torch.Generator().manual_seed(int(rng.integers(2**31)))


def norm_logpdf(mean: float, std: float):  # type: ignore[no-untyped-def]
    return lambda x: stats.norm.logpdf(np.asarray(x)[:, 0], mean, std)


def js_quad_1d(m1: float, s1: float, m2: float, s2: float) -> float:
    """JS(N(m1, s1^2) || N(m2, s2^2)) by adaptive quadrature, in log space (no 0 * log 0)."""

    def integrand(x: float) -> float:
        a, b = stats.norm.logpdf(x, m1, s1), stats.norm.logpdf(x, m2, s2)
        mid = np.logaddexp(a, b) - LOG2
        return 0.5 * (math.exp(a) * (a - mid) + math.exp(b) * (b - mid))

    lo, hi = min(m1, m2) - 14 * max(s1, s2), max(m1, m2) + 14 * max(s1, s2)
    value, _ = integrate.quad(integrand, lo, hi, points=sorted({m1, m2}), limit=400, epsabs=1e-13, epsrel=1e-12)
    return value


def assert_close(est: Estimate, reference: float, max_stderr: float) -> None:
    print(f"estimate {est.value:.5f} +- {est.stderr:.5f}, reference {reference:.5f}")
    assert est.stderr < max_stderr
    assert abs(est.value - reference) <= N_SIGMA * est.stderr


# -- JS -------------------------------------------------------------------------------------------


def test_js_matches_quadrature_on_random_1d_gaussians(rng):
    n = 100_000
    for _ in range(3):
        m1, m2 = rng.uniform(-2, 2, size=2)
        s1, s2 = rng.uniform(0.3, 2.0, size=2)
        print(f"N({m1:.3f}, {s1:.3f}^2) vs N({m2:.3f}, {s2:.3f}^2)")
        est = js_divergence(rng.normal(m1, s1, n), rng.normal(m2, s2, n), norm_logpdf(m1, s1), norm_logpdf(m2, s2))
        # Each per-sample term lies in (-inf, log 2] with a spread well under 1 nat here, so
        # 1e5 samples per side give a standard error of a few 1e-3 at most.
        assert_close(est, js_quad_1d(m1, s1, m2, s2), max_stderr=0.004)


def test_js_matches_dblquad_on_random_2d_gaussians(rng):
    n = 100_000
    m1, m2 = rng.uniform(-1.5, 1.5, size=(2, 2))
    s1, s2 = rng.uniform(0.4, 1.5, size=2)
    print(f"N({m1.round(3)}, {s1:.3f}^2 I) vs N({m2.round(3)}, {s2:.3f}^2 I)")
    p, q = stats.multivariate_normal(m1, s1**2), stats.multivariate_normal(m2, s2**2)

    def log_iso(x: float, y: float, m: np.ndarray, s: float) -> float:
        return -((x - m[0]) ** 2 + (y - m[1]) ** 2) / (2 * s * s) - math.log(2 * math.pi * s * s)

    def integrand(y: float, x: float) -> float:
        a, b = log_iso(x, y, m1, s1), log_iso(x, y, m2, s2)
        mid = np.logaddexp(a, b) - LOG2
        return 0.5 * (math.exp(a) * (a - mid) + math.exp(b) * (b - mid))

    lo, hi = float(min(m1.min(), m2.min())) - 12 * max(s1, s2), float(max(m1.max(), m2.max())) + 12 * max(s1, s2)
    reference, _ = integrate.dblquad(integrand, lo, hi, lo, hi, epsabs=1e-9)
    est = js_divergence(p.rvs(n, random_state=rng), q.rvs(n, random_state=rng), p.logpdf, q.logpdf)
    assert_close(est, reference, max_stderr=0.004)


def test_js_of_identical_distributions_is_zero(rng):
    mean, std = rng.uniform(-3, 3), rng.uniform(0.1, 3)
    log_p = norm_logpdf(mean, std)
    est = js_divergence(rng.normal(mean, std, 1000), rng.normal(mean, std, 1000), log_p, log_p)
    assert est.value == pytest.approx(0.0, abs=1e-12)  # every term is log(2 * 1/2)
    assert abs(js_quad_1d(mean, std, mean, std)) < 1e-10  # the quadrature's own rounding may dip below 0


def test_js_of_disjoint_distributions_is_log2(rng):
    m1 = rng.uniform(-3, 3)
    m2 = m1 + rng.choice([-1, 1]) * rng.uniform(80, 120)  # > 80 std apart: overlap ~ exp(-800)
    est = js_divergence(rng.normal(m1, 1, 1000), rng.normal(m2, 1, 1000), norm_logpdf(m1, 1), norm_logpdf(m2, 1))
    assert est.value == pytest.approx(LOG2, abs=1e-12)
    assert js_quad_1d(m1, 1, m2, 1) == pytest.approx(LOG2, abs=1e-8)


def test_js_against_a_kde_of_the_same_distribution_is_small_and_positive(rng):
    """The KDE floor: JS(p || KDE of 1,000 samples of p), measured with the KDE's own samples."""
    mean, std = rng.uniform(-1, 1, size=2), rng.uniform(0.2, 2)
    p = stats.multivariate_normal(mean, std**2)
    kde = gaussian_kde(p.rvs(1000, random_state=rng))
    est = js_divergence(p.rvs(10_000, random_state=rng), kde.sample(10_000, rng), p.logpdf, kde)
    print(f"bandwidth {kde.bandwidth / std:.3f} std, JS {est:.4f}")
    assert est.stderr < 0.003
    assert -N_SIGMA * est.stderr < est.value < 0.02


def test_js_lower_bound_of_the_optimal_discriminator_is_js(rng):
    m1, m2, s1, s2 = rng.uniform(-1, 1), rng.uniform(-1, 1), rng.uniform(0.5, 1.5), rng.uniform(0.5, 1.5)
    log_p, log_q = norm_logpdf(m1, s1), norm_logpdf(m2, s2)
    xp, xq = rng.normal(m1, s1, 50_000), rng.normal(m2, s2, 50_000)
    logit = lambda x: log_p(x[:, None]) - log_q(x[:, None])  # noqa: E731  D* = sigmoid(logit)
    at_optimum = js_lower_bound(logit(xp), logit(xq))
    direct = js_divergence(xp, xq, log_p, log_q)
    assert at_optimum.value == pytest.approx(direct.value, abs=1e-12)  # the same sums, term by term
    worse = js_lower_bound(0.5 * logit(xp) + 0.3, 0.5 * logit(xq) + 0.3)  # any other D scores lower
    assert worse.value < at_optimum.value


# -- the mixtures' exact density -------------------------------------------------------------------


@pytest.mark.parametrize("make", [ring8, grid25])
def test_mixture_density_integrates_to_one(make):
    # A Riemann sum with step h of a Gaussian of std s over a lattice errs by about
    # exp(-2 pi^2 s^2 / h^2) (Poisson summation), whatever the modes' offsets: at h = s/2, 1e-34.
    data = make()
    lo, hi = float(data.modes.min()) - 10 * data.std, float(data.modes.max()) + 10 * data.std
    step = data.std / 2
    axis = np.arange(lo, hi, step)
    xs, ys = np.meshgrid(axis, axis, indexing="ij")
    total = mixture_density(np.stack([xs.ravel(), ys.ravel()], 1), data.modes, data.std).sum() * step**2
    assert total == pytest.approx(1.0, abs=1e-9)


def test_mixture_density_matches_scipy_and_far_points_stay_finite(rng):
    data = grid25()
    x = rng.uniform(-5, 5, size=(200, 2))
    reference = np.mean([stats.multivariate_normal(m, data.std**2).pdf(x) for m in data.modes.numpy()], axis=0)
    np.testing.assert_allclose(mixture_density(x, data.modes, data.std), reference, rtol=1e-10, atol=1e-300)
    far = mixture_log_density(np.array([[0.0, 0.0], [3.0, 3.0]]), ring8().modes, 0.01)
    assert np.isfinite(far).all() and (far < -2000).all()  # exp() of these is 0; the logs are not


def test_mixture_density_matches_a_histogram_of_ring8_samples(rng):
    data = ring8()
    n = 200_000
    samples = data.sample(n, torch_generator(rng)).numpy()
    edges = np.arange(-1.05, 1.05 + 1e-9, 0.01)  # bins one std wide
    counts, _, _ = np.histogram2d(samples[:, 0], samples[:, 1], bins=[edges, edges])
    # Expected counts: the density integrated over each bin by a 5 x 5 midpoint rule.
    sub = 5
    fine = edges[0] + (np.arange((len(edges) - 1) * sub) + 0.5) * (0.01 / sub)
    fx, fy = np.meshgrid(fine, fine, indexing="ij")
    dens = mixture_density(np.stack([fx.ravel(), fy.ravel()], 1), data.modes, data.std).reshape(fx.shape)
    expected = n * dens.reshape(len(edges) - 1, sub, len(edges) - 1, sub).sum((1, 3)) * (0.01 / sub) ** 2
    assert expected.sum() == pytest.approx(n, rel=1e-6)
    used = expected >= 5  # chi-square's usual validity condition
    chi2 = float(((counts[used] - expected[used]) ** 2 / expected[used]).sum())
    dof = int(used.sum()) - 1
    p_value = stats.chi2.sf(chi2, dof)
    print(f"chi2 {chi2:.1f} on {dof} bins, p = {p_value:.3g}; mass outside them {1 - counts[used].sum() / n:.2e}")
    assert p_value > 1e-6
    assert counts[used].sum() / n > 0.99


# -- the KDE ----------------------------------------------------------------------------------------


def test_kde_matches_scikit_learn(rng):
    from sklearn.neighbors import KernelDensity

    points, query = rng.normal(size=(500, 2)) * [1.0, 0.3], rng.normal(size=(300, 2)) * 1.5
    h = rng.uniform(0.05, 0.5)
    ours = gaussian_kde(points, bandwidth=h).log_density(query)
    theirs = KernelDensity(bandwidth=h, kernel="gaussian", algorithm="kd_tree").fit(points).score_samples(query)
    # scikit-learn's tree sums lose relative accuracy deep in the tails (measured: up to 1e-3 in
    # log density below about -100), so it is the reference where the density is not negligible;
    # everywhere, a direct sum over all pairs (differences, not the expanded form) is.
    body = ours > -20
    np.testing.assert_allclose(ours[body], theirs[body], rtol=1e-8)
    d2 = ((query[:, None, :] - points[None, :, :]) ** 2).sum(-1)
    direct = logsumexp(-d2 / (2 * h * h), axis=1) - math.log(len(points) * 2 * math.pi * h * h)
    np.testing.assert_allclose(ours, direct, rtol=1e-12)


def test_loo_bandwidth_fits_the_data(rng):
    std, n = rng.uniform(0.5, 2), 1000
    h = select_bandwidth(rng.normal(size=(n, 2)) * std)
    silverman = std * n ** (-1 / 6)  # the AMISE-optimal bandwidth for one 2-D Gaussian
    print(f"leave-one-out {h:.4f}, Silverman {silverman:.4f}")
    assert 0.5 * silverman < h < 2 * silverman
    # On ring8 it follows the modes' width (0.01), unlike Scott's rule (about 0.2).
    data = ring8()
    samples = data.sample(1000, torch_generator(rng)).numpy()
    h_ring = select_bandwidth(samples)
    scott = stats.gaussian_kde(samples.T).factor * float(np.sqrt(samples.var(0).mean()))
    print(f"ring8: leave-one-out {h_ring:.4f}, Scott {scott:.3f}")
    assert 0.2 * data.std < h_ring < 2 * data.std < scott / 5
    assert loo_log_likelihood(samples, h_ring) > loo_log_likelihood(samples, scott)


def test_kde_samples_follow_the_kde(rng):
    points = rng.normal(size=(400, 2)) * [2.0, 0.5] + [1.0, -1.0]
    kde = gaussian_kde(points, bandwidth=0.3)
    draws = kde.sample(200_000, rng)
    # Mean: that of the points; variance per axis: the points' (1/N) variance plus h^2.
    np.testing.assert_allclose(draws.mean(0), points.mean(0),
                               atol=N_SIGMA * float(np.sqrt(points.var(0).max() + 0.09)) / math.sqrt(200_000))
    np.testing.assert_allclose(draws.var(0), points.var(0) + 0.09, rtol=0.02)


# -- the optimal discriminator ------------------------------------------------------------------------


def test_optimal_discriminator_is_half_where_densities_are_equal(rng):
    mean, std = rng.uniform(-2, 2), rng.uniform(0.3, 2)
    x = rng.normal(size=(100, 1)) * 3
    log_p = norm_logpdf(mean, std)
    np.testing.assert_array_equal(optimal_discriminator(log_p(x), log_p(x)), 0.5)
    # Two Gaussians of equal std, means mean +- d: equal densities at x = mean, and by symmetry
    # D*(mean + t) + D*(mean - t) = 1.
    d = rng.uniform(0.1, 2)
    log_a, log_b = norm_logpdf(mean - d, std), norm_logpdf(mean + d, std)
    dstar = lambda t: optimal_discriminator(log_a(t), log_b(t))  # noqa: E731
    assert dstar(np.array([[mean]]))[0] == pytest.approx(0.5, abs=1e-12)
    t = rng.uniform(0, 3, size=(50, 1))
    np.testing.assert_allclose(dstar(mean + t) + dstar(mean - t), 1.0, atol=1e-12)
    # Far apart the ratio still works where both densities underflow to 0.
    far = optimal_discriminator(np.array([-5000.0, -7000.0]), np.array([-5001.0, -6000.0]))
    np.testing.assert_allclose(far, [expit(1.0), expit(-1000.0)])


def test_optimal_discriminator_maximises_the_pointwise_objective(rng):
    p, q = rng.uniform(1e-3, 5, size=(2, 200))
    dstar = optimal_discriminator(np.log(p), np.log(q))
    objective = lambda d: p * np.log(d) + q * np.log1p(-d)  # noqa: E731
    for shift in (-1e-3, 1e-3, -0.1, 0.1):
        other = np.clip(dstar + shift, 1e-9, 1 - 1e-9)
        assert (objective(other) <= objective(dstar) + 1e-12).all()
    np.testing.assert_allclose(dstar, p / (p + q), rtol=1e-12)


# -- the statements of docs/theory.md, in 1-D where every integral is a quadrature -------------------


def _expect(mu: float, s: float, g) -> float:  # type: ignore[no-untyped-def]
    """E_{x ~ N(mu, s^2)} g(x) by quadrature."""
    value, _ = integrate.quad(lambda x: stats.norm.pdf(x, mu, s) * g(x), mu - 14 * s, mu + 14 * s,
                              limit=400, epsabs=1e-13, epsrel=1e-12)
    return value


def _score_gradient(mu: float, s: float, g) -> float:  # type: ignore[no-untyped-def]
    """d/dmu E_{x ~ N(mu, s^2)} g(x) for a fixed g: E[g(x) (x - mu) / s^2] (the score function)."""
    return _expect(mu, s, lambda x: g(x) * (x - mu) / s**2)


def test_generator_gradients_at_the_optimal_discriminator(rng):
    """p_data = N(0, 1), p_g = N(mu, s^2). With D* frozen at mu0 (as when G takes a step against a
    trained D), the minimax G loss E_g log(1 - D*) has the gradient of 2 JS(p_data || p_g)
    (Goodfellow et al. 2014), and the non-saturating E_g[-log D*] that of
    KL(p_g || p_data) - 2 JS(p_data || p_g) (Arjovsky & Bottou 2017, Thm 2.5)."""
    mu0, s = rng.uniform(0.3, 3.0) * rng.choice([-1, 1]), rng.uniform(0.5, 1.5)
    print(f"p_g = N({mu0:.3f}, {s:.3f}^2)")
    logit = lambda x: stats.norm.logpdf(x, 0, 1) - stats.norm.logpdf(x, mu0, s)  # noqa: E731  D* = sigmoid(logit)
    minimax = _score_gradient(mu0, s, lambda x: -np.logaddexp(0.0, logit(x)))  # log(1 - D*)
    nonsat = _score_gradient(mu0, s, lambda x: np.logaddexp(0.0, -logit(x)))  # -log D*
    eps = 1e-4
    d_js = (js_quad_1d(0, 1, mu0 + eps, s) - js_quad_1d(0, 1, mu0 - eps, s)) / (2 * eps)
    d_kl = mu0  # KL(N(mu, s^2) || N(0, 1)) = (s^2 + mu^2 - 1) / 2 - log s
    print(f"minimax {minimax:.6f} vs 2 dJS {2 * d_js:.6f}; "
          f"non-saturating {nonsat:.6f} vs dKL - 2 dJS {d_kl - 2 * d_js:.6f}")
    assert minimax == pytest.approx(2 * d_js, abs=1e-6)
    assert nonsat == pytest.approx(d_kl - 2 * d_js, abs=1e-6)
    # And the value of the game at D* is 2 JS - log 4.
    value = (_expect(0, 1, lambda x: -np.logaddexp(0.0, -logit(x)))  # E_data log D*
             + _expect(mu0, s, lambda x: -np.logaddexp(0.0, logit(x))))  # E_g log(1 - D*)
    assert value == pytest.approx(2 * js_quad_1d(0, 1, mu0, s) - math.log(4), abs=1e-9)


def test_wasserstein_dual_with_a_lipschitz_critic_is_the_earth_movers_distance(rng):
    """Kantorovich-Rubinstein: W1(p, q) = sup over 1-Lipschitz f of E_p f - E_q f. In 1-D the
    optimal critic is f*(x) = int_0^x sign(F_q - F_p), and W1 = int |F_p - F_q|."""
    mu, s = rng.uniform(-3, 3), rng.uniform(0.3, 2)
    lo, hi = min(0, mu) - 12 * max(1, s), max(0, mu) + 12 * max(1, s)
    gap = lambda x: stats.norm.cdf(x, mu, s) - stats.norm.cdf(x, 0, 1)  # noqa: E731  F_q - F_p
    primal, _ = integrate.quad(lambda x: abs(gap(x)), lo, hi, limit=400, epsabs=1e-12)
    grid = np.linspace(lo, hi, 200_001)
    critic = np.concatenate([[0.0], np.cumsum(np.sign(gap(grid[:-1])) * np.diff(grid))])
    assert (np.abs(np.diff(critic)) <= np.diff(grid) + 1e-12).all()  # 1-Lipschitz
    n = 200_000
    xp, xq = rng.normal(0, 1, n), rng.normal(mu, s, n)
    fp, fq = np.interp(xp, grid, critic), np.interp(xq, grid, critic)
    dual = fp.mean() - fq.mean()
    stderr = math.sqrt(fp.var() / n + fq.var() / n)
    print(f"N(0, 1) vs N({mu:.3f}, {s:.3f}^2): primal {primal:.5f}, dual {dual:.5f} +- {stderr:.5f}")
    assert abs(dual - primal) <= N_SIGMA * stderr
    assert stats.wasserstein_distance(xp, xq) == pytest.approx(primal, abs=N_SIGMA * 3 * stderr)
    other = np.sin(xp).mean() - np.sin(xq).mean()  # another 1-Lipschitz critic scores at most W1
    assert other <= primal + N_SIGMA * stderr
