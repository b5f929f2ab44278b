"""Run metrics on a generator: draw samples, take held-out real data, compute, add the floor.

The floor is each metric computed between two disjoint halves of the real reference set: the value
a perfect generator would get with this many samples (FID is biased by sample size, so a "good" FID
only means something next to it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ganforge.data import GanDataset
from ganforge.errors import ConfigError, UsageError
from ganforge.metrics.base import EvalData, Metric
from ganforge.models.sampling import draw
from ganforge.registry import Registry

DEFAULT_N = {"image": 10_000, "points": 2_500}
"""Samples drawn when ``-n`` is not given; a data set whose protocol fixes the count (StackedMNIST's
26,000) says so in an ``eval_samples`` attribute."""
DEFAULT_EXTRACTOR = "lenet-mnist"


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

    def to_dict(self) -> dict[str, Any]:
        return {"step": self.step, "n_fake": self.n_fake, "n_real": self.n_real, "metrics": self.values,
                "real_vs_real": self.floor, "skipped": self.skipped}


EXTRACTOR_OPTIONS = ("extractor", "weights")


def default_metrics(registry: Registry, dataset: GanDataset, options: dict[str, Any] | None = None,
                    skipped: dict[str, str] | None = None) -> list[str]:
    """Every registered metric (any provider) that runs by default and applies to ``dataset``;
    one that needs image features is left out when no extractor reads this data's shape, and
    ``skipped`` (when given) collects why each metric was left out."""
    has_features = dataset.info.modality != "image" or build_extractor(registry, dataset, options or {}) is not None
    names = []
    for name in registry.names("metric"):
        metric = registry.get("metric", name).build()
        if not isinstance(metric, Metric) or not metric.by_default:
            continue
        if not metric.applies_to(dataset.info, dataset):
            reason = f"does not apply to {dataset.info.modality} data"
        elif metric.needs_features and dataset.info.modality == "image" and not has_features:
            reason = (f"needs a feature extractor for images of shape {tuple(dataset.info.sample_shape)}; the "
                      f"shipped LeNet reads (1, 28, 28): a plugin can ship one (--set metric.extractor=NAME)")
        else:
            names.append(name)
            continue
        if skipped is not None:
            skipped[name] = reason
    return names


def describe_skipped(skipped: dict[str, str]) -> str:
    """``fid, kid: reason; modes: other reason``: metrics left out, grouped by why."""
    by_reason: dict[str, list[str]] = {}
    for name, reason in skipped.items():
        by_reason.setdefault(reason, []).append(name)
    return "; ".join(f"{', '.join(names)}: {reason}" for reason, names in by_reason.items())


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


def build_extractor(registry: Registry, dataset: GanDataset, options: dict[str, Any]):
    if dataset.info.modality != "image":
        return None
    name = options.get("extractor", DEFAULT_EXTRACTOR)
    kwargs = {"weights": options["weights"]} if "weights" in options else {}
    extractor = registry.get("extractor", name).build(**kwargs)
    shape = getattr(extractor, "input_shape", None)
    if shape is not None and tuple(shape) != tuple(dataset.info.sample_shape):
        if "extractor" in options:
            raise ConfigError(f"extractor {name!r} expects samples of shape {tuple(shape)}, the data has "
                              f"{tuple(dataset.info.sample_shape)}")
        return None
    return extractor


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
    real = dataset.real_samples(n, rng, split="all")
    fake = generate(generator, z_dim, n, seed)
    extractor = build_extractor(registry, dataset, options)
    data = EvalData(fake, real, dataset.info, dataset, extractor, seed)
    result = EvalResult(step, len(fake), len(real), skipped=skipped, metrics=built)
    for name, metric in built.items():
        values = _compute(name, metric, data)
        result.values.update(values)
        result.keys[name] = list(values)
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
