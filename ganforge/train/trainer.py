"""The training loop. It reads top to bottom: D steps, G step, log, sample, checkpoint."""

from __future__ import annotations

import json
import sys
import math
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import torch

from ganforge.run.checkpoint import (
    Checkpoint,
    checkpoint_at,
    checkpoint_step,
    latest_checkpoint,
    load_checkpoint,
    restoring,
    save_checkpoint,
    write_text_atomic,
)
from ganforge.config import RunConfig
from ganforge.errors import ConfigError, DivergenceError, PeerLostError, UsageError
from ganforge.faults import crash_point
from ganforge.plugins import HookError, call_hook
from ganforge.resources import require_memory
from ganforge.train import artifacts
from ganforge.train.build import (
    build_dataset,
    build_loss,
    build_models,
    build_optimizer,
    resolve_config,
)
from ganforge.train.batch_stream import ResumableBatches
from ganforge.runtime.device import global_rng_state, seed_everything, set_global_rng_state
from ganforge.train.ema import EmaGenerator, calibration_size
from ganforge.train.schedules import LrSchedule
from ganforge.train.provenance import provenance
from ganforge.run.lock import RunLock
from ganforge.runtime.seam import Seam
from ganforge.train.conditioning import check_labels, conditional_classes
from ganforge.train.step import GanStep
from ganforge.runtime.stop_requests import StopRequests
from ganforge.run.folder import RunFolder
from ganforge.runtime.threads import ThreadTuner

N_FIXED_IMAGES = 64
N_FIXED_POINTS = 2500
MAX_SKIPPED_IN_A_ROW = 100  # --on-nan skip: past this many bad steps in a row the run has diverged


@dataclass
class RunPaths:
    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.json"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def samples(self) -> Path:
        return self.root / "samples"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def losses_plot(self) -> Path:
        return self.root / "losses.png"

    @property
    def real_preview(self) -> Path:
        """Real training images drawn like the pictures (image data only)."""
        return self.samples / "real.png"


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


def default_out(config: RunConfig) -> str:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return str(Path("runs") / f"{config.data}-{config.gen}-{config.loss}-{stamp}")


