"""``2N`` steps and ``N + --resume N`` give bitwise identical weights and losses, on every built-in
data set, after a periodic checkpoint and after SIGINT/SIGTERM/SIGHUP at any point of a step."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
import torch

from ganforge import RunConfig
from ganforge.run.checkpoint import latest_checkpoint, load_checkpoint
from ganforge.run.folder import read_metrics

pytestmark = pytest.mark.slow

DATA = ["ring8", "grid25", "mnist", "digits", "digits+classes"]  # +classes: class-conditional training


def config(out, data: str, steps: int, **extra) -> RunConfig:
    """A small run that still uses every piece with state: dropout and the minibatch feature in D,
    BatchNorm in G, the EMA, Adam, an epoch boundary on the image data (digits: 1,437 samples)."""
    options = {"gen": {"hidden": (16, 16), "norm": "batch"}, "disc": {"hidden": (16,)}}
    data, conditional, _ = data.partition("+classes")
    if conditional:
        options["gen"]["classes"] = options["disc"]["classes"] = 10
    settings = dict(batch_size=32, z_dim=8, threads=1, log_every=7, sample_every=0, ckpt_every=0, seed=3,
                    ema=0.9, options=options)
    return RunConfig(data=data, steps=steps, out=str(out), **{**settings, **extra})


def final_state(out) -> dict[str, torch.Tensor]:
    ckpt = load_checkpoint(latest_checkpoint(out))
    assert ckpt.generator_ema is not None
    return {**{f"G.{k}": v for k, v in ckpt.generator.items()}, **{f"D.{k}": v for k, v in ckpt.discriminator.items()},
            **{f"EMA.{k}": v for k, v in ckpt.generator_ema.items()}}


def losses(out) -> list[tuple[int, float, float]]:
    return [(r["step"], r["d_loss"], r["g_loss"]) for r in read_metrics(out / "metrics.jsonl") if "d_loss" in r]


def assert_identical(a, b) -> None:
    sa, sb = final_state(a), final_state(b)
    assert sa.keys() == sb.keys()
    different = [k for k in sa if not torch.equal(sa[k], sb[k])]
    assert not different, f"resumed run differs in {different[:5]}"
    assert losses(a) == losses(b)


class Crash(BaseException):
    """Stands for the process dying: nothing after it is saved."""


@pytest.mark.parametrize("data", DATA)
def test_resume_after_a_checkpoint_is_bit_identical(data, tmp_path, make_trainer, plugin_manager):
    """A run that dies after its periodic checkpoint at step 10 (mid log window, mid epoch) and
    is resumed ends exactly where the run that never died ends."""
    from ganforge import hookimpl

    steps = 60 if data.startswith("digits") else 24  # digits: 44 batches an epoch, so the run crosses an epoch
    make_trainer(config(tmp_path / "straight", data, steps)).fit()

    class DieAt13:
        @hookimpl
        def ganforge_on_step_end(self, run, step, logs):
            if step == 13:
                raise Crash

    dying = DieAt13()
    plugin_manager.register(dying)
    with pytest.raises(Crash):
        make_trainer(config(tmp_path / "cut", data, steps, ckpt_every=10)).fit()
    plugin_manager.unregister(dying)
    assert load_checkpoint(latest_checkpoint(tmp_path / "cut")).step == 10
    make_trainer(config(tmp_path / "cut", data, steps, ckpt_every=10, resume=True)).fit()
    assert_identical(tmp_path / "straight", tmp_path / "cut")


@pytest.mark.parametrize("where", ["d_step", "g_step", "between"])
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_a_signal_anywhere_in_a_step_saves_whole_steps(sig, where, tmp_path, make_trainer, plugin_manager):
    """The signal is raised inside D's or G's optimiser step, or between steps; the run stops
    after that step with a checkpoint, and resuming it reproduces the uninterrupted run."""
    steps, at = 20, 9
    make_trainer(config(tmp_path / "straight", "digits", steps)).fit()

    trainer = make_trainer(config(tmp_path / "cut", "digits", steps))
    optimizer = {"d_step": trainer.opt_d, "g_step": trainer.opt_g}.get(where)
    if optimizer is not None:
        original = optimizer.step

        def step_with_signal(*args, **kwargs):
            if trainer.step == at:
                os.kill(os.getpid(), sig)
            return original(*args, **kwargs)

        optimizer.step = step_with_signal  # type: ignore[method-assign]
    else:
        from ganforge import hookimpl

        class SignalAfterStep:
            @hookimpl
            def ganforge_on_step_end(self, run, step, logs):
                if step == at + 1:
                    os.kill(os.getpid(), sig)

        plugin = SignalAfterStep()
        plugin_manager.register(plugin)
    with pytest.raises(KeyboardInterrupt):
        trainer.fit()
    assert load_checkpoint(latest_checkpoint(tmp_path / "cut")).step == at + 1
    if where == "between":
        plugin_manager.unregister(plugin)
    make_trainer(config(tmp_path / "cut", "digits", steps, resume=True)).fit()
    assert_identical(tmp_path / "straight", tmp_path / "cut")


def test_signal_handlers_are_given_back_after_training(tmp_path, make_trainer):
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    make_trainer(config(tmp_path / "run", "ring8", 3)).fit()
    assert {s: signal.getsignal(s) for s in before} == before


def test_a_plugin_data_stream_without_state_is_replayed(tmp_path, make_trainer, registry):
    """A third-party data set whose batches come from a plain generator function resumes exactly
    too: the trainer replays the stream up to where the run had got."""
    from ganforge.data.base import DataInfo, GanDataset

    class Plain(GanDataset):
        info = DataInfo((2,), None, "points")

        def batches(self, batch_size, generator):
            while True:
                yield torch.randn(batch_size, 2, generator=generator) * 0.1 + 1

        def real_samples(self, n, generator, split="test"):
            return torch.randn(n, 2, generator=generator) * 0.1 + 1

    registry.add("dataset", "plain", lambda **_: Plain())
    make_trainer(config(tmp_path / "straight", "plain", 16)).fit()
    make_trainer(config(tmp_path / "cut", "plain", 7)).fit()  # a logging step: same lines
    make_trainer(config(tmp_path / "cut", "plain", 16, resume=True)).fit()
    assert_identical(tmp_path / "straight", tmp_path / "cut")


ARGS = ["--data", "digits", "--batch-size", "32", "--z-dim", "8", "--threads", "1", "--seed", "5",
        "--log-every", "5", "--sample-every", "0", "--ckpt-every", "0",
        "--set", "gen.hidden=32,32", "--set", "gen.norm=batch", "--set", "disc.hidden=32"]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_a_real_process_stopped_by_a_signal_resumes_bit_identically(sig, tmp_path):
    """The same through the command: a signal while the process trains (wherever it lands), then
    ``--resume`` to the end; the weights equal those of a run that was never stopped."""
    steps = 3000
    run = [sys.executable, "-m", "ganforge", "run", *ARGS]
    env = {**os.environ, "CI": "true"}
    proc = subprocess.Popen([*run, "--steps", str(steps), "--out", str(tmp_path / "cut")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    metrics = tmp_path / "cut" / "metrics.jsonl"
    while proc.poll() is None and not (metrics.exists() and metrics.stat().st_size > 0):
        pass  # stop it once it is training
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "Traceback" not in err, err
    stopped_at = load_checkpoint(latest_checkpoint(tmp_path / "cut")).step
    assert 0 < stopped_at < steps
    resumed = subprocess.run([*run, "--steps", str(steps), "--out", str(tmp_path / "cut"), "--resume"],
                             capture_output=True, text=True, env=env)
    assert resumed.returncode == 0, resumed.stderr
    straight = subprocess.run([*run, "--steps", str(steps), "--out", str(tmp_path / "straight")],
                              capture_output=True, text=True, env=env)
    assert straight.returncode == 0, straight.stderr
    assert_identical(tmp_path / "straight", tmp_path / "cut")
