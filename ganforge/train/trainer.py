"""The training loop: step, window, log, maybe sample, maybe checkpoint, maybe evaluate.

What a step does is :class:`ganforge.train.step.GanStep`; where the run's files go is
:class:`ganforge.run.folder.RunFolder`; device, precision and processes are the
:class:`ganforge.runtime.seam.Seam`'s. This module wires them together and keeps the order.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import Any

import pluggy
import torch

from ganforge.config import ResolvedConfig, RunConfig, merge_settings
from ganforge.errors import PeerLostError, UsageError
from ganforge.faults import crash_point
from ganforge.plugins import HookError, call_hook
from ganforge.registry import Registry
from ganforge.resolve import given_settings, resolve_settings
from ganforge.resources import require_memory
from ganforge.run.folder import RunFolder, RunRecord
from ganforge.run.lock import RunLock
from ganforge.runtime.device import global_rng_state, seed_everything, set_global_rng_state
from ganforge.runtime.seam import Seam
from ganforge.runtime.stop_requests import StopRequests
from ganforge.runtime.threads import ThreadTuner
from ganforge.train import artifacts
from ganforge.train.augment import build_augment
from ganforge.train.batch_stream import ResumableBatches
from ganforge.train.build import build_dataset, build_loss, build_models, build_optimizer
from ganforge.train.checkpointing import Checkpointer, diverged
from ganforge.train.conditioning import conditional_classes, training_stream
from ganforge.train.ema import EmaGenerator, calibration_size
from ganforge.train.loss_window import LossWindow
from ganforge.train.pictures import Pictures
from ganforge.train.provenance import provenance
from ganforge.train.run_state import PluginStates, StateOf, TrainingState
from ganforge.train.run_view import Run, StepValues
from ganforge.train.schedules import LrSchedule
from ganforge.train.step import GanStep, StepResult

MAX_SKIPPED_IN_A_ROW = 100  # --on-nan skip: past this many bad steps in a row the run has diverged


class Trainer:
    """Train the GAN a :class:`RunConfig` describes, from the components in ``registry``, calling
    the lifecycle hooks of ``plugin_manager``. ``Trainer.from_installed(...)`` builds both from
    the installed plugins."""

    def __init__(self, config: RunConfig | ResolvedConfig | dict[str, Any], *, registry: Registry,
                 plugin_manager: pluggy.PluginManager) -> None:
        self.pm, self.registry = plugin_manager, registry
        self.config = c = resolve_settings(config, registry)
        self.folder = RunFolder(c.out)
        self.run_lock = RunLock(self.folder.root)
        self.seam = Seam(c.device, c.precision)
        self.scalers = {"d": self.seam.grad_scaler(), "g": self.seam.grad_scaler()}  # fp16 only
        self.seam.check_batch_size(c.batch_size)
        self.device = self.seam.device
        self.data_rng = seed_everything(c.seed)
        self.data = build_dataset(c, registry)
        self.info = self.data.info
        gen, disc = build_models(c, registry, self.info)
        self.classes = conditional_classes(gen, disc)
        self.batches = ResumableBatches(training_stream(self.data, self.classes, c.batch_size, self.data_rng, c.data),
                                        self.data_rng)
        # a batch's samples and noise, each held a few times over by the step
        require_memory(16 * c.batch_size * (math.prod(self.info.sample_shape) + c.z_dim),
                       f"--batch-size {c.batch_size}", "use a smaller --batch-size")
        self.generator, self.discriminator = self.seam.prepare_model(gen), self.seam.prepare_model(disc)
        self.loss = build_loss(c, registry)
        self.augment = build_augment(c.augment, self.info, c.seed, p=c.augment_p, target=c.augment_target,
                                     ramp_images=c.augment_ramp, data_name=c.data, processes=self.seam.world_size,
                                     shard=self.seam.shard, reduce=self.seam.all_reduce_mean)
        self.opt_g = build_optimizer(c.optimizer, list(self.generator.parameters()), c.lr_g, c.betas)
        self.opt_d = build_optimizer(c.optimizer, list(self.discriminator.parameters()), c.lr_d, c.betas)
        self.lr_schedule = LrSchedule(c.lr_schedule, c.steps, c.warmup, {self.opt_g: c.lr_g, self.opt_d: c.lr_d})
        self.ema = (EmaGenerator(self.generator, c.ema, c.z_dim, calibration_size(self.info.sample_shape),
                                 rampup=c.ema_rampup) if c.ema else None)
        self.step = self.start_step = 0
        self.pictures = Pictures(self.folder, self.data, c.z_dim, c.seed, self.device)
        self.fixed_noise, self.real_preview = self.pictures.noise, self.pictures.real
        self.threads = ThreadTuner(requested=c.threads, invariant_convolutions=c.thread_invariant)
        self.window = LossWindow(self.device)
        self.logs: dict[str, Any] = {}
        self.run = Run(self)
        self.checkpoints = Checkpointer(self.folder, self.generator, self.discriminator, self.ema,
                                        self._training_state(), self.data_rng, c.keep)
        self.stop_requests: StopRequests | None = None
        self._stop_agreed = self._mid_step = False

    @classmethod
    def from_installed(cls, config: RunConfig | dict[str, Any] | None = None, /, **settings: Any) -> Trainer:
        """The one-line entry for notebooks and scripts, with the installed plugins' components:
        ``Trainer.from_installed(recipe="ring8", steps=3000, out="runs/ring8").fit()``. Keyword
        settings override ``config``'s; a ``recipe`` is the base they override."""
        from ganforge.plugins import load_registry

        pm, registry = load_registry()
        given = merge_settings(given_settings(config) if config is not None else {}, settings)
        return cls(given, registry=registry, plugin_manager=pm)

    def _training_state(self) -> TrainingState:
        """Everything the next step depends on besides the weights, each part from its owner."""
        state = TrainingState()
        state.add("opt_g", self.opt_g)
        state.add("opt_d", self.opt_d)
        state.add("rng", StateOf(global_rng_state, set_global_rng_state))
        state.add("batches", self.batches)
        state.add("loss_window", self.window)
        state.add("scalers", StateOf(self._scaler_states, self._load_scaler_states), optional=True)
        state.add("plugins", PluginStates(self.pm), optional=True)
        if self.augment is not None:  # p and the augmentation's generator
            state.add("augment", self.augment, optional=True)
        return state

    def _scaler_states(self) -> dict[str, Any]:
        """fp16: each gradient scaler's loss scale and growth counter."""
        return {k: v.state_dict() for k, v in self.scalers.items() if v.is_enabled()}

    def _load_scaler_states(self, saved: dict[str, Any]) -> None:
        for name, scaler in self.scalers.items():
            if name in saved:
                scaler.load_state_dict(saved[name])

    # -- a session --------------------------------------------------------------------------------

    def fit(self) -> Path:
        """Run the configured number of steps; return the run folder.

        Ctrl-C, SIGTERM or SIGHUP stop the run after the step in progress, with a checkpoint of
        whole steps (see :mod:`ganforge.runtime.stop_requests`), and then raise KeyboardInterrupt."""
        with StopRequests() as self.stop_requests:
            self.start()
            try:
                self.train(self.config.steps - self.step)
                if self._stop_agreed:
                    raise KeyboardInterrupt
                self.save_samples()  # before the checkpoint, so plugins' state covers the last pictures
                self.save_checkpoint()
                if self.seam.is_main_process and self.folder.metrics.exists():
                    artifacts.plot_losses(self.folder.metrics, self.folder.losses_plot)
            except KeyboardInterrupt:
                if not self._mid_step:  # never save half a step; the last checkpoint stays good
                    self.save_checkpoint()
                raise
            except PeerLostError as exc:  # nothing to save: this step never finished anywhere
                where = (self.folder.last_good() if self.seam.is_main_process
                         else f"rank 0 keeps the checkpoints in its {self.folder.root}")
                raise PeerLostError(f"{exc}. Stopped; {where} (run the same torchrun command with --resume "
                                    f"to continue)") from exc
            except HookError as exc:  # a plugin failed between steps: keep the work, then report
                if self._mid_step or self.step == self.start_step:
                    raise
                saved = self.save_checkpoint()
                raise HookError(f"{exc}; the run's progress is saved in {saved} (--resume continues it)",
                                exc.plugin) from exc
            finally:
                self.stop()
        return self.folder.root

    def start(self) -> None:
        """Open the run folder (restoring a checkpoint on resume), set the thread count and call
        ``ganforge_on_train_start``. :meth:`fit` calls it; so do benchmarks that drive
        :meth:`train` themselves."""
        c = self.config
        try:
            try:
                if self.seam.is_main_process:  # only rank 0 owns the run folder; the others only read
                    self.run_lock.acquire()
                    self._open_run_folder()
                else:
                    self.step = self.checkpoints.resume_read_only(c.resume, c.from_step) or 0
            except BaseException:
                self.seam.agree(True)  # tell the other processes, which would wait for us forever
                raise
            if self.seam.agree(False):
                raise UsageError("another process of this torchrun job failed to start (its message is above)")
            self.threads.start()
            self.step_fn = GanStep(self.generator, self.discriminator, self.loss, self.opt_g, self.opt_d,
                                   self.batches, batch_size=c.batch_size, z_dim=c.z_dim, n_critic=c.n_critic,
                                   device=self.device, skip_nonfinite=c.on_nan == "skip", seam=self.seam,
                                   scalers=self.scalers, classes=self.classes, augment=self.augment)
            self.start_step = self.step  # > 0 after --resume; rates count this session's steps only
            self._t0 = self.window.started = time.perf_counter()
            self._hook("ganforge_on_train_start", run=self.run)
        except BaseException:  # fit() only stops what started: undo here
            self.threads.restore()
            self.run_lock.release()
            self.seam.close(clean=False)
            raise

    def stop(self) -> None:
        """Call ``ganforge_on_train_end`` and give torch its thread count back."""
        try:
            self._hook("ganforge_on_train_end", run=self.run)
        finally:
            self.threads.restore()
            self.run_lock.release()
            # an agreed stop is clean too: every process is past the same step
            self.seam.close(clean=sys.exc_info()[0] is None or self._stop_agreed)

    def _hook(self, name: str, **kwargs: Any) -> None:
        """Plugins' lifecycle hooks run in the process that writes the run folder only."""
        if self.seam.is_main_process:
            call_hook(self.pm, name, **kwargs)

    # -- the loop ---------------------------------------------------------------------------------

    def train(self, n: int) -> None:
        """Run ``n`` more steps (after :meth:`start`)."""
        for _ in range(n):
            if self._stop_agreed_on():
                return  # a signal arrived: stop between steps (fit() saves the checkpoint)
            result = self._step()
            logged = self._maybe_log()
            logs = self.logs if logged else StepValues(step=self.step, d_loss=result.d_loss, g_loss=result.g_loss)
            self._hook("ganforge_on_step_end", run=self.run, step=self.step, logs=logs, logged=logged)
            self._maybe_save_samples()
            self._maybe_checkpoint()
            self._maybe_evaluate()

    def _stop_agreed_on(self) -> bool:
        requested = self.stop_requests is not None and self.stop_requests.requested
        self._stop_agreed = self.seam.agree(requested)  # every process stops after the same step
        return self._stop_agreed

    def _step(self) -> StepResult:
        """One GAN step (D then G), the weight average, and the step's place in the loss window."""
        self._mid_step = True
        self.lr_schedule.apply(self.step)
        result = self.step_fn()
        self.step += 1
        if self.ema is not None:
            self.ema.update(self.generator, self.step)
        self.window.add(result)
        if self.window.skipped_in_a_row >= MAX_SKIPPED_IN_A_ROW:
            raise diverged(f"{self.window.skipped_in_a_row} steps in a row had a non-finite loss or gradient "
                           f"(up to step {self.step})", self.folder)
        self._mid_step = False
        crash_point("step.done")
        self.threads.step_done()
        return result

    @property
    def skipped_updates(self) -> int:
        """``--on-nan skip``: steps of this session whose update was skipped."""
        return self.window.skipped_total

    def _last(self) -> bool:
        return self.step == self.config.steps

    def _every(self, interval: int) -> bool:
        """A periodic action is due at this step (never at the last one: fit() does that)."""
        return bool(interval) and self.step % interval == 0 and not self._last()

    def _maybe_log(self) -> bool:
        """Every ``log_every`` steps and at the last: average the window and append its line."""
        every = self.config.log_every
        if not ((every and self.step % every == 0) or self._last()):
            return False
        now, window = time.perf_counter(), self.window
        if self.seam.distributed and window.sums:  # each process's losses are of its slice: average
            keys = sorted(window.sums)
            mean = self.seam.all_reduce_mean(torch.stack([torch.as_tensor(window.sums[k]) for k in keys]))
            window.sums = dict(zip(keys, mean, strict=True))
        logs = window.line(self.step, now - self._t0, now)
        losses = {k: v for k, v in logs.items() if k.endswith("_loss")}
        if not all(math.isfinite(v) for v in losses.values()):
            raise diverged(f"the losses became non-finite ({', '.join(f'{k} {v}' for k, v in losses.items())}) "
                           f"between steps {self.step - window.steps + 1} and {self.step}", self.folder)
        logs["threads"] = self.threads.threads
        if self.augment is not None:
            logs.update(self.augment.logs())
        if window.skipped:
            logs["skipped"] = window.skipped
        if self.seam.precision == "fp16":
            logs["fp16_overflow_skips"] = window.scaler_skips
            logs["fp16_scale"] = self.scalers["g"].get_scale()
        if self.seam.distributed:
            logs["processes"] = self.seam.world_size
        if self.seam.is_main_process:
            self.folder.append_metrics(logs)
        self.logs = logs
        window.reset(now)
        return True

    def _maybe_save_samples(self) -> None:
        if self._every(self.config.sample_every):
            self.save_samples()

    def _maybe_checkpoint(self) -> None:
        if self._every(self.config.ckpt_every):
            self.save_checkpoint()

    def _maybe_evaluate(self) -> None:
        every = self.config.eval_every
        if every and (self.step % every == 0 or self._last()) and self.seam.is_main_process:
            results = self.evaluate()
            self.folder.append_metrics({"step": self.step, **results})
            self._hook("ganforge_on_eval", run=self.run, step=self.step, results=results)

    # -- the run folder ---------------------------------------------------------------------------

    def _open_run_folder(self) -> None:
        """Restore the checkpoint a resume continues from, then record the settings."""
        c, folder = self.config, self.folder
        resumed_at = self.checkpoints.resume(c.resume, c.from_step)
        self.step = resumed_at or 0
        folder.samples.mkdir(parents=True, exist_ok=True)
        resumes = ([] if resumed_at is None else folder.resume_history(c.to_dict(), self.step, RunConfig().to_dict()))
        made_by = {**provenance(self.registry, c), "precision": self.seam.precision}  # "auto" as resolved here
        folder.write_record(RunRecord(c.to_dict(), self.info, made_by, resumes))

    def save_checkpoint(self) -> Path | None:
        """Save the weights and the training state (rank 0 only; ``None`` elsewhere)."""
        self.checkpoints.check_finite(self.step)
        if not self.seam.is_main_process:
            return None
        path = self.checkpoints.save(self.step)
        self._hook("ganforge_on_checkpoint_saved", run=self.run, step=self.step, path=path)
        return path

    # -- what the generator makes -----------------------------------------------------------------

    @property
    def sampler(self) -> torch.nn.Module:
        """The generator that pictures and evaluations use: the weight average when kept."""
        return self.ema.current() if self.ema is not None else self.generator

    def evaluate(self) -> dict[str, float]:
        """The configured metrics (``eval_metrics``, default all that apply) on the current G."""
        from ganforge.metrics.evaluate import evaluate

        c = self.config
        result = evaluate(self.sampler, c.z_dim, self.data, self.registry, c.eval_metrics or None,
                          c.eval_samples, seed=c.seed, step=self.step, options=c.section("metric"), floor=False)
        return {f"eval/{k}": v for k, v in result.values.items()}

    def save_samples(self) -> Path | None:
        """This step's picture, handed to ``ganforge_on_samples`` too (rank 0 only)."""
        if not self.seam.is_main_process:
            return None
        path, fake = self.pictures.save(self.sampler, self.step)
        self._hook("ganforge_on_samples", run=self.run, step=self.step, samples=fake)
        return path
