"""Reading a run while it trains: ``sample``, ``eval`` and ``export`` from a second terminal.

A real ``ganforge run --ckpt-every 1 --keep 1`` publishes a checkpoint and prunes the previous one
at every step, so a reader almost always meets a checkpoint pruned under it. Only real damage may
be called damage: 50 reads in a row, 0 failures, each a checkpoint at least as new as the last.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ganforge.errors import CheckpointError
from ganforge.plugins import load_registry
from ganforge.run.checkpoint import read_checkpoint
from ganforge.train.restore import load_run

pytestmark = pytest.mark.slow

ARGS = ["--data", "ring8", "--threads", "1", "--set", "gen.hidden=32,32", "--set", "disc.hidden=32",
        "--steps", "10000000", "--ckpt-every", "1", "--keep", "1", "--sample-every", "0", "--log-every", "100000"]


@pytest.fixture
def live_run(tmp_path: Path):
    out = tmp_path / "live"
    proc = subprocess.Popen([sys.executable, "-m", "ganforge", "run", *ARGS, "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "CI": "true"})
    try:
        deadline = time.monotonic() + 120
        while read_checkpoint(out) is None:
            assert proc.poll() is None, proc.communicate()[0]
            assert time.monotonic() < deadline, "the run wrote no checkpoint in 120 s"
            time.sleep(0.1)
        yield out, proc
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


def test_fifty_reads_of_a_run_that_saves_and_prunes_every_step_never_fail(live_run):
    out, proc = live_run
    _, registry = load_registry()
    steps = []
    for _ in range(50):
        run = load_run(out, registry)  # a CheckpointError here fails the test: what the user saw
        steps.append(run.step)
        assert proc.poll() is None, "the run stopped while being read"
    assert steps == sorted(steps) and steps[-1] > steps[0], f"the reads did not follow the run: {steps}"


def test_the_cli_readers_succeed_on_a_live_run(live_run, tmp_path):
    out, _ = live_run
    for command in (["sample", str(out), "-n", "16", "-o", str(tmp_path / "s.npy")],
                    ["export", str(out), "-o", str(tmp_path / "g.pt2")],
                    ["eval", str(out), "-n", "200", "--metric", "modes"]):
        result = subprocess.run([sys.executable, "-m", "ganforge", *command], capture_output=True, text=True,
                                env={**os.environ, "CI": "true"}, timeout=300)
        assert result.returncode == 0, f"{command[0]}: {result.stderr}"


def test_real_damage_with_latest_unchanged_is_still_damage(live_run, tmp_path):
    """The retry must not hide damage: a copy of the run, frozen, with its newest weights cut."""

    out, _ = live_run
    for attempt in range(20):  # a copy taken mid-prune is incomplete: take another
        frozen = tmp_path / f"frozen{attempt}"
        try:
            shutil.copytree(out, frozen, ignore=shutil.ignore_patterns(".tmp-*"))
            ckpt = read_checkpoint(frozen)
            break
        except (shutil.Error, OSError, CheckpointError):
            continue
    else:
        pytest.fail("no consistent copy of the live run in 20 tries")
    assert ckpt is not None
    (ckpt.path / "generator.safetensors").write_bytes(b"cut")
    with pytest.raises(CheckpointError, match="does not match its manifest"):
        read_checkpoint(frozen)
