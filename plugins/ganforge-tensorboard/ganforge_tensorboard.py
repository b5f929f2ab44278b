"""TensorBoard logging for ganforge runs: ``pip install ./plugins/ganforge-tensorboard``, then
every ``ganforge run`` writes event files to ``RUN/tensorboard`` (``tensorboard --logdir runs``).

What it writes, all from ganforge's lifecycle hooks:

- ``loss/d_loss``, ``loss/g_loss``, ``speed/steps_per_s`` at every logged step (the same numbers
  as metrics.jsonl, averaged over the steps since the previous line);
- every ``--eval-every`` result (``eval/fid``, ``eval/recall``, ...);
- at every ``--sample-every`` step and the last, 16 images from the run's fixed noise through the
  sampler (the EMA generator when the run keeps one), or a scatter plot for 2-D data.

A resumed run starts its events with a purge at the resumed step, so TensorBoard drops what the
interrupted process wrote after its last checkpoint and the curves match metrics.jsonl. Without
the ``tensorboard`` package the plugin says so once and the run trains on without it.
"""

from __future__ import annotations

import sys
from typing import Any

import torch

from ganforge import hookimpl

N_IMAGES = 16


class TensorBoardLogger:
    def __init__(self) -> None:
        self.writer: Any = None

    @hookimpl
    def ganforge_on_train_start(self, trainer) -> None:  # type: ignore[no-untyped-def]
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            print("ganforge-tensorboard: the tensorboard package is missing, so no events are written; "
                  "pip install tensorboard", file=sys.stderr)
            return
        self.writer = SummaryWriter(log_dir=str(trainer.paths.root / "tensorboard"),
                                    purge_step=trainer.step if trainer.step > 0 else None)

    @hookimpl
    def ganforge_on_step_end(self, trainer, step: int, logs, logged: bool) -> None:  # type: ignore[no-untyped-def]
        if self.writer is None:
            return
        if logged:
            for key in ("d_loss", "g_loss"):
                if key in logs:
                    self.writer.add_scalar(f"loss/{key}", logs[key], step)
            if "steps_per_s" in logs:
                self.writer.add_scalar("speed/steps_per_s", logs["steps_per_s"], step)
        every = trainer.config.sample_every
        if (every and step % every == 0) or step == trainer.config.steps:
            self._samples(trainer, step)

    @hookimpl
    def ganforge_on_eval(self, trainer, step: int, results: dict[str, float]) -> None:  # type: ignore[no-untyped-def]
        if self.writer is not None:
            for key, value in results.items():
                self.writer.add_scalar(key, value, step)

    @hookimpl
    def ganforge_on_train_end(self, trainer) -> None:  # type: ignore[no-untyped-def]
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    @torch.no_grad()
    def _samples(self, trainer, step: int) -> None:  # type: ignore[no-untyped-def]
        sampler = trainer.sampler
        was_training = sampler.training
        sampler.eval()
        fake = sampler(trainer.fixed_noise).float().cpu()
        sampler.train(was_training)
        if trainer.info.modality == "image":
            lo, hi = trainer.info.value_range or (-1.0, 1.0)
            images = ((fake[:N_IMAGES] - lo) / (hi - lo)).clamp(0, 1)
            self.writer.add_images("samples", images, step)
        else:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt

            figure, axes = plt.subplots(figsize=(4, 4), dpi=80)
            axes.scatter(fake[:, 0], fake[:, 1], s=2)
            self.writer.add_figure("samples", figure, step)  # closes the figure


logger = TensorBoardLogger()


@hookimpl
def ganforge_on_train_start(trainer) -> None:  # type: ignore[no-untyped-def]
    logger.ganforge_on_train_start(trainer)


@hookimpl
def ganforge_on_step_end(trainer, step: int, logs, logged: bool) -> None:  # type: ignore[no-untyped-def]
    logger.ganforge_on_step_end(trainer, step, logs, logged)


@hookimpl
def ganforge_on_eval(trainer, step: int, results: dict[str, float]) -> None:  # type: ignore[no-untyped-def]
    logger.ganforge_on_eval(trainer, step, results)


@hookimpl
def ganforge_on_train_end(trainer) -> None:  # type: ignore[no-untyped-def]
    logger.ganforge_on_train_end(trainer)
