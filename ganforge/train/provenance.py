"""Which code produced a run: versions of ganforge, torch and every plugin's distribution."""

from __future__ import annotations

from typing import Any

import torch

from ganforge.config import ResolvedConfig, RunConfig
from ganforge.registry import Registry

ROLES = (("generator", "gen"), ("discriminator", "disc"), ("loss", "loss"), ("dataset", "data"))


def provenance(registry: Registry, config: ResolvedConfig | RunConfig) -> dict[str, Any]:
    from ganforge import __version__
    from ganforge.ops import backend

    components = {}
    for kind, field in ROLES:
        comp = registry.get(kind, getattr(config, field))
        components[kind] = {"name": comp.name, "plugin": comp.provider.plugin,
                            "distribution": comp.provider.distribution, "version": comp.provider.version}
    return {"ganforge": __version__, "torch": torch.__version__, "op_backend": backend(),
            "components": components}
