"""Run metrics on a generator: draw samples, take held-out real data, compute, add the floor.

The floor is each metric computed between two disjoint halves of the real reference set: the value
a perfect generator would get with this many samples (FID is biased by sample size, so a "good" FID
only means something next to it).

Image metrics read features from an extractor: the one the user names (``metric.extractor``), else
the first of :data:`DEFAULT_EXTRACTORS` that reads the data's shape: the shipped LeNet for (1, 28,
28) digits, the untrained ``random-conv`` for any other image of at least 8x8 pixels. Each result
says, per metric, what its numbers can be compared with (:attr:`Metric.comparable`, or the
extractor's for a metric computed in its features).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ganforge.data import GanDataset
from ganforge.errors import ConfigError, UsageError
from ganforge.metrics.base import EvalData, FeatureExtractor, Metric
from ganforge.models.sampling import draw
from ganforge.registry import Registry

DEFAULT_N = {"image": 10_000, "points": 2_500}
"""Samples drawn when ``-n`` is not given; a data set whose protocol fixes the count (StackedMNIST's
26,000) says so in an ``eval_samples`` attribute."""
DEFAULT_EXTRACTORS = ("lenet-mnist", "random-conv")
"""Tried in turn when the user names no extractor: the first registered one that reads the data's
shape is used. LeNet comes first, so MNIST's numbers stay what they were."""
DEFAULT_EXTRACTOR = DEFAULT_EXTRACTORS[0]


@dataclass
class EvalResult:
    step: int
    n_fake: int
    n_real: int
    values: dict[str, float] = field(default_factory=dict)
    floor: dict[str, float] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    """Metrics left out of the default set, with the reason (shown by ``ganforge eval``)."""
    metrics: dict[str, Metric] = field(default_factory=dict, repr=False)
    """The metrics computed, by name, and the keys of ``values`` each reported (``keys``): how
    to show a value is the metric's to say (``Metric.labels``, ``Metric.format``)."""
    keys: dict[str, list[str]] = field(default_factory=dict)
    extractor: str | None = None
    """The extractor whose features the image metrics were computed in (``None``: none was used)."""
    extractor_description: str = ""
    comparable: dict[str, str] = field(default_factory=dict)
    """Per metric computed, what its numbers can be compared with (:func:`comparability`)."""
    context_keys: list[str] = field(default_factory=list)
    """Keys of ``values`` that describe the data, not the generator (``Metric.context_keys``)."""

    def to_dict(self) -> dict[str, Any]:
        return {"step": self.step, "n_fake": self.n_fake, "n_real": self.n_real, "metrics": self.values,
                "real_vs_real": self.floor, "skipped": self.skipped, "extractor": self.extractor,
                "extractor_description": self.extractor_description, "comparable": self.comparable,
                "metric_keys": self.keys, "context_keys": self.context_keys}


EXTRACTOR_OPTIONS = ("extractor", "weights")


def default_metrics(registry: Registry, dataset: GanDataset, options: dict[str, Any] | None = None,
                    skipped: dict[str, str] | None = None) -> list[str]:
    """Every registered metric (any provider) that runs by default and applies to ``dataset``;
    one that needs image features is left out when no extractor reads this data's shape, one that
    reads class probabilities when the extractor gives features only, and ``skipped`` (when given)
    collects why each metric was left out."""
    images = dataset.info.modality == "image"
    chosen = choose_extractor(registry, dataset, options or {}) if images else None
    names = []
    for name in registry.names("metric"):
        metric = registry.get("metric", name).build()
        if not isinstance(metric, Metric) or not metric.by_default:
            continue
        if not metric.applies_to(dataset.info, dataset):
            reason = f"does not apply to {dataset.info.modality} data"
            if metric.requires:
                reason += f" (needs {metric.requires})"
        elif metric.needs_features and images and chosen is None:
            reason = (f"needs a feature extractor for images of shape {tuple(dataset.info.sample_shape)}; the "
                      f"shipped ones read (1, 28, 28) digits (lenet-mnist) and images of at least 8x8 pixels "
                      f"(random-conv): a plugin can ship one (--set metric.extractor=NAME)")
        elif (metric.needs_probabilities and images and chosen is not None
              and not callable(getattr(chosen[1], "probabilities", None))):
            reason = (f"needs class probabilities; extractor {chosen[0]} gives features only (the shipped "
                      f"LeNet classifies (1, 28, 28) digits)")
        else:
            names.append(name)
            continue
        if skipped is not None:
            skipped[name] = reason
    return names


