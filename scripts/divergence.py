"""Densities, the optimal discriminator and the Jensen-Shannon divergence on low-dimensional data.

These are the quantities GAN theory is stated in (docs/theory.md derives and measures them):

- Goodfellow et al. (2014): for a fixed generator density ``p_g`` the discriminator that maximises
  ``E_data log D + E_g log(1 - D)`` is ``D*(x) = p_data(x) / (p_data(x) + p_g(x))``, and the
  value of the game at ``D*`` is ``2 JS(p_data || p_g) - log 4``.
- JS(p || q) = 1/2 KL(p || m) + 1/2 KL(q || m) with m = (p + q) / 2, in nats: 0 for p = q,
  log 2 for p and q with disjoint supports.

Everything works on **log** densities. The 2-D mixtures have std 0.01 (ring8), so half-way between
two modes the density is about exp(-730): a float64 underflows to 0 there and ``p / (p + q)``
would be 0 / 0. In log space the same ratio is ``sigmoid(log p - log q)``, defined everywhere.

A generator's density is not available in closed form, so it is estimated from samples with a
Gaussian kernel density estimate (:class:`GaussianKde`). Its one choice is the bandwidth; the
default picks it by leave-one-out likelihood (:func:`select_bandwidth`) because rule-of-thumb
bandwidths (Scott's, Silverman's, scipy's default) assume one Gaussian bump: for ring8 they give
about 0.2, twenty times the modes' std, and a KDE that smears every mode into a ring. A KDE is
biased; :func:`js_divergence` of the exact density against a KDE of *its own* samples measures
that bias (the floor a perfect generator would score) and should be reported beside any estimate.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.special import expit, logsumexp

LogDensity = Callable[[np.ndarray], np.ndarray]
"""A function from points ``(N, D)`` to their log densities ``(N,)``."""

_CHUNK = 2048  # query rows per block of pairwise distances: 2048 x N float64 stays small


def _points(x: object) -> np.ndarray:
    """``x`` (array, tensor or list) as a float64 ``(N, D)`` array; 1-D input is N points in 1-D."""
    if hasattr(x, "detach"):  # a torch tensor, possibly on a device or requiring grad
        x = x.detach().cpu().numpy()  # type: ignore[attr-defined]
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2:
        raise ValueError(f"expected points of shape (N, D), got shape {a.shape}")
    return a


def _squared_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``|a_i - b_j|^2`` for every pair, clipped at 0 (the expanded form can round below it)."""
    d2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.maximum(d2, 0.0)


# -- the mixtures' exact density ----------------------------------------------------------------


def mixture_log_density(x: object, modes: object, std: float) -> np.ndarray:
    """Log density of the equal-weight isotropic Gaussian mixture at ``x`` ``(N, D)``.

    ``p(x) = (1/K) sum_k N(x; mode_k, std^2 I)``: exactly how ``ganforge.data.mixtures`` samples
    ring8 and grid25 (pass the data set's ``.modes`` and ``.std``). Computed with logsumexp over
    the modes, so points far from every mode get a finite (very negative) value instead of -inf.
    """
    pts, centres = _points(x), _points(modes)
    if pts.shape[1] != centres.shape[1]:
        raise ValueError(f"points have {pts.shape[1]} coordinates but modes have {centres.shape[1]}")
    if not std > 0:
        raise ValueError(f"std must be positive, got {std}")
    d = pts.shape[1]
    log_norm = -0.5 * d * math.log(2.0 * math.pi * std * std) - math.log(len(centres))
    out = np.empty(len(pts))
    for start in range(0, len(pts), 16 * _CHUNK):  # blocks keep the (points x modes) matrix small
        d2 = _squared_distances(pts[start:start + 16 * _CHUNK], centres)
        out[start:start + 16 * _CHUNK] = logsumexp(-d2 / (2.0 * std * std), axis=1)
    return out + log_norm


def mixture_density(x: object, modes: object, std: float) -> np.ndarray:
    """The mixture's density (not its log) at ``x``; 0 where it underflows. For plots and checks."""
    return np.exp(mixture_log_density(x, modes, std))


# -- kernel density estimate ---------------------------------------------------------------------


def _kernel_log_sums(query: np.ndarray, points: np.ndarray, bandwidth: float) -> np.ndarray:
    """``log sum_j exp(-|query_i - points_j|^2 / (2 h^2))`` in blocks of rows (memory stays
    ``_CHUNK x N``)."""
    out = np.empty(len(query))
    for start in range(0, len(query), _CHUNK):
        d2 = _squared_distances(query[start:start + _CHUNK], points)
        nearest = d2.min(axis=1, keepdims=True)  # the logsumexp shift: the largest term is exp(0)
        inv = 1.0 / (2.0 * bandwidth * bandwidth)
        out[start:start + _CHUNK] = np.log(np.exp(-(d2 - nearest) * inv).sum(axis=1)) - nearest[:, 0] * inv
    return out


