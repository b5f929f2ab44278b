"""What a metric plugin provides, and the evaluation data it receives.

Metrics are registered through ``ganforge_register_metrics`` like every component; feature
extractors through ``ganforge_register_extractors``. A metric reads generated and real samples
(and, through :class:`EvalData`, features or class probabilities computed once and shared).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import torch

from ganforge.data import DataInfo, GanDataset


class FeatureExtractor(Protocol):
    """Maps samples to feature vectors, and optionally to class probabilities: an extractor that
    gives none (the random features) has no ``probabilities`` method, and metrics that read them
    (``Metric.needs_probabilities``) are left out of its evaluations.

    Optional attributes ganforge reads: ``input_shape`` (the one sample shape it reads) or
    ``reads(shape) -> bool``; ``comparable``, what numbers computed in its space can be compared
    with beyond ganforge runs evaluated the same way ("" or absent: nothing else, see
    :attr:`Metric.comparable`)."""

    def features(self, x: torch.Tensor) -> torch.Tensor: ...


@dataclass
class EvalData:
    """Generated and real samples for one evaluation, with lazily computed, cached features."""

    fake: torch.Tensor
    real: torch.Tensor
    info: DataInfo
    dataset: GanDataset | None = None
    extractor: FeatureExtractor | None = None
    seed: int = 0
    _cache: dict[str, torch.Tensor] = field(default_factory=dict, repr=False)

    def _cached(self, key: str, fn) -> torch.Tensor:
        if key not in self._cache:
            self._cache[key] = fn()
        return self._cache[key]

    def _need_extractor(self) -> FeatureExtractor:
        if self.extractor is None:
            from ganforge.errors import ConfigError

            raise ConfigError("this metric needs a feature extractor and none applies to this data; "
                              "pick one with --set metric.extractor=NAME (see `ganforge list --kind extractor`)")
        return self.extractor

    def fake_features(self) -> torch.Tensor:
        return self._cached("fake_features", lambda: self._need_extractor().features(self.fake))

    def real_features(self) -> torch.Tensor:
        return self._cached("real_features", lambda: self._need_extractor().features(self.real))

    def fake_probabilities(self) -> torch.Tensor:
        return self._cached("fake_probs", lambda: self._need_probabilities()(self.fake))

    def _need_probabilities(self):
        probabilities = getattr(self._need_extractor(), "probabilities", None)
        if not callable(probabilities):
            from ganforge.errors import ConfigError

            raise ConfigError("this metric reads class probabilities, and the feature extractor in use gives "
                              "features only; pick one that classifies this data with --set metric.extractor=NAME "
                              "(the shipped lenet-mnist does, for (1, 28, 28) digits)")
        return probabilities

    def space(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(fake, real) in the space distance metrics use: features for images, raw points else."""
        if self.info.modality == "image":
            return self.fake_features(), self.real_features()
        return self.fake.flatten(1), self.real.flatten(1)


class Metric:
    """A sample-quality metric. ``compute`` returns named numbers (e.g. ``{"fid": 12.3}``);
    ``labels`` and ``format`` say how ``ganforge eval`` shows them, which knows no metric's keys."""

    #: whether the metric makes sense for image data / 2-D point data by default
    modalities: ClassVar[tuple[str, ...]] = ("image",)
    #: whether ganforge reports the same metric on two disjoint real halves as a floor
    has_floor: ClassVar[bool] = False
    #: whether the metric runs when the user names none (and it applies): a property of the
    #: metric, whoever provides it
    by_default: ClassVar[bool] = True
    #: whether it needs a feature extractor for image data (FID, KID, PRDC, IS do)
    needs_features: ClassVar[bool] = True
    #: whether it reads the extractor's class probabilities (IS, the legible share); left out
    #: where the extractor gives features only
    needs_probabilities: ClassVar[bool] = False
    #: whether it reads ``EvalData.real`` (a mode count reads only the fakes, and its floor draws its
    #: own real samples): when no chosen metric does, ``evaluate`` draws no real reference set
    needs_real: ClassVar[bool] = True
    #: what data it needs, said when it is left out for other data ("the stacked-mnist data set")
    requires: ClassVar[str] = ""
    #: what its numbers can be compared with beyond ganforge, such as "PacGAN's 2-D tables (Lin et
    #: al. 2018) at the data sets' defaults and -n 2500"; empty: only with other ganforge runs on
    #: the same data, evaluated with the same number of samples. For a metric computed in an
    #: extractor's feature space, the extractor's ``comparable`` is what counts (an FID in
    #: lenet-mnist or random-conv features compares with no published FID).
    comparable: ClassVar[str] = ""
    #: the name ``ganforge eval`` shows for each key ``compute`` returns; a key not named here
    #: shows as itself
    labels: ClassVar[dict[str, str]] = {}
    #: keys ``compute`` returns that describe the data, not the generator (the modes a mixture
    #: has): written beside the measurements for ``format``, never summarised or compared across
    #: runs by a sweep or a search
    context_keys: ClassVar[frozenset[str]] = frozenset()

    def applies_to(self, info: DataInfo, dataset: GanDataset | None) -> bool:
        return info.modality in self.modalities

    def compute(self, data: EvalData) -> dict[str, float]:
        raise NotImplementedError

    def format(self, values: Mapping[str, float], *, spread: bool = True) -> dict[str, str]:
        """The text ``ganforge eval`` shows for each key of ``values`` (what ``compute`` returned),
        in order; a key left out is not shown.

        By default a number has 4 significant digits, followed by ``± KEY_std`` (2 digits) when
        ``spread`` and ``compute`` returned a ``KEY_std``; the ``_std`` keys are not rows of their
        own. The real-vs-real column is formatted with ``spread=False``.
        """
        shown = {}
        for key, value in values.items():
            if key.endswith("_std"):
                continue
            text = f"{value:.4g}"
            if spread and f"{key}_std" in values:
                text += f" ± {values[key + '_std']:.2g}"
            shown[key] = text
        return shown

    def real_floor(self, data: EvalData) -> dict[str, float] | None:
        """The metric's real-vs-real floor when it computes one itself (a metric whose floor
        needs as many real samples as it reads fakes, such as a mode count, draws them fresh from
        ``data.dataset``); ``None``, the default, lets ganforge compute the metric between two
        disjoint halves of the real reference set."""
        return None

    def describe(self) -> dict[str, Any]:
        return {}
