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
from ganforge.registry import Registry

DEFAULT_N = {"image": 10_000, "points": 2_500}
DEFAULT_EXTRACTOR = "lenet-mnist"


@dataclass
class EvalResult:
    step: int
    n_fake: int
    n_real: int
    values: dict[str, float] = field(default_factory=dict)
    floor: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"step": self.step, "n_fake": self.n_fake, "n_real": self.n_real, "metrics": self.values,
                "real_vs_real": self.floor}


def default_metrics(registry: Registry, dataset: GanDataset) -> list[str]:
    names = []
    for name in registry.names("metric"):
        metric = registry.get("metric", name).build()
        if isinstance(metric, Metric) and metric.applies_to(dataset.info, dataset) \
                and registry.get("metric", name).provider.plugin == "ganforge.builtin":
            names.append(name)
    return names


def build_extractor(registry: Registry, dataset: GanDataset, options: dict[str, Any]):  # type: ignore[no-untyped-def]
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


@torch.no_grad()
def generate(generator: nn.Module, z_dim: int, n: int, seed: int, batch_size: int = 1000) -> torch.Tensor:
    rng = torch.Generator().manual_seed(seed)
    device = next(generator.parameters()).device
    was_training = generator.training
    generator.eval()
    out = [generator(torch.randn(min(batch_size, n - i), z_dim, generator=rng).to(device)).float().cpu()
           for i in range(0, n, batch_size)]
    generator.train(was_training)
    return torch.cat(out)


def _compute(name: str, metric: Metric, data: EvalData) -> dict[str, float]:
    """A metric's values; its complaint about the inputs (too few samples) becomes a usage error."""
    try:
        return metric.compute(data)
    except ValueError as exc:
        raise UsageError(f"metric {name!r} cannot be computed: {exc}; evaluate more samples (-n)") from None


def evaluate(generator: nn.Module, z_dim: int, dataset: GanDataset, registry: Registry,
             metrics: Sequence[str] | None = None, n: int | None = None, seed: int = 0, step: int = 0,
             options: dict[str, Any] | None = None, floor: bool = True) -> EvalResult:
    """Compute ``metrics`` (default: every built-in one that applies) for ``n`` generated samples."""
    options = dict(options or {})
    names = list(metrics) if metrics else default_metrics(registry, dataset)
    built: dict[str, Metric] = {name: registry.get("metric", name).build() for name in names}
    n = n or DEFAULT_N.get(dataset.info.modality, 10_000)
    rng = torch.Generator().manual_seed(seed + 7)
    real = dataset.real_samples(n, rng, split="all")
    fake = generate(generator, z_dim, n, seed)
    extractor = build_extractor(registry, dataset, options)
    data = EvalData(fake, real, dataset.info, dataset, extractor, seed)
    result = EvalResult(step, len(fake), len(real))
    for name, metric in built.items():
        result.values.update(_compute(name, metric, data))
    if floor and any(m.has_floor for m in built.values()) and len(real) >= 8:
        half = len(real) // 2
        order = torch.randperm(len(real), generator=rng)
        ia, ib = order[:half], order[half: 2 * half]
        floor_data = EvalData(real[ia], real[ib], dataset.info, dataset, extractor, seed)
        if "real_features" in data._cache:  # the halves' features are already known: no second pass
            features = data._cache["real_features"]
            floor_data._cache.update(fake_features=features[ia], real_features=features[ib])
        for name, metric in built.items():
            if metric.has_floor:
                result.floor.update(_compute(name, metric, floor_data))
    return result
