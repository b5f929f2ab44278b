"""The built-in metrics as plugins: fid, kid, prdc, is, legible, modes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from ganforge.data import DataInfo, GanDataset
from ganforge.metrics.base import EvalData, Metric
from ganforge.metrics.fid import fid
from ganforge.metrics.inception_score import inception_score
from ganforge.metrics.kid import kid
from ganforge.metrics.legibility import legibility
from ganforge.metrics.modes import mode_stats
from ganforge.metrics.prdc import prdc


class FID(Metric):
    """Fréchet distance of extractor features (Heusel et al. 2017); lower is better."""

    has_floor = True
    labels: ClassVar[dict[str, str]] = {"fid": "FID"}

    def compute(self, data: EvalData) -> dict[str, float]:
        return {"fid": fid(*data.space())}


class KID(Metric):
    """Kernel distance, unbiased MMD^2, cubic kernel (Bińkowski et al. 2018); lower is better."""

    has_floor = True
    labels: ClassVar[dict[str, str]] = {"kid": "KID (MMD^2)"}

    def __init__(self, subsets: int = 100, subset_size: int = 1000) -> None:
        self.subsets, self.subset_size = subsets, subset_size

    def compute(self, data: EvalData) -> dict[str, float]:
        mean, std = kid(*data.space(), n_subsets=self.subsets, subset_size=self.subset_size, seed=data.seed)
        return {"kid": mean, "kid_std": std}


class PRDC(Metric):
    """Precision/recall (k=3, Kynkäänniemi 2019) and density/coverage (k=5, Naeem 2020)."""

    modalities = ("image", "points")
    has_floor = True
    labels: ClassVar[dict[str, str]] = {"precision": "precision", "recall": "recall", "density": "density",
                                        "coverage": "coverage"}

    def __init__(self, k_pr: int = 3, k_dc: int = 5) -> None:
        self.k_pr, self.k_dc = k_pr, k_dc

    def compute(self, data: EvalData) -> dict[str, float]:
        fake, real = data.space()
        return prdc(real, fake, self.k_pr, self.k_dc)


class InceptionScore(Metric):
    """Inception-style score from the MNIST classifier's probabilities, 10 splits; higher is better."""

    has_floor = True
    needs_probabilities = True
    labels: ClassVar[dict[str, str]] = {"is": "IS"}

    def __init__(self, splits: int = 10) -> None:
        self.splits = splits

    def compute(self, data: EvalData) -> dict[str, float]:
        mean, std = inception_score(data.fake_probabilities(), self.splits)
        return {"is": mean, "is_std": std}


def _probability(value: float, option: str, *, zero_allowed: bool, example: float) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and (
        (0 <= value if zero_allowed else 0 < value) and value <= 1)
    if not ok:
        from ganforge.errors import ConfigError

        raise ConfigError(f"metric.legible.{option} must be a probability in {'[0, 1]' if zero_allowed else '(0, 1]'}, "
                          f"such as --set metric.legible.{option}={example}; got {value!r}")
    return float(value)


class Legible(Metric):
    """Share of samples the MNIST classifier reads with confidence, and the digit classes among
    them (:mod:`ganforge.metrics.legibility`); higher is better."""

    has_floor = True
    needs_probabilities = True
    labels: ClassVar[dict[str, str]] = {"legible": "legible share", "classes": "digit classes",
                                        "rarest_class": "rarest class share"}

    def __init__(self, confidence: float = 0.9, min_share: float = 0.02) -> None:
        self.confidence = _probability(confidence, "confidence", zero_allowed=False, example=0.9)
        self.min_share = _probability(min_share, "min_share", zero_allowed=True, example=0.02)

    def compute(self, data: EvalData) -> dict[str, float]:
        return legibility(data.fake_probabilities(), self.confidence, self.min_share)


class Modes(Metric):
    """PacGAN mode coverage on a Gaussian mixture: modes captured, % high quality, reverse KL."""

    modalities: ClassVar[tuple[str, ...]] = ("points",)
    needs_features: ClassVar[bool] = False
    comparable: ClassVar[str] = ("PacGAN's 2-D tables (Lin et al. 2018) where ring8/grid25 keep their default "
                                 "std, -n 2500 and n_sigma 3")
    labels: ClassVar[dict[str, str]] = {"modes": "modes captured", "high_quality": "high-quality %",
                                        "reverse_kl": "reverse KL"}
    context_keys: ClassVar[frozenset[str]] = frozenset({"modes_total"})

    def __init__(self, n_sigma: float = 3.0, min_count: int = 1) -> None:
        self.n_sigma, self.min_count = n_sigma, min_count

    def applies_to(self, info: DataInfo, dataset: GanDataset | None) -> bool:
        return hasattr(dataset, "modes") and hasattr(dataset, "std")

    def compute(self, data: EvalData) -> dict[str, float]:
        if not self.applies_to(data.info, data.dataset):
            from ganforge.errors import ConfigError

            raise ConfigError("the modes metric needs a Gaussian-mixture data set with known modes "
                              "(ring8, grid25)")
        return mode_stats(data.fake, data.dataset.modes, data.dataset.std, self.n_sigma, self.min_count)  # type: ignore[union-attr]  # only mixtures apply (applies_to)

    def format(self, values: Mapping[str, float], *, spread: bool = True) -> dict[str, str]:
        """``modes`` as "captured / total"; ``modes_total`` is not a row of its own."""
        shown = super().format({k: v for k, v in values.items() if k != "modes_total"}, spread=spread)
        if "modes" in shown and "modes_total" in values:
            shown["modes"] = f"{int(values['modes'])} / {int(values['modes_total'])}"
        return shown