def group_by_text(texts: dict[str, str]) -> list[tuple[list[str], str]]:
    """``{"fid": a, "kid": a, "modes": b}`` -> ``[(["fid", "kid"], a), (["modes"], b)]``, in order."""
    by_text: dict[str, list[str]] = {}
    for name, text in texts.items():
        by_text.setdefault(text, []).append(name)
    return [(names, text) for text, names in by_text.items()]


def describe_skipped(skipped: dict[str, str]) -> str:
    """``fid, kid: reason; modes: other reason``: metrics left out, grouped by why."""
    return "; ".join(f"{', '.join(names)}: {reason}" for names, reason in group_by_text(skipped))


def uses_features(metric: Metric, dataset: GanDataset) -> bool:
    """Whether ``metric`` reads the extractor (features or probabilities) on this data."""
    return metric.needs_features and dataset.info.modality == "image"


def comparability(metric: Metric, dataset: GanDataset, n: int, extractor: str | None,
                  extractor_comparable: str = "") -> str:
    """What ``metric``'s numbers from ``n`` samples compare with: its own ``comparable`` text, or
    for a metric computed in ``extractor``'s features, the extractor's; else only ganforge runs
    evaluated the same way, which this says (data, ``-n`` and, for features, the extractor)."""
    in_features = uses_features(metric, dataset) and extractor is not None
    text = extractor_comparable if in_features else metric.comparable
    if text:
        return text
    return f"ganforge runs only (same data, -n {n}" + (f", extractor {extractor})" if in_features else ")")


