"""Shared fixtures: a registry of the built-ins only, so installed plugins never change a test."""

from __future__ import annotations

import pytest

from ganforge.plugins import build_registry, get_plugin_manager
from ganforge.registry import Registry


@pytest.fixture
def plugin_manager():
    return get_plugin_manager(entry_points=False)


@pytest.fixture
def registry(plugin_manager) -> Registry:
    return build_registry(plugin_manager)


@pytest.fixture
def tiny_points_config(tmp_path):
    """A seconds-long 2-D run: small models, few steps."""
    from ganforge import RunConfig

    return RunConfig(data="ring8", loss="nonsat", steps=30, batch_size=32, z_dim=4, out=str(tmp_path / "run"),
                     log_every=5, sample_every=10, ckpt_every=10,
                     options={"gen": {"hidden": (32, 32)}, "disc": {"hidden": (32, 32)}})
