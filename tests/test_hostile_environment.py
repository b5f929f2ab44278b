"""A full disk, a read-only mount, plugins that fail at import or in a hook: one line, no
traceback, and the last good checkpoint intact. The disk tests mount a real, tiny tmpfs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from ganforge import hookimpl
from ganforge.plugins import HookError
from ganforge.run.checkpoint import latest_checkpoint, load_checkpoint

pytestmark = pytest.mark.slow

SMALL = ["--data", "ring8", "--z-dim", "2", "--threads", "1", "--set", "gen.hidden=64,64", "--set", "disc.hidden=64"]


def ganforge(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ganforge", *args], capture_output=True, text=True,
                          env={**os.environ, "CI": "true"}, timeout=300)


@pytest.fixture
def tiny_disk(mount_tmpfs):
    """A 384 KiB tmpfs: a few checkpoints and pictures fill it."""
    return mount_tmpfs("384k")


def one_line_error(result: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("error:"), result.stderr


def test_a_full_disk_stops_the_run_with_one_line_and_a_good_checkpoint(tiny_disk):
    out = tiny_disk / "run"
    result = ganforge("run", *SMALL, "--steps", "100000", "--ckpt-every", "25", "--sample-every", "10",
                      "--log-every", "5", "--out", str(out))
    assert result.returncode == 1
    one_line_error(result)
    assert "No space left on device" in result.stderr
    ckpt = load_checkpoint(latest_checkpoint(out))  # every file verified against its manifest
    assert ckpt.step > 0
    assert not list((out / "checkpoints").glob(".tmp-*")), "a half-written checkpoint was left on the full disk"
    # With room again (old pictures deleted), the run resumes from that checkpoint.
    shutil.rmtree(out / "samples")
    resumed = ganforge("run", *SMALL, "--steps", str(ckpt.step + 5), "--sample-every", "0", "--ckpt-every", "0",
                       "--out", str(out), "--resume")
    assert resumed.returncode == 0, resumed.stderr


def test_a_read_only_mount_is_one_line(tiny_disk, tmp_path):
    run = tmp_path / "run"
    assert ganforge("run", *SMALL, "--steps", "3", "--sample-every", "0", "--out", str(run)).returncode == 0
    shutil.copytree(run, tiny_disk / "run")
    assert subprocess.run(["mount", "-o", "remount,ro", str(tiny_disk)]).returncode == 0
    for args in (["run", *SMALL, "--steps", "3", "--out", str(tiny_disk / "new")],
                 ["run", *SMALL, "--steps", "6", "--out", str(tiny_disk / "run"), "--resume"],
                 ["sample", str(run), "-n", "4", "-o", str(tiny_disk / "x.npy")]):
        result = ganforge(*args)
        assert result.returncode in (1, 2), args
        one_line_error(result)
    assert load_checkpoint(latest_checkpoint(tiny_disk / "run")).step == 3


def test_a_failing_step_hook_saves_the_work_and_names_the_plugin(small_config, make_trainer, plugin_manager):
    class Flaky:
        @hookimpl
        def ganforge_on_step_end(self, run, step, logs):
            if step == 7:
                raise ValueError("my logger's server is down")

    plugin_manager.register(Flaky(), name="flaky-logger")
    config = small_config(steps=20, batch_size=16, z_dim=2, threads=1, log_every=100, sample_every=0, ckpt_every=0,
                          hidden=(8,))
    with pytest.raises(HookError, match="flaky-logger.*ganforge_on_step_end.*server is down") as caught:
        make_trainer(config).fit()
    assert "--resume" in str(caught.value)
    assert load_checkpoint(latest_checkpoint(config.out)).step == 7


def test_a_plugin_that_exits_at_import_is_isolated(tmp_path):
    """An entry point whose module calls sys.exit() while importing must not silence ganforge."""
    site = tmp_path / "site"
    (site / "exits_plugin").mkdir(parents=True)
    (site / "exits_plugin" / "__init__.py").write_text("import sys\nsys.exit('bye')\n")
    dist = site / "exits_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: exits-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[ganforge]\nexits = exits_plugin\n")
    env = {**os.environ, "PYTHONPATH": str(site), "CI": "true"}
    result = subprocess.run([sys.executable, "-m", "ganforge", "list", "--kind", "loss"], capture_output=True,
                            text=True, env=env)
    assert result.returncode == 0, result.stderr
    assert "nonsat" in result.stdout and "exits" in result.stderr and "SystemExit" in result.stderr
