"""Saving and restoring a run's whole state: the weights, their average, and the training state
composed from its owners (:class:`ganforge.train.run_state.TrainingState`).

A checkpoint holds everything the next step depends on, so N steps, a checkpoint and a resume give
the same bits as 2N steps. Checkpoints of earlier versions are read too: the first format kept the
optimisers and two RNGs only (the epoch restarts), the second the loss window in four loose keys.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ganforge.errors import DivergenceError
from ganforge.run.checkpoint import Checkpoint, load_checkpoint, restoring, save_checkpoint
from ganforge.run.folder import RunFolder
from ganforge.train.ema import EmaGenerator
from ganforge.train.run_state import TrainingState


def diverged(what: str, folder: RunFolder) -> DivergenceError:
    """The error that stops a diverged run; nothing non-finite was written, so the last good
    checkpoint is still ``latest`` and the message says where it is."""
    return DivergenceError(f"training diverged: {what}; {folder.last_good()}. Lower the learning rates "
                           f"(--lr-g/--lr-d), or add a penalty such as --set loss.r1=1, then start again or "
                           f"--resume")


class Checkpointer:
    def __init__(self, folder: RunFolder, generator: nn.Module, discriminator: nn.Module,
                 ema: EmaGenerator | None, state: TrainingState, data_rng: torch.Generator, keep: int) -> None:
        self.folder, self.generator, self.discriminator, self.ema = folder, generator, discriminator, ema
        self.state, self.data_rng, self.keep = state, data_rng, keep

    def check_finite(self, step: int) -> None:
        """Never write a non-finite network: the last good checkpoint must stay ``latest``."""
        for name, module in (("generator", self.generator), ("discriminator", self.discriminator)):
            if not all(bool(torch.isfinite(p).all()) for p in module.parameters()):
                raise diverged(f"the {name}'s weights are non-finite at step {step}", self.folder)

    def save(self, step: int) -> Path:
        return save_checkpoint(self.folder.checkpoints, step, self.generator, self.discriminator,
                               self.state.state_dict(), keep=self.keep,
                               generator_ema=self.ema.current() if self.ema is not None else None)

    def resume(self, resume: bool, from_step: int | None) -> int | None:
        """The process that owns the folder: restore the checkpoint a resume continues from and
        return its step, or ``None`` for a new run (whose folder loses a dead run's log)."""
        existing = self.folder.checkpoint_to_resume(resume, from_step)
        if existing is None:
            if self.folder.root.exists():
                self.folder.forget_metrics()  # a previous run died before its first checkpoint
            return None
        return self.restore(existing)

    def resume_read_only(self, resume: bool, from_step: int | None) -> int | None:
        """A process other than rank 0 under torchrun: load the checkpoint rank 0 resumes from
        (with ``from_step``, that step's own folder: rank 0 may be moving ``latest`` meanwhile)."""
        if not (resume and self.folder.root.is_dir()):
            return None
        path = self.folder.checkpoint_at(from_step) if from_step is not None else self.folder.latest_checkpoint()
        return None if path is None else self.restore(path, trim_metrics=False)

    def restore(self, path: Path, trim_metrics: bool = True) -> int:
        """Load the checkpoint in ``path``; return its step. ``trim_metrics`` drops the metrics
        lines logged after it (the process that owns the folder does that)."""
        ckpt = load_checkpoint(path)
        with restoring(path):
            self._load(ckpt)
        if trim_metrics:
            self.folder.trim_metrics(ckpt.step)
        return ckpt.step

    def _load(self, ckpt: Checkpoint) -> None:
        self.generator.load_state_dict(ckpt.generator)
        self.discriminator.load_state_dict(ckpt.discriminator)
        if self.ema is not None:  # a run started without EMA starts its average here
            self.ema.load_state_dict(ckpt.generator_ema if ckpt.generator_ema is not None else ckpt.generator)
        if "rng" in ckpt.state:
            self.state.load_state_dict(ckpt.state)
            return
        # the first format (state.pt): the optimisers and two RNGs only; the epoch restarts
        self.state.load_parts(ckpt.state, ("opt_g", "opt_d"))
        torch.set_rng_state(ckpt.state["torch_rng"])
        self.data_rng.set_state(ckpt.state["data_rng"])