def _loo_scores(points: np.ndarray, bandwidths: np.ndarray) -> np.ndarray:
    """Mean leave-one-out log likelihood for each bandwidth, sharing one distance computation.

    Per row, the smallest off-diagonal distance is factored out of the exponentials (the
    logsumexp shift, the same for every bandwidth), so each bandwidth costs one ``exp`` pass."""
    n, d = points.shape
    totals = np.zeros(len(bandwidths))
    for start in range(0, n, _CHUNK):
        d2 = _squared_distances(points[start:start + _CHUNK], points)
        rows = np.arange(len(d2))
        d2[rows, start + rows] = np.inf  # leave the point itself out
        nearest = d2.min(axis=1, keepdims=True)
        excess = d2 - nearest
        for k, h in enumerate(bandwidths):
            inv = 1.0 / (2.0 * h * h)
            totals[k] += float(np.sum(np.log(np.exp(-excess * inv).sum(axis=1)) - nearest[:, 0] * inv))
    log_norm = -0.5 * d * np.log(2.0 * np.pi * bandwidths * bandwidths) - math.log(n - 1)
    return totals / n + log_norm


def loo_log_likelihood(points: object, bandwidth: float) -> float:
    """Mean leave-one-out log likelihood of ``points`` under their own Gaussian KDE.

    Each point is scored by the KDE of the *other* N - 1 points: a criterion that, unlike the
    in-sample likelihood, does not grow without bound as the bandwidth shrinks. Maximising it
    minimises an estimate of KL(p || KDE) (likelihood cross-validation: Silverman 1986; Hall 1987).
    """
    pts = _points(points)
    if len(pts) < 2:
        raise ValueError("leave-one-out needs at least 2 points")
    return float(_loo_scores(pts, np.array([float(bandwidth)]))[0])


def default_bandwidths(points: object, n: int = 16) -> np.ndarray:
    """``n`` candidate bandwidths, log-spaced over three decades below the samples' overall scale
    (root mean variance per coordinate): from 0.001 x to 1 x that scale."""
    pts = _points(points)
    scale = float(np.sqrt(pts.var(axis=0).mean()))
    if not scale > 0:
        raise ValueError("the points are all identical: no bandwidth describes them")
    return scale * np.logspace(-3, 0, n)


def select_bandwidth(points: object, candidates: object | None = None) -> float:
    """The candidate bandwidth with the largest leave-one-out log likelihood (see
    :func:`loo_log_likelihood`); candidates default to :func:`default_bandwidths`.

    Why this and not Scott's or Silverman's rule: those are optimal for a single Gaussian and far
    too wide for a mixture of narrow modes. Leave-one-out picks a bandwidth of the order of the
    modes' own width when the samples are concentrated, and a wider one when they are spread.
    """
    pts = _points(points)
    if len(pts) < 2:
        raise ValueError("leave-one-out needs at least 2 points")
    hs = np.asarray(default_bandwidths(pts) if candidates is None else candidates, dtype=np.float64)
    return float(hs[int(np.argmax(_loo_scores(pts, hs)))])