class Trainer:
    """Train a GAN described by a :class:`RunConfig`: ``Trainer(config).fit()``.

    ``registry`` and ``plugin_manager`` default to the installed plugins; tests pass their own.
    """

    def __init__(self, config: RunConfig | dict[str, Any], *, registry=None, plugin_manager=None) -> None:  # type: ignore[no-untyped-def]
        if isinstance(config, dict):
            config = RunConfig.from_dict(config)
        if registry is None or plugin_manager is None:
            from ganforge.plugins import build_registry, get_plugin_manager

            plugin_manager = plugin_manager or get_plugin_manager()
            registry = registry or build_registry(plugin_manager)
        self.pm, self.registry = plugin_manager, registry
        self.config = resolve_config(config, registry)
        if self.config.out is None:
            self.config.out = default_out(self.config)
        self.paths = RunPaths(Path(self.config.out))
        self.run_lock = RunLock(self.paths.root)
        self.seam = Seam(self.config.device, self.config.precision)
        self.scalers = {"d": self.seam.grad_scaler(), "g": self.seam.grad_scaler()}  # fp16 only
        self.seam.check_batch_size(self.config.batch_size)  # type: ignore[arg-type]
        self.device = self.seam.device
        self.data_rng = seed_everything(self.config.seed)
        self.data = build_dataset(self.config, registry)
        self.info = self.data.info
        gen, disc = build_models(self.config, registry, self.info)
        self.classes = conditional_classes(gen, disc)
        if self.classes:
            check_labels(self.data.labels, self.classes, self.config.data)
            stream = self.data.labelled_batches(self.config.batch_size, self.data_rng)
        else:
            stream = self.data.batches(self.config.batch_size, self.data_rng)
        self.batches = ResumableBatches(stream, self.data_rng)
        c = self.config  # a batch's samples and noise, each held a few times over by the step
        require_memory(16 * c.batch_size * (math.prod(self.info.sample_shape) + c.z_dim),  # type: ignore[operator]
                       f"--batch-size {c.batch_size}", "use a smaller --batch-size")
        self.generator, self.discriminator = self.seam.prepare_model(gen), self.seam.prepare_model(disc)
        self.loss = build_loss(self.config, registry)
        c = self.config
        self.opt_g = build_optimizer(c.optimizer, list(self.generator.parameters()), c.lr_g, c.betas)  # type: ignore[arg-type]
        self.opt_d = build_optimizer(c.optimizer, list(self.discriminator.parameters()), c.lr_d, c.betas)  # type: ignore[arg-type]
        self.step = 0
        self.start_step = 0
        n_fixed = N_FIXED_IMAGES if self.info.modality == "image" else N_FIXED_POINTS
        self.fixed_noise = torch.randn(n_fixed, c.z_dim, generator=self._fixed_rng()).to(self.device)
        self.real_preview = self.data.real_samples(n_fixed, self._fixed_rng(), split="train")
        self.threads = ThreadTuner(requested=c.threads)
        self.ema = (EmaGenerator(self.generator, c.ema, c.z_dim, calibration_size(self.info.sample_shape),
                                 rampup=c.ema_rampup)
                    if c.ema else None)
        self.lr_schedule = LrSchedule(c.lr_schedule, c.steps, c.warmup,  # type: ignore[arg-type]
                                      {self.opt_g: c.lr_g, self.opt_d: c.lr_d})
        self.logs: dict[str, Any] = {}
        self._window: dict[str, torch.Tensor] = {}
        self._window_steps = 0
        self.stop_requests: StopRequests | None = None
        self._stop_agreed = False
        self.skipped_updates = 0  # --on-nan skip: steps with an update skipped, this session
        self._skipped_in_a_row = 0
        self._window_skipped = 0
        self._window_scaler_skips = 0  # --precision fp16: updates the gradient scalers skipped
        self._mid_step = False
        self._real_saved = False

    def _fixed_rng(self) -> torch.Generator:
        rng = torch.Generator()
        rng.manual_seed(self.config.seed + 12345)
        return rng

    # -- public API ---------------------------------------------------------------------------

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
                self.save_checkpoint()
                self.save_samples()
                if self.seam.is_main_process and self.paths.metrics.exists():
                    artifacts.plot_losses(self.paths.metrics, self.paths.losses_plot)
            except KeyboardInterrupt:
                if not self._mid_step:  # never save half a step; the last checkpoint stays good
                    self.save_checkpoint()
                raise
            except PeerLostError as exc:  # nothing to save: this step never finished anywhere
                where = (self._last_good() if self.seam.is_main_process
                         else f"rank 0 keeps the checkpoints in its {self.paths.root}")
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
        return self.paths.root

    def start(self) -> None:
        """Prepare the run folder (restoring a checkpoint on resume), set the thread count and
        call the plugins' ``ganforge_on_train_start``. :meth:`fit` calls it; so do benchmarks that
        drive :meth:`train` themselves."""
        main = self.seam.is_main_process
        try:
            try:
                if main:  # only rank 0 owns the run folder; the others only read a checkpoint
                    self.run_lock.acquire()
                    self._prepare_run_dir()
                else:
                    self._restore_read_only()
            except BaseException:
                self.seam.agree(True)  # tell the other processes, which would wait for us forever
                raise
            if self.seam.agree(False):
                raise UsageError("another process of this torchrun job failed to start (its message is above)")
            self.threads.start()
            c = self.config
            self.step_fn = GanStep(self.generator, self.discriminator, self.loss, self.opt_g, self.opt_d,
                                   self.batches, batch_size=c.batch_size,
                                   z_dim=c.z_dim, n_critic=c.n_critic, device=self.device,
                                   skip_nonfinite=c.on_nan == "skip", seam=self.seam, scalers=self.scalers,
                                   classes=self.classes)
            self.start_step = self.step  # > 0 after --resume; rates count this session's steps only
            self._t0 = self._window_t0 = time.perf_counter()
            self._hook("ganforge_on_train_start", trainer=self)
        except BaseException:  # fit() only stops what started: undo here
            self.threads.restore()
            self.run_lock.release()
            self.seam.close(clean=False)
            raise

    def stop(self) -> None:
        """Call the plugins' ``ganforge_on_train_end`` and give torch its thread count back."""
        try:
            self._hook("ganforge_on_train_end", trainer=self)
        finally:
            self.threads.restore()
            self.run_lock.release()
            # an agreed stop is clean too: every process is past the same step
            self.seam.close(clean=sys.exc_info()[0] is None or self._stop_agreed)

    def _hook(self, name: str, **kwargs: Any) -> None:
        """Plugins' lifecycle hooks run in the process that writes the run folder only."""
        if self.seam.is_main_process:
            call_hook(self.pm, name, **kwargs)

    def noise(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.config.z_dim, device=self.device)

    # -- the loop -------------------------------------------------------------------------------

    def train(self, n: int) -> None:
        """Run ``n`` more steps (after :meth:`start`): each is a :class:`GanStep` followed by the
        bookkeeping: losses summed on the device and written every ``log_every`` steps, the step
        hook, and the periodic pictures, checkpoints and evaluations."""
        c = self.config
        for _ in range(n):
            requested = self.stop_requests is not None and self.stop_requests.requested
            if self.seam.agree(requested):  # every process stops after the same step
                self._stop_agreed = True
                return  # a signal arrived: stop between steps (fit() saves the checkpoint)
            self._mid_step = True
            self.lr_schedule.apply(self.step)
            result = self.step_fn()
            d_loss, g_loss = result.d_loss, result.g_loss
            self.step += 1
            if self.ema is not None:
                self.ema.update(self.generator, self.step)
            self._window_scaler_skips += result.scaler_skips
            if result.skipped:  # --on-nan skip: count it, keep its losses out of the averages
                self._skipped_in_a_row += 1
                self._window_skipped += 1
                self.skipped_updates += 1
                if self._skipped_in_a_row >= MAX_SKIPPED_IN_A_ROW:
                    self._diverged(f"{self._skipped_in_a_row} steps in a row had a non-finite loss or gradient "
                                   f"(up to step {self.step})")
            else:
                # Accumulate on the device; synchronise only when a line is written.
                self._skipped_in_a_row = 0
                self._window["d_loss"] = self._window.get("d_loss", 0) + d_loss
                self._window["g_loss"] = self._window.get("g_loss", 0) + g_loss
                self._window_steps += 1
            self._mid_step = False
            crash_point("step.done")
            self.threads.step_done()
            last = self.step == c.steps
            logged = bool((c.log_every and self.step % c.log_every == 0) or last)
            if logged:
                self._log_window()
            logs = self.logs if logged else StepValues(step=self.step, d_loss=d_loss, g_loss=g_loss)
            self._hook("ganforge_on_step_end", trainer=self, step=self.step, logs=logs, logged=logged)
            if c.sample_every and self.step % c.sample_every == 0 and not last:
                self.save_samples()
            if c.ckpt_every and self.step % c.ckpt_every == 0 and not last:
                self.save_checkpoint()
            if c.eval_every and (self.step % c.eval_every == 0 or last) and self.seam.is_main_process:
                results = self.evaluate()
                self._append_metrics({"step": self.step, **results})
                self._hook("ganforge_on_eval", trainer=self, step=self.step, results=results)

    def _log_window(self) -> None:
        """Average the losses over the steps since the last line and append it to metrics.jsonl."""
        now = time.perf_counter()
        if self.seam.distributed and self._window:  # each process's losses are of its slice: average
            keys = sorted(self._window)
            mean = self.seam.all_reduce_mean(torch.stack([torch.as_tensor(self._window[k]) for k in keys]))
            self._window = dict(zip(keys, mean))
        logs: dict[str, Any] = {k: float(v) / self._window_steps for k, v in self._window.items()
                                if self._window_steps}
        if not all(math.isfinite(v) for v in logs.values()):
            self._diverged(f"the losses became non-finite ({', '.join(f'{k} {v}' for k, v in logs.items())}) "
                           f"between steps {self.step - self._window_steps + 1} and {self.step}")
        logs.update(step=self.step, time=round(now - self._t0, 3),
                    steps_per_s=round((self._window_steps + self._window_skipped) / max(now - self._window_t0, 1e-9), 2),
                    threads=self.threads.threads)
        if self._window_skipped:
            logs["skipped"] = self._window_skipped
        if self.seam.precision == "fp16":
            logs["fp16_overflow_skips"] = self._window_scaler_skips
            logs["fp16_scale"] = self.scalers["g"].get_scale()
        if self.seam.distributed:
            logs["processes"] = self.seam.world_size
        self._append_metrics(logs)
        self.logs = logs
        self._window, self._window_steps, self._window_skipped, self._window_t0 = {}, 0, 0, now
        self._window_scaler_skips = 0

    # -- run folder -----------------------------------------------------------------------------

    def _prepare_run_dir(self) -> None:
        root = self.paths.root
        if root.exists() and not root.is_dir():
            raise ConfigError(f"--out {root} is a file, not a folder; choose another --out")
        existing = latest_checkpoint(root) if root.exists() else None
        if self.config.from_step is not None and existing is not None:
            existing = self._rewind_to(self.config.from_step)
        if existing is not None and not self.config.resume:
            raise ConfigError(f"{root} already holds a run (checkpoint {existing.name}); pass "
                              f"--resume to continue it or choose another --out")
        orphans = sorted(self.paths.checkpoints.glob("step_*")) if existing is None else []
        if orphans:  # checkpoints without a `latest` pointer: never restart over them silently
            raise ConfigError(
                f"{self.paths.checkpoints} holds checkpoints ({orphans[-1].name}, ...) but no `latest` "
                f"pointer naming one; write the folder name to continue from into "
                f"{self.paths.checkpoints / 'latest'} and --resume, or choose another --out")
        if existing is not None:
            self._restore(existing)
        elif root.exists() and self.paths.metrics.exists():
            self.paths.metrics.unlink()  # a previous run died before its first checkpoint
        self.paths.samples.mkdir(parents=True, exist_ok=True)
        record = {"config": self.config.to_dict(), "data_info": {
            "sample_shape": list(self.info.sample_shape),
            "value_range": list(self.info.value_range) if self.info.value_range else None,
            "modality": self.info.modality}, "versions": provenance(self.registry, self.config)}
        if existing is not None:
            record["resumes"] = self._resume_history(record["config"])
        write_text_atomic(self.paths.config, json.dumps(record, indent=2) + "\n")

    def _rewind_to(self, step: int) -> Path:
        """``--from-step``: make the checkpoint of ``step`` the latest; checkpoints of later steps
        belong to the abandoned continuation and move into ``checkpoints/after_step_N-TIME/``
        (never deleted), so pruning and ``latest`` only see this run's line."""
        target = checkpoint_at(self.paths.root, step)
        later = [p for p in self.paths.checkpoints.glob("step_*") if p.is_dir() and checkpoint_step(p) > step]
        if later:
            aside = self.paths.checkpoints / f"after_step_{step}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
            aside.mkdir()
            for path in later:
                path.rename(aside / path.name)
        write_text_atomic(self.paths.checkpoints / "latest", target.name + "\n")
        return target

    def _resume_history(self, config: dict[str, Any]) -> list[dict[str, Any]]:
        """The run's earlier resumes plus this one: the step it continued from and each setting
        that this resume changed (``--steps``, rates, intervals), old and new value."""
        try:
            before = json.loads(self.paths.config.read_text())
        except (OSError, ValueError):
            before = {}
        history = before.get("resumes", []) if isinstance(before, dict) else []
        old = before.get("config", {}) if isinstance(before, dict) else {}
        config = json.loads(json.dumps(config))  # tuples as the lists config.json holds
        if isinstance(old, dict) and old:  # a key an older version did not write: it ran the default
            old = {**json.loads(json.dumps(RunConfig().to_dict())), **old}
        changed = {k: [old.get(k), v] for k, v in config.items()
                   if k not in ("resume",) and k in old and old.get(k) != v}
        return [*history, {"step": self.step, "changed": changed}]

    def _restore(self, path: Path, trim_metrics: bool = True) -> None:
        ckpt = load_checkpoint(path)
        with restoring(path):
            self._load_training_state(ckpt)
        self.step = ckpt.step
        if trim_metrics and self.paths.metrics.exists():  # drop lines logged after the checkpoint
            RunFolder(self.paths.root).trim_metrics(self.step)

    def _load_training_state(self, ckpt: Checkpoint) -> None:
        self.generator.load_state_dict(ckpt.generator)
        self.discriminator.load_state_dict(ckpt.discriminator)
        state = ckpt.state
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        if self.ema is not None:  # a run started without EMA starts its average here
            self.ema.load_state_dict(ckpt.generator_ema if ckpt.generator_ema is not None else ckpt.generator)
        if "rng" in state:
            set_global_rng_state(state["rng"])
            self.batches.load_state_dict(state["batches"])
            self._window = {k: v.to(self.device) for k, v in state["window"].items()}
            self._window_steps = int(state["window_steps"])
            self._window_skipped = int(state.get("window_skipped", 0))
            self._window_scaler_skips = int(state.get("window_scaler_skips", 0))
            for name, scaler in self.scalers.items():  # fp16: the loss scale and its growth counter
                if name in state.get("scalers", {}):
                    scaler.load_state_dict(state["scalers"][name])
        else:  # an older checkpoint (state.pt): two RNGs only, the epoch restarts
            torch.set_rng_state(state["torch_rng"])
            self.data_rng.set_state(state["data_rng"])

    def _restore_read_only(self) -> None:
        """A process other than rank 0 under torchrun: load the checkpoint rank 0 resumes from
        (with ``--from-step``, that step's own folder: rank 0 may be moving ``latest`` meanwhile)."""
        if not (self.config.resume and self.paths.root.is_dir()):
            return
        c = self.config
        path = checkpoint_at(self.paths.root, c.from_step) if c.from_step is not None else latest_checkpoint(self.paths.root)
        if path is not None:
            self._restore(path, trim_metrics=False)

    def _append_metrics(self, row: dict[str, Any]) -> None:
        if not self.seam.is_main_process:
            return
        with self.paths.metrics.open("a") as fh:
            fh.write(json.dumps(row) + "\n")

    def _last_good(self) -> str:
        last = latest_checkpoint(self.paths.root)
        return f"the last good checkpoint is {last}" if last else "no checkpoint was written yet"

    def _diverged(self, what: str) -> None:
        """Stop without writing anything non-finite; the last good checkpoint stays ``latest``."""
        raise DivergenceError(f"training diverged: {what}; {self._last_good()}. Lower the learning rates "
                              f"(--lr-g/--lr-d), or add a penalty such as --set loss.r1=1, then start "
                              f"again or --resume")

    def save_checkpoint(self) -> Path | None:
        """Save the whole training state (rank 0 only; ``None`` elsewhere)."""
        for name, module in (("generator", self.generator), ("discriminator", self.discriminator)):
            if not all(bool(torch.isfinite(p).all()) for p in module.parameters()):
                self._diverged(f"the {name}'s weights are non-finite at step {self.step}")
        if not self.seam.is_main_process:
            return None
        # Everything the next step depends on, so that N steps + resume N == 2N steps, bit for bit.
        state = {"opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(),
                 "rng": global_rng_state(), "batches": self.batches.state_dict(),
                 "window": {k: torch.as_tensor(v) for k, v in self._window.items()},
                 "window_steps": self._window_steps, "window_skipped": self._window_skipped,
                 "window_scaler_skips": self._window_scaler_skips,
                 "scalers": {k: v.state_dict() for k, v in self.scalers.items() if v.is_enabled()}}
        path = save_checkpoint(self.paths.checkpoints, self.step, self.generator, self.discriminator, state,
                               keep=self.config.keep,
                               generator_ema=self.ema.current() if self.ema is not None else None)
        self._hook("ganforge_on_checkpoint_saved", trainer=self, step=self.step, path=path)
        return path

    def evaluate(self) -> dict[str, float]:
        """The configured metrics (``eval_metrics``, default all that apply) on the current G."""
        from ganforge.metrics.evaluate import evaluate

        c = self.config
        result = evaluate(self.sampler, c.z_dim, self.data, self.registry, c.eval_metrics or None,
                          c.eval_samples, seed=c.seed, step=self.step, options=c.section("metric"), floor=False)
        return {f"eval/{k}": v for k, v in result.values.items()}

    @property
    def sampler(self) -> torch.nn.Module:
        """The generator that pictures and evaluations use: the weight average when kept."""
        return self.ema.current() if self.ema is not None else self.generator

    @torch.no_grad()
    def save_samples(self) -> Path | None:
        """Draw the fixed noise through the sampler and save the picture for this step (rank 0);
        for images, the session's first picture also draws ``samples/real.png``, the real preview."""
        if not self.seam.is_main_process:
            return None
        sampler = self.sampler
        was_training = sampler.training
        sampler.eval()
        fake = sampler(self.fixed_noise)
        sampler.train(was_training)
        path = self.paths.samples / f"step_{self.step:07d}.png"
        artifacts.save_samples(fake, self.info, path, self.real_preview, title=f"step {self.step}")
        if self.info.modality == "image" and not self._real_saved:  # the yardstick for the eye
            artifacts.save_image_grid(self.real_preview, self.info, self.paths.real_preview)
            self._real_saved = True  # once a session: a folder reused or a write cut short is redrawn
        return path

    @property
    def last_samples(self) -> Path | None:
        found = sorted(self.paths.samples.glob("step_*.png"))
        return found[-1] if found else None
