"""Build a run's pieces (data, models, loss, optimisers) from the registry and a RunConfig.

Shared by training, ``ganforge sample`` and ``ganforge eval``: components reach the trainer only
through the registry, never by name checks.
"""

from __future__ import annotations

import dataclasses

from typing import Any

import torch
from torch import nn

from ganforge.config import RunConfig, check_type
from ganforge.errors import ConfigError, PluginError
from ganforge.data import DataInfo, GanDataset
from ganforge.losses import GanLoss
from ganforge.registry import Component, Registry


def declared_defaults(factory: object) -> dict:
    """The run settings a component's factory declares it needs (its ``defaults`` mapping)."""
    return dict(getattr(factory, "defaults", None) or {})


DEFAULT_DISCRIMINATOR = "mlp"


def default_discriminator(gen: str, registry: Registry) -> str:
    """``--disc`` left out: the generator's family when it has a discriminator (``dcgan`` ->
    ``dcgan``), else the built-in ``mlp`` discriminator, which fits any data shape. A plugin that
    adds only a generator is usable without naming a discriminator."""
    return gen if ("discriminator", gen) in registry else DEFAULT_DISCRIMINATOR


def resolve_config(config: RunConfig, registry: Registry) -> RunConfig:
    """Check every component name, then fill unset settings: the data set's declared defaults
    (e.g. the 2-D mixtures' z_dim 2), then the loss's (e.g. WGAN's n_critic 5), then ganforge's."""
    registry.get("generator", config.gen)
    if config.disc is None:
        config = dataclasses.replace(config, disc=default_discriminator(config.gen, registry))
    registry.get("discriminator", config.disc)
    data = checked_defaults(registry.get("dataset", config.data))
    loss = checked_defaults(registry.get("loss", config.loss))
    return config.resolved(data, loss)


def checked_defaults(component: Component) -> dict[str, Any]:
    """A component's declared run defaults, each key a run setting of the right type; a mistake
    is the plugin's, so the :class:`PluginError` names the plugin and the key."""
    defaults = declared_defaults(component.factory)
    fields = RunConfig.__dataclass_fields__
    for key, value in defaults.items():
        if key not in fields or key in ("options", "out", "resume", "recipe"):
            raise PluginError(f"{component.kind} {component.name!r} from {component.provider} declares a default "
                              f"for {key!r}, which is not a run setting (valid: "
                              f"{', '.join(sorted(k for k in fields if k not in ('options', 'out', 'resume')))}); "
                              f"the plugin needs fixing")
        try:
            check_type(key, value)
        except ConfigError as exc:
            raise PluginError(f"{component.kind} {component.name!r} from {component.provider} declares a bad "
                              f"default: {exc}; the plugin needs fixing") from None
    return defaults


def build_dataset(config: RunConfig, registry: Registry) -> GanDataset:
    return registry.get("dataset", config.data).build(**config.section("data"))


def build_models(config: RunConfig, registry: Registry, info: DataInfo) -> tuple[nn.Module, nn.Module]:
    gen = registry.get("generator", config.gen).build(
        z_dim=config.z_dim, sample_shape=info.sample_shape, value_range=info.value_range,
        **config.section("gen"))
    disc = registry.get("discriminator", config.disc or config.gen).build(
        sample_shape=info.sample_shape, **config.section("disc"))
    return gen, disc


def build_loss(config: RunConfig, registry: Registry) -> GanLoss:
    """The loss with its R1/R2 weights set as ``loss.penalties``: ``loss.r1`` and ``loss.r2`` are
    the training step's options, so they are split off before the factory is called and any
    loss, a plugin's included, takes them."""
    from ganforge.losses import build_with_penalties

    return build_with_penalties(registry.get("loss", config.loss), config.section("loss"))


def build_optimizer(name: str, params: list[nn.Parameter], lr: float,
                    betas: tuple[float, float]) -> torch.optim.Optimizer:
    """Adam as one fused kernel over all parameters where torch has one (CPU and CUDA since torch
    2.4), else the multi-tensor ("foreach") form. Measured on the MNIST MLP GAN at batch 64: the
    step is 1.7x faster with fused Adam than with torch's default single-tensor Adam on the CPU."""
    if name == "adam":
        try:
            return torch.optim.Adam(params, lr=lr, betas=betas, fused=True)
        except (RuntimeError, TypeError):  # a device or dtype without a fused kernel
            return torch.optim.Adam(params, lr=lr, betas=betas, foreach=True)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, foreach=True)
    return torch.optim.SGD(params, lr=lr, foreach=True)
