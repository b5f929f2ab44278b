"""The numbers a sweep reports: per setting, the mean over seeds with its standard error and a
bootstrap interval; per setting against the baseline, the difference of means with its bootstrap
interval, Welch's t-test and the Mann-Whitney U test.

Every test and interval is scipy's (``scipy.stats.bootstrap``, ``ttest_ind(equal_var=False)``,
``mannwhitneyu``): this module only chooses them and handles the cases they refuse (one seed, all
seeds equal). The bootstrap's own randomness is seeded, so a report reads the same every time.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

CONFIDENCE = 0.95
RESAMPLES = 9999
METHOD = "BCa"  # bias-corrected and accelerated: scipy's default, better coverage than percentile
NAN = float("nan")


@dataclass(frozen=True)
class Summary:
    """One setting's values of one metric over its seeds."""

    n: int
    mean: float
    sem: float  # standard error of the mean: sample standard deviation / sqrt(n); nan for n < 2
    low: float  # the bootstrap interval of the mean; nan for n < 2
    high: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Comparison:
    """A setting against the baseline on one metric: ``difference`` is setting minus baseline."""

    n: int
    n_baseline: int
    difference: float
    low: float  # bootstrap interval of the difference of means (each sample resampled on its own)
    high: float
    welch_t: float
    welch_p: float
    mannwhitney_u: float
    mannwhitney_p: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _finite(values: Sequence[float]) -> np.ndarray:
    return np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)


def _mean(*samples: np.ndarray, axis: int = -1) -> Any:
    return np.mean(samples[0], axis=axis)


def _difference(a: np.ndarray, b: np.ndarray, axis: int = -1) -> Any:
    return np.mean(a, axis=axis) - np.mean(b, axis=axis)


def bootstrap_interval(samples: tuple[np.ndarray, ...], statistic: Any, *, confidence: float = CONFIDENCE,
                       n_resamples: int = RESAMPLES, method: str = METHOD, seed: int = 0) -> tuple[float, float]:
    """scipy's bootstrap interval of ``statistic``; samples with no spread at all give the point
    value twice (every resample is the same), where BCa itself would give nan."""
    from scipy import stats

    if any(len(s) < 2 for s in samples):
        return NAN, NAN
    if all(np.ptp(s) == 0 for s in samples):
        value = float(statistic(*samples))
        return value, value
    with warnings.catch_warnings():  # a tiny sample's BCa may warn of instability: the docs say why
        warnings.simplefilter("ignore")
        result = stats.bootstrap(samples, statistic, confidence_level=confidence, n_resamples=n_resamples,
                                 method=method, vectorized=True, rng=np.random.default_rng(seed))
    low, high = (float(result.confidence_interval.low), float(result.confidence_interval.high))
    if not (math.isfinite(low) and math.isfinite(high)) and method != "percentile":
        return bootstrap_interval(samples, statistic, confidence=confidence, n_resamples=n_resamples,
                                  method="percentile", seed=seed)
    return low, high


def summarize(values: Sequence[float], **bootstrap: Any) -> Summary:
    """Mean, standard error and bootstrap interval of one setting's values (non-finite ones, from a
    diverged trial, are left out and ``n`` says how many counted)."""
    x = _finite(values)
    n = len(x)
    if n == 0:
        return Summary(0, NAN, NAN, NAN, NAN)
    mean = float(np.mean(x))
    sem = float(np.std(x, ddof=1) / math.sqrt(n)) if n > 1 else NAN
    low, high = bootstrap_interval((x,), _mean, **bootstrap)
    return Summary(n, mean, sem, low, high)


def compare(values: Sequence[float], baseline: Sequence[float], **bootstrap: Any) -> Comparison:
    """``values`` against ``baseline``: difference of means, its bootstrap interval, Welch's t
    (unequal variances) and Mann-Whitney U (two-sided, exact for small samples without ties)."""
    from scipy import stats

    a, b = _finite(values), _finite(baseline)
    if len(a) == 0 or len(b) == 0:
        return Comparison(len(a), len(b), NAN, NAN, NAN, NAN, NAN, NAN, NAN)
    difference = float(np.mean(a) - np.mean(b))
    low, high = bootstrap_interval((a, b), _difference, **bootstrap)
    t = p = NAN
    if len(a) > 1 and len(b) > 1 and (np.ptp(a) > 0 or np.ptp(b) > 0):
        with warnings.catch_warnings():  # one side without spread (a count every seed hit): the
            # test stands on the other side's variance, but scipy warns of "catastrophic cancellation"
            warnings.filterwarnings("ignore", "Precision loss occurred", RuntimeWarning)
            welch = stats.ttest_ind(a, b, equal_var=False)
        t, p = float(welch.statistic), float(welch.pvalue)
    mw = stats.mannwhitneyu(a, b, alternative="two-sided")
    return Comparison(len(a), len(b), difference, low, high, t, p, float(mw.statistic), float(mw.pvalue))