@dataclass(frozen=True)
class GaussianKde:
    """Gaussian kernel density estimate with an isotropic bandwidth ``h``:
    ``p_hat(x) = (1/N) sum_i N(x; x_i, h^2 I)``.

    Build it with :func:`gaussian_kde`. It is a density in its own right, with its own samples
    (:meth:`sample`); measure divergences to *it* with those. Do not score the fitted points as
    if they were fresh draws of the original distribution: at a fitted point the kernel's own term
    adds ``1 / (N (2 pi h^2)^(D/2))``, which for small ``h`` is as large as the density itself.
    """

    points: np.ndarray
    bandwidth: float

    def log_density(self, x: object) -> np.ndarray:
        """``log p_hat`` at ``x`` ``(M, D)``."""
        q = _points(x)
        n, d = self.points.shape
        if q.shape[1] != d:
            raise ValueError(f"the KDE is {d}-dimensional, got points with {q.shape[1]} coordinates")
        h = self.bandwidth
        log_norm = -0.5 * d * math.log(2.0 * math.pi * h * h) - math.log(n)
        return _kernel_log_sums(q, self.points, h) + log_norm

    __call__ = log_density

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` draws from the KDE itself: a random fitted point plus ``N(0, h^2 I)`` noise.
        With these, :func:`js_divergence` measures JS against the KDE exactly (up to Monte-Carlo
        error), never a mixture of the KDE and the distribution it was fitted to."""
        which = rng.integers(len(self.points), size=n)
        return self.points[which] + self.bandwidth * rng.standard_normal((n, self.points.shape[1]))


def gaussian_kde(samples: object, bandwidth: float | None = None) -> GaussianKde:
    """A :class:`GaussianKde` of ``samples`` ``(N, D)``; ``bandwidth`` ``None`` selects it by
    leave-one-out likelihood (:func:`select_bandwidth`)."""
    pts = _points(samples)
    h = select_bandwidth(pts) if bandwidth is None else float(bandwidth)
    if not h > 0:
        raise ValueError(f"bandwidth must be positive, got {h}")
    return GaussianKde(points=pts, bandwidth=h)


# -- optimal discriminator and JS ---------------------------------------------------------------


def optimal_discriminator(log_p_data: object, log_p_g: object) -> np.ndarray:
    """``D*(x) = p_data(x) / (p_data(x) + p_g(x))`` from the two log densities at the same points.

    Goodfellow et al. (2014), Prop. 1: for each x the discriminator's objective
    ``p_data(x) log D + p_g(x) log(1 - D)`` is maximised at this D. Written as
    ``sigmoid(log p_data - log p_g)``, which is exact where both densities underflow; it is 1/2
    wherever the densities are equal. (Where both are negligible D* is still defined but
    irrelevant: no sample of either distribution lands there.)
    """
    return expit(np.asarray(log_p_data, dtype=np.float64) - np.asarray(log_p_g, dtype=np.float64))


@dataclass(frozen=True)
class Estimate:
    """A Monte-Carlo estimate (nats) and its standard error, from ``n_p`` and ``n_q`` samples."""

    value: float
    stderr: float
    n_p: int
    n_q: int

    def __format__(self, spec: str) -> str:
        spec = spec or ".4f"
        return f"{self.value:{spec}} +- {self.stderr:{spec}}"


def _half_means(a: np.ndarray, b: np.ndarray, offset: float) -> Estimate:
    """``1/2 mean(a) + 1/2 mean(b) + offset`` with the standard error of two independent means."""
    if len(a) < 2 or len(b) < 2:
        raise ValueError("need at least 2 samples from each distribution")
    value = 0.5 * float(a.mean()) + 0.5 * float(b.mean()) + offset
    stderr = 0.5 * math.sqrt(float(a.var(ddof=1)) / len(a) + float(b.var(ddof=1)) / len(b))
    return Estimate(value, stderr, len(a), len(b))


def js_divergence(samples_p: object, samples_q: object, log_p: LogDensity, log_q: LogDensity) -> Estimate:
    """Monte-Carlo JS(p || q) in nats from samples of p and of q and both log densities.

    With m = (p + q) / 2, ``JS = 1/2 E_p[log p/m] + 1/2 E_q[log q/m]``; each expectation is a
    sample mean. Per sample the terms are ``log 2 D*(x)`` (x ~ p) and ``log 2 (1 - D*(y))``
    (y ~ q) with D* = p / (p + q): both at most log 2, so the estimate lies in (-inf, log 2] and
    its variance is finite for the densities met here. The standard error is that of the two
    independent sample means.

    Both sample sets must come from the densities passed: with a KDE ``q_hat`` of a generator,
    draw ``samples_q`` from the KDE (:meth:`GaussianKde.sample`), which measures
    JS(p || q_hat) without bias. (Fresh generator samples scored by ``q_hat`` would estimate
    neither JS(p || q) nor JS(p || q_hat), and can come out negative.) JS(p || KDE of p's own
    samples) is the smoothing's share of the result: report it beside a measurement.
    """
    xp, xq = _points(samples_p), _points(samples_q)
    lp_at_p, lq_at_p = np.asarray(log_p(xp), np.float64), np.asarray(log_q(xp), np.float64)
    lp_at_q, lq_at_q = np.asarray(log_p(xq), np.float64), np.asarray(log_q(xq), np.float64)
    mid_p, mid_q = np.logaddexp(lp_at_p, lq_at_p), np.logaddexp(lp_at_q, lq_at_q)
    if not (np.isfinite(mid_p).all() and np.isfinite(mid_q).all()):
        raise ValueError("a sample has zero density under both p and q (or a density is NaN); "
                         "JS is undefined there")
    # log(p/m) = log 2 + log p - log(p + q): the constant log 2 is added once, as the offset.
    return _half_means(lp_at_p - mid_p, lq_at_q - mid_q, math.log(2.0))


def js_lower_bound(real_logits: object, fake_logits: object) -> Estimate:
    """The JS lower bound that any discriminator gives: ``1/2 (V(D) + log 4)``, where
    ``V(D) = E_data log sigmoid(D) + E_g log(1 - sigmoid(D))`` from its logits on real and
    generated samples.

    Goodfellow et al. (2014): V(D) <= V(D*) = 2 JS(p_data || p_g) - log 4 for every D, with equality
    at D*. So a trained discriminator's value bounds JS from below, and the gap to a direct JS
    estimate shows how far the discriminator is from optimal (in this objective's units).
    log sigmoid(t) = -softplus(-t) and log(1 - sigmoid(t)) = -softplus(t), computed stably.
    """
    real, fake = _points(real_logits)[:, 0], _points(fake_logits)[:, 0]
    return _half_means(-np.logaddexp(0.0, -real), -np.logaddexp(0.0, fake), math.log(2.0))
