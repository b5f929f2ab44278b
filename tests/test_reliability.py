"""A kill at any moment never corrupts the last good checkpoint, and the run resumes from it."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import pytest

from ganforge.checkpoint import latest_checkpoint, load_checkpoint

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
