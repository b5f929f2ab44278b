"""Rebuild a finished run's generator from its folder alone (its record and latest checkpoint)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import torch
from torch import nn

from ganforge.config import RunConfig
from ganforge.data import DataInfo
from ganforge.errors import CheckpointError, ConfigError, UsageError
from ganforge.models.sampling import draw
from ganforge.registry import Registry
from ganforge.run.checkpoint import read_checkpoint, restoring
from ganforge.run.folder import RunFolder
from ganforge.train.build import build_models
from ganforge.train.ema import calibration_size, recalibrate_batch_norms


@dataclass
class RestoredRun:
    config: RunConfig
    info: DataInfo
    generator: nn.Module
    discriminator: nn.Module
    step: int
    averaged: bool = False
    """True when ``generator`` holds the run's EMA weights (the default when the run kept them)."""

    @property
    def z_dim(self) -> int:
        """The generator's noise size; a run's record always holds it."""
        assert self.config.z_dim is not None
        return self.config.z_dim

    @torch.no_grad()
    def sample(self, n: int, seed: int = 0, batch_size: int = 1000, label: int | None = None) -> torch.Tensor:
        """``n`` generated samples, in the data's own value range, on the CPU; with ``label``,
        all of that class (a generator with classes, e.g. ``gen.classes=K``)."""
        classes = int(getattr(self.generator, "classes", 0) or 0)
        if label is not None and not 0 <= label < classes:
            raise UsageError(f"--class {label}: this run's generator draws {classes} classes, numbered 0 to "
                             f"{classes - 1}" if classes else
                             f"--class {label}: this run's generator has no classes; train with "
                             f"--set gen.classes=K --set disc.classes=K to draw a chosen class")
        rng = torch.Generator()
        rng.manual_seed(seed)
        device = next(self.generator.parameters()).device
        chunks = []
        for start in range(0, n, batch_size):
            z = torch.randn(min(batch_size, n - start), self.z_dim, generator=rng)
            if label is not None:
                noise_of_class = cast(Callable[..., torch.Tensor], self.generator.noise_of_class)
                z = noise_of_class(z, torch.full((len(z),), label), torch.rand(len(z), generator=rng))
            chunks.append(draw(self.generator, z.to(device)).cpu())
        return torch.cat(chunks) if chunks else torch.empty(0, *self.info.sample_shape)


def load_run(run_dir: str | Path, registry: Registry, device: str | torch.device = "cpu",
             ema: bool = True, step: int | None = None) -> RestoredRun:
    """The run's generator and discriminator at its latest checkpoint (or the one of ``step``);
    the generator holds the weight average when the run kept one and ``ema`` is true (what the
    run's pictures showed)."""
    folder = RunFolder(run_dir)
    record = folder.read_record()
    try:
        config = RunConfig.from_dict(record.config)
    except ConfigError as exc:
        raise UsageError(f"{folder.config} is unreadable ({exc}); was it edited by hand?") from None
    info = record.data_info
    ckpt = read_checkpoint(folder.root, step)  # safe against the run still training in the folder
    if ckpt is None:
        raise CheckpointError(f"{folder.root} has no checkpoint yet; wait for the run's first "
                              f"checkpoint (--ckpt-every) or for it to finish")
    ckpt_path = ckpt.path
    gen, disc = build_models(config, registry, info)
    ema_weights = ckpt.generator_ema if ema else None
    averaged = ema_weights is not None
    with restoring(ckpt_path):
        gen.load_state_dict(ema_weights if ema_weights is not None else ckpt.generator)
        disc.load_state_dict(ckpt.discriminator)
    if not all(bool(torch.isfinite(t).all()) for t in gen.state_dict().values() if t.is_floating_point()):
        raise CheckpointError(f"checkpoint {ckpt_path} holds a generator with non-finite weights (NaN or "
                              f"infinite); it cannot draw samples. Use an earlier checkpoint")
    gen.to(device).eval()
    disc.to(device).eval()
    run = RestoredRun(config, info, gen, disc, ckpt.step, averaged)
    if averaged:  # the average's own statistics: the bits it was saved with, and right for older runs
        recalibrate_batch_norms(gen, run.z_dim, calibration_size(info.sample_shape))
    return run
