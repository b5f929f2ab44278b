"""TensorBoard logging for ganforge runs: ``pip install ./plugins/ganforge-tensorboard``, then
every ``ganforge run`` writes event files to ``RUN/tensorboard`` (``tensorboard --logdir runs``).

What it writes, all from ganforge's lifecycle hooks:

- ``loss/d_loss``, ``loss/g_loss``, ``speed/steps_per_s`` at every logged step (the same numbers
  as the run's metrics log, averaged over the steps since the previous line);
- every ``--eval-every`` result (``eval/fid``, ``eval/recall``, ...);
- the run's pictures (``ganforge_on_samples``: every ``--sample-every`` steps and the last): 16
  images from the fixed noise, or a scatter plot for 2-D data.

Resuming continues the events: the plugin keeps its state in every checkpoint (the size of each
event file at that moment), and a resumed run cuts its event files back to those sizes, so what an
interrupted process wrote after its last checkpoint is gone and the curves match the metrics log,
without TensorBoard's purge. Without the ``tensorboard`` package the plugin says so once and the
run trains on without it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import torch

from ganforge import hookimpl

N_IMAGES = 16
FOLDER = "tensorboard"


class TensorBoardLogger:
    def __init__(self) -> None:
        self.writer: Any = None
        self.log_dir: Path | None = None
        self.saved_sizes: dict[str, int] | None = None  # from the checkpoint a resume continues

    # -- state across --resume ----------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """The size of each event file once everything up to this step is on disk."""
        if self.writer is None or self.log_dir is None:
            return {}
        self.writer.flush()
        return {"sizes": {p.name: p.stat().st_size for p in self.log_dir.glob("events.out.tfevents.*")}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.saved_sizes = {str(k): int(v) for k, v in state.get("sizes", {}).items()} if state else None

    def _rewind(self, log_dir: Path) -> None:
        """Cut the event files back to the checkpoint: each known file to its size then, and files
        started after it (by the interrupted session) removed. Records are length-prefixed, and
        the sizes were taken after a flush, so each cut falls between two records."""
        for path in log_dir.glob("events.out.tfevents.*"):
            size = (self.saved_sizes or {}).get(path.name)
            if size is None:
                path.unlink()
            elif path.stat().st_size > size:
                os.truncate(path, size)

    # -- hooks --------------------------------------------------------------------------------

    @hookimpl
    def ganforge_on_train_start(self, run) -> None:  # type: ignore[no-untyped-def]
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            print("ganforge-tensorboard: the tensorboard package is missing, so no events are written; "
                  "pip install tensorboard", file=sys.stderr)
            return
        self.log_dir = run.folder.plugin_dir(FOLDER)
        purge_step = None
        if run.start_step > 0 and self.log_dir.is_dir():
            if self.saved_sizes is not None:
                self._rewind(self.log_dir)
            else:  # a checkpoint from before this plugin kept state: let TensorBoard purge
                purge_step = run.start_step
        self.writer = SummaryWriter(log_dir=str(self.log_dir), purge_step=purge_step)

    @hookimpl
    def ganforge_on_step_end(self, run, step: int, logs, logged: bool) -> None:  # type: ignore[no-untyped-def]
        if self.writer is None or not logged:
            return
        for key in ("d_loss", "g_loss"):
            if key in logs:
                self.writer.add_scalar(f"loss/{key}", logs[key], step)
        if "steps_per_s" in logs:
            self.writer.add_scalar("speed/steps_per_s", logs["steps_per_s"], step)

    @hookimpl
    def ganforge_on_samples(self, run, step: int, samples: torch.Tensor) -> None:  # type: ignore[no-untyped-def]
        if self.writer is None:
            return
        if run.info.modality == "image":
            lo, hi = run.info.value_range or (-1.0, 1.0)
            self.writer.add_images("samples", ((samples[:N_IMAGES] - lo) / (hi - lo)).clamp(0, 1), step)
            return
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        figure, axes = plt.subplots(figsize=(4, 4), dpi=80)
        axes.scatter(samples[:, 0], samples[:, 1], s=2)
        self.writer.add_figure("samples", figure, step)  # closes the figure

    @hookimpl
    def ganforge_on_eval(self, run, step: int, results: dict[str, float]) -> None:  # type: ignore[no-untyped-def]
        if self.writer is not None:
            for key, value in results.items():
                self.writer.add_scalar(key, value, step)

    @hookimpl
    def ganforge_on_train_end(self, run) -> None:  # type: ignore[no-untyped-def]
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        self.saved_sizes = None


# The entry point registers this module: its hooks and state are those of one logger.
logger = TensorBoardLogger()
state_dict = logger.state_dict
load_state_dict = logger.load_state_dict


@hookimpl
def ganforge_on_train_start(run) -> None:  # type: ignore[no-untyped-def]
    logger.ganforge_on_train_start(run)


@hookimpl
def ganforge_on_step_end(run, step: int, logs, logged: bool) -> None:  # type: ignore[no-untyped-def]
    logger.ganforge_on_step_end(run, step, logs, logged)


@hookimpl
def ganforge_on_samples(run, step: int, samples: torch.Tensor) -> None:  # type: ignore[no-untyped-def]
    logger.ganforge_on_samples(run, step, samples)


@hookimpl
def ganforge_on_eval(run, step: int, results: dict[str, float]) -> None:  # type: ignore[no-untyped-def]
    logger.ganforge_on_eval(run, step, results)


@hookimpl
def ganforge_on_train_end(run) -> None:  # type: ignore[no-untyped-def]
    logger.ganforge_on_train_end(run)
