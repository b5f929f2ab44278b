"""A kill at any moment never corrupts the last good checkpoint, and the run resumes from it."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import pytest
import torch

from ganforge.run.checkpoint import latest_checkpoint, load_checkpoint
from ganforge.run.folder import read_metrics

pytestmark = pytest.mark.slow

ARGS = ["--data", "ring8", "--steps", "100000", "--ckpt-every", "5", "--log-every", "5", "--sample-every", "0",
        "--set", "gen.hidden=16", "--set", "disc.hidden=16"]


def start(out):
    return subprocess.Popen([sys.executable, "-m", "ganforge", "run", *ARGS, "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "CI": "true"})


def wait_for_checkpoint(out, timeout=60.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if (out / "checkpoints" / "latest").exists():
            return
        time.sleep(0.05)
    pytest.fail("no checkpoint appeared")


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGHUP])
def test_killed_run_keeps_a_good_checkpoint_and_resumes(tmp_path, sig):
    out = tmp_path / "run"
    proc = start(out)
    wait_for_checkpoint(out)
    time.sleep(random.uniform(0.0, 0.5))  # land anywhere, including in the middle of a save
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    if sig in (signal.SIGTERM, signal.SIGHUP):
        assert proc.returncode == 130 and "checkpoint is intact" in err and "Traceback" not in err
    ckpt = load_checkpoint(latest_checkpoint(out))  # verifies every file against its manifest
    assert ckpt.step > 0
    resumed = subprocess.run([sys.executable, "-m", "ganforge", "run", *ARGS[:2], "--steps", str(ckpt.step + 5),
                              *ARGS[4:], "--out", str(out), "--resume"], capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert load_checkpoint(latest_checkpoint(out)).step == ckpt.step + 5


STEADY = ["--data", "digits", "--batch-size", "32", "--z-dim", "8", "--threads", "1", "--log-every", "3",
          "--sample-every", "0", "--ckpt-every", "5", "--set", "gen.hidden=16", "--set", "gen.norm=batch",
          "--set", "disc.hidden=16"]


def ganforge(*args, crash_at=None):
    env = {**os.environ, "CI": "true"}
    if crash_at:
        env["GANFORGE_CRASH_AT"] = crash_at
    return subprocess.run([sys.executable, "-m", "ganforge", "run", *STEADY, *args], capture_output=True, text=True,
                          env=env, timeout=300)


def weights(out):
    ckpt = load_checkpoint(latest_checkpoint(out))
    return ckpt.step, {k: v for k, v in {**ckpt.generator, **ckpt.discriminator}.items()}


@pytest.mark.parametrize("point", ["checkpoint.written:3", "checkpoint.renamed:3", "checkpoint.latest_moved:3",
                                   "replace.latest:3"])
def test_a_kill_at_each_dangerous_point_of_a_save_leaves_a_run_that_resumes_exactly(tmp_path, point):
    """SIGKILL inside the third checkpoint save, at the moments a random kill rarely hits: the
    latest checkpoint still loads, and resuming gives the weights of a run never killed."""
    killed = ganforge("--steps", "30", "--out", str(tmp_path / "cut"), crash_at=point)
    assert killed.returncode == -signal.SIGKILL
    step, _ = weights(tmp_path / "cut")
    assert step in (10, 15)
    assert ganforge("--steps", "30", "--out", str(tmp_path / "cut"), "--resume").returncode == 0
    assert ganforge("--steps", "30", "--out", str(tmp_path / "straight")).returncode == 0
    (step_a, a), (step_b, b) = weights(tmp_path / "cut"), weights(tmp_path / "straight")
    assert step_a == step_b == 30 and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("point", ["replace.config.json:1", "replace.metrics.jsonl:1", "checkpoint.renamed:1",
                                   "checkpoint.latest_moved:1"])
def test_a_kill_while_a_resume_rewrites_the_run_folder_loses_nothing(tmp_path, point):
    """A resume rewrites config.json, trims metrics.jsonl and (to the same step) re-saves the
    last checkpoint: a kill in any of those keeps every earlier line and a loadable checkpoint."""
    out = tmp_path / "run"
    assert ganforge("--steps", "10", "--out", str(out)).returncode == 0
    lines_before = (out / "metrics.jsonl").read_text().splitlines()
    killed = ganforge("--steps", "10", "--out", str(out), "--resume", crash_at=point)
    assert killed.returncode == -signal.SIGKILL
    assert load_checkpoint(latest_checkpoint(out)).step == 10
    assert (out / "metrics.jsonl").read_text().splitlines()[: len(lines_before)] == lines_before
    assert ganforge("--steps", "15", "--out", str(out), "--resume").returncode == 0
    assert load_checkpoint(latest_checkpoint(out)).step == 15


def test_a_torn_last_metrics_line_does_not_block_resume(tmp_path):
    out = tmp_path / "run"
    assert ganforge("--steps", "10", "--out", str(out)).returncode == 0
    with (out / "metrics.jsonl").open("a") as fh:
        fh.write('{"d_loss": 0.69, "g_lo')  # the process died inside a write
    resumed = ganforge("--steps", "15", "--out", str(out), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert [r["step"] for r in read_metrics(out / "metrics.jsonl")][-1] == 15
