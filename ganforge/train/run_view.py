"""What a plugin's lifecycle hooks see of a training run: a narrow, read-only view.

Hooks get the settings, the run folder, the step, the fixed noise and a way to draw samples,
rather than the trainer itself, so a plugin depends on a small documented surface (pytest hands
its hooks a report, not the session's internals) and the trainer's insides may change freely.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import torch

from ganforge.data import DataInfo
from ganforge.models.sampling import draw
from ganforge.run.folder import RunFolder
from ganforge.runtime.precision import emulation_warning

if TYPE_CHECKING:  # pragma: no cover
    from ganforge.train.trainer import Trainer


class Run:
    def __init__(self, trainer: Trainer) -> None:
        self._trainer = trainer

    @property
    def config(self) -> Any:
        """The fully resolved settings (``run.config.steps``, ``run.config.sample_every``, ...)."""
        return self._trainer.config

    @property
    def folder(self) -> RunFolder:
        """The run folder: ``folder.root``, ``folder.metrics``, ``folder.plugin_dir(name)``, ..."""
        return self._trainer.folder

    @property
    def step(self) -> int:
        """Finished steps so far (after a resume, counting the earlier sessions' steps)."""
        return self._trainer.step

    @property
    def start_step(self) -> int:
        """The step this session started from: 0 for a new run, the checkpoint's step on resume."""
        return self._trainer.start_step

    @property
    def info(self) -> DataInfo:
        return self._trainer.info

    @property
    def device(self) -> torch.device:
        return self._trainer.device

    @property
    def precision(self) -> str:
        """The precision the run computes in (``auto`` resolved: bf16 or fp32)."""
        return self._trainer.seam.precision

    @property
    def precision_warning(self) -> str | None:
        """One line when the run computes in a precision this device only emulates (slow)."""
        return emulation_warning(self.precision, self.device)

    @property
    def data_description(self) -> str | None:
        """What the data set says it loaded (the folder data set: counts and skipped files)."""
        describe = getattr(self._trainer.data, "describe", None)
        return describe() if callable(describe) else None

    @property
    def fixed_noise(self) -> torch.Tensor:
        """The noise the run's pictures are drawn from, the same at every step."""
        return self._trainer.fixed_noise

    def draw(self, noise: torch.Tensor | None = None) -> torch.Tensor:
        """Samples of the sampler (the weight average when kept) for ``noise`` (default: the fixed
        noise), in eval mode, float32 on the CPU."""
        return draw(self._trainer.sampler, self.fixed_noise if noise is None else noise.to(self.device)).cpu()


class StepValues(Mapping[str, Any]):
    """One step's numbers for the step hook. Losses stay tensors on the device until a plugin
    reads them, so a run whose plugins only look at logged steps never waits for the device."""

    def __init__(self, **values: Any) -> None:
        self._values = values

    def __getitem__(self, key: str) -> Any:
        value = self._values[key]
        return float(value) if isinstance(value, torch.Tensor) else value

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)