def metric_options(names: Sequence[str], options: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Split ``--set metric.NAME.KEY=VALUE`` (or a ``[metric.NAME]`` TOML table) by metric;
    ``metric.extractor`` and ``metric.weights`` choose the feature extractor for all of them."""
    per: dict[str, dict[str, Any]] = {name: {} for name in names}
    flat: dict[str, Any] = {}
    for key, value in options.items():
        if isinstance(value, dict):  # a [metric.prdc] table
            flat.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            flat[key] = value
    for key, value in flat.items():
        if key in EXTRACTOR_OPTIONS:
            continue
        name, dot, option = key.partition(".")
        if not dot:
            raise ConfigError(f"--set metric.{key}: name the metric it is for, such as --set "
                              f"metric.{names[0] if names else 'prdc'}.{key}={value}; metric.extractor and "
                              f"metric.weights choose the extractor")
        if name not in per:
            raise ConfigError(f"--set metric.{key}: metric {name!r} is not among those computed "
                              f"({', '.join(names) or 'none'}); add --metric {name} or drop the option")
        per[name][option] = value
    return per


def reads(extractor: Any, shape: tuple[int, ...]) -> bool:
    """Whether ``extractor`` reads samples of ``shape``: its ``reads(shape)`` when it has one, else
    its ``input_shape`` (an extractor that declares neither reads anything)."""
    check = getattr(extractor, "reads", None)
    if callable(check):
        return bool(check(tuple(shape)))
    expected = getattr(extractor, "input_shape", None)
    return expected is None or tuple(expected) == tuple(shape)


def choose_extractor(registry: Registry, dataset: GanDataset,
                     options: dict[str, Any]) -> tuple[str, FeatureExtractor] | None:
    """(name, extractor) for image data: the one ``options["extractor"]`` names (a
    :class:`ConfigError` when it cannot read the data), else the first of
    :data:`DEFAULT_EXTRACTORS` that is registered and reads the data (only LeNet when
    ``options["weights"]`` gives its weights); ``None`` for other data or when none reads it."""
    if dataset.info.modality != "image":
        return None
    shape = tuple(dataset.info.sample_shape)
    kwargs = {"weights": options["weights"]} if "weights" in options else {}
    if "extractor" in options:
        name = options["extractor"]
        extractor = registry.get("extractor", name).build(**kwargs)
        if not reads(extractor, shape):
            expected = getattr(extractor, "input_shape", None)
            what = f"expects samples of shape {tuple(expected)}" if expected is not None else "cannot read"
            raise ConfigError(f"extractor {name!r} {what}, the data has {shape}; leave metric.extractor out "
                              f"to let ganforge choose one that reads it")
        return name, extractor
    for name in DEFAULT_EXTRACTORS[:1] if kwargs else DEFAULT_EXTRACTORS:
        if ("extractor", name) not in registry:
            continue
        extractor = registry.get("extractor", name).build(**kwargs)
        if reads(extractor, shape):
            return name, extractor
    return None


def build_extractor(registry: Registry, dataset: GanDataset, options: dict[str, Any]) -> FeatureExtractor | None:
    """The extractor :func:`choose_extractor` picks, without its name."""
    chosen = choose_extractor(registry, dataset, options)
    return chosen[1] if chosen is not None else None


def generate(generator: nn.Module, z_dim: int, n: int, seed: int, batch_size: int = 1000) -> torch.Tensor:
    """``n`` samples of seeded noise (drawn chunk by chunk, as every earlier version drew it, so
    a run's numbers do not move), float32 on the CPU."""
    rng = torch.Generator().manual_seed(seed)
    device = next(generator.parameters()).device
    chunks = [torch.randn(min(batch_size, n - i), z_dim, generator=rng) for i in range(0, n, batch_size)]
    return torch.cat([draw(generator, z.to(device)).cpu() for z in chunks])


def _compute(name: str, metric: Metric, data: EvalData) -> dict[str, float]:
    """A metric's values; its complaint about the inputs (too few samples) becomes a usage error."""
    try:
        return metric.compute(data)
    except ValueError as exc:
        raise UsageError(f"metric {name!r} cannot be computed: {exc}; evaluate more samples (-n)") from None


def _real_halves(data: EvalData, rng: torch.Generator) -> EvalData:
    """Two disjoint halves of the real reference set, as "fake" and "real"; features already
    computed for the real set are reused (no second pass through the extractor)."""
    real = data.real
    half = len(real) // 2
    order = torch.randperm(len(real), generator=rng)
    ia, ib = order[:half], order[half: 2 * half]
    halves = EvalData(real[ia], real[ib], data.info, data.dataset, data.extractor, data.seed)
    if "real_features" in data._cache:
        features = data._cache["real_features"]
        halves._cache.update(fake_features=features[ia], real_features=features[ib])
    return halves


def evaluate(generator: nn.Module, z_dim: int, dataset: GanDataset, registry: Registry,
             metrics: Sequence[str] | None = None, n: int | None = None, seed: int = 0, step: int = 0,
             options: dict[str, Any] | None = None, floor: bool = True) -> EvalResult:
    """Compute ``metrics`` (default: every built-in one that applies) for ``n`` generated samples."""
    options = dict(options or {})
    skipped: dict[str, str] = {}
    names = list(metrics) if metrics else default_metrics(registry, dataset, options, skipped)
    if not names:
        raise UsageError(f"no metric applies to this data ({describe_skipped(skipped)})")
    per_metric = metric_options(names, options)
    built: dict[str, Metric] = {name: registry.get("metric", name).build(**per_metric[name]) for name in names}
    n = n or getattr(dataset, "eval_samples", None) or DEFAULT_N.get(dataset.info.modality, 10_000)
    rng = torch.Generator().manual_seed(seed + 7)
    if any(metric.needs_real for metric in built.values()):
        real = dataset.real_samples(n, rng, split="all")
    else:  # a mode count: its floor draws its own real samples
        real = torch.empty(0, *dataset.info.sample_shape)
    fake = generate(generator, z_dim, n, seed)
    chosen = choose_extractor(registry, dataset, options)
    extractor_name, extractor = chosen if chosen is not None else (None, None)
    data = EvalData(fake, real, dataset.info, dataset, extractor, seed)
    result = EvalResult(step, len(fake), len(real), skipped=skipped, metrics=built)
    if extractor_name is not None and any(uses_features(m, dataset) for m in built.values()):
        result.extractor = extractor_name
        result.extractor_description = registry.get("extractor", extractor_name).description
    for name, metric in built.items():
        values = _compute(name, metric, data)
        result.values.update(values)
        result.keys[name] = list(values)
        result.context_keys += [k for k in values if k in metric.context_keys]
        result.comparable[name] = comparability(metric, dataset, len(fake), result.extractor,
                                                getattr(extractor, "comparable", "") or "")
    if floor and any(m.has_floor for m in built.values()):
        halves = _real_halves(data, rng) if len(real) >= 8 else None
        for name, metric in built.items():
            if not metric.has_floor:
                continue
            own = metric.real_floor(data)
            if own is not None:
                result.floor.update(own)
            elif halves is not None:
                result.floor.update(_compute(name, metric, halves))
    return result
