"""torchrun with two real processes (gloo, CPU): the same steps as one process with the same seed
and global batch, one writer, and an exact --resume across the two."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
import torch

from ganforge.run.checkpoint import latest_checkpoint, load_checkpoint
from ganforge.run.folder import read_metrics

pytestmark = pytest.mark.slow

# No BatchNorm (torch has no SyncBatchNorm on the CPU), no dropout, no minibatch feature: with
# every loss a mean over the batch, two halves' averaged gradients are the whole batch's gradient.
ARGS = ["--data", "ring8", "--batch-size", "64", "--threads", "1", "--set", "gen.norm=none",
        "--set", "gen.hidden=32,32", "--set", "disc.hidden=32", "--sample-every", "0", "--log-every", "10",
        "--ckpt-every", "0"]


def free_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return str(s.getsockname()[1])


def run(out, *extra: str, processes: int = 1) -> subprocess.CompletedProcess:
    launcher = ([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(processes),
                 "--master_addr", "127.0.0.1", "--master_port", free_port()] if processes > 1 else [sys.executable])
    done = subprocess.run([*launcher, "-m", "ganforge", "run", *ARGS, *extra, "--out", str(out)],
                          capture_output=True, text=True, env={**os.environ, "CI": "true"}, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def weights(out) -> dict[str, torch.Tensor]:
    ckpt = load_checkpoint(latest_checkpoint(out))
    return {**{f"G.{k}": v for k, v in ckpt.generator.items()}, **{f"D.{k}": v for k, v in ckpt.discriminator.items()},
            **{f"EMA.{k}": v for k, v in (ckpt.generator_ema or {}).items()}}


def assert_close(a, b) -> None:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], rtol=1e-5, atol=1e-6, msg=k)


CONDITIONAL = ["--data", "digits", "--set", "disc.dropout=0", "--set", "disc.mbstd=false",
               "--set", "gen.classes=10", "--set", "disc.classes=10"]


@pytest.mark.parametrize("extra", [[], ["--set", "loss.r1=1"], CONDITIONAL], ids=["nonsat", "nonsat+R1", "classes"])
def test_two_processes_take_the_steps_of_one(extra, tmp_path):
    """R1 differentiates D twice (a gradient penalty) through the fused op; with classes each
    process takes its half of the labels and of the noise that draws them."""
    two = run(tmp_path / "two", "--steps", "30", *extra, processes=2)
    run(tmp_path / "one", "--steps", "30", *extra)
    assert_close(tmp_path / "one", tmp_path / "two")
    rows = read_metrics(tmp_path / "two" / "metrics.jsonl")
    assert [r["step"] for r in rows] == sorted({r["step"] for r in rows})  # one writer: no line twice
    assert all(r.get("processes") == 2 for r in rows)
    assert two.stdout.count("done:") == 1  # rank 1 says nothing


def test_wgan_gp_trains_under_torchrun(tmp_path):
    """WGAN-GP draws its interpolation weights per process, so two processes match one in
    distribution, not number for number; it must train, and its penalty's double backward works."""
    run(tmp_path / "two", "--loss", "wgan-gp", "--steps", "10", processes=2)
    assert all(torch.isfinite(v).all() for v in weights(tmp_path / "two").values())


def test_resume_under_torchrun_continues_exactly(tmp_path):
    run(tmp_path / "cut", "--steps", "20", processes=2)
    run(tmp_path / "cut", "--steps", "40", "--resume", processes=2)
    run(tmp_path / "one", "--steps", "40")
    assert_close(tmp_path / "one", tmp_path / "cut")


def test_a_global_batch_that_does_not_split_is_a_usage_error(tmp_path):
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                           "--master_addr", "127.0.0.1", "--master_port", free_port(), "-m", "ganforge", "run",
                           "--data", "ring8",
                           "--batch-size", "63", "--steps", "2", "--out", str(tmp_path / "r")],
                          capture_output=True, text=True, env={**os.environ, "CI": "true"}, timeout=300)
    assert done.returncode != 0 and "multiple of 2" in done.stderr and "Traceback" not in done.stderr.split("error:")[0]


# torchrun runs this file: rank 1 (only) kills itself after the given step, as a lost machine would.
KILL_RANK_1 = """
import os, sys
if os.environ["RANK"] == "1":
    os.environ["GANFORGE_CRASH_AT"] = "step.done:" + os.environ["KILL_AFTER_STEP"]
from ganforge.cli.main import main
sys.exit(main())
"""


def test_a_process_killed_mid_run_stops_the_others_with_a_message_and_the_checkpoint_intact(tmp_path):
    script = tmp_path / "kill_rank_1.py"
    script.write_text(KILL_RANK_1)
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                           "--master_addr", "127.0.0.1", "--master_port", free_port(), str(script), "run", *ARGS,
                           "--steps", "200", "--ckpt-every", "20", "--out", str(tmp_path / "r")],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "CI": "true", "KILL_AFTER_STEP": "25"})
    assert done.returncode != 0
    assert "another process of this torchrun job stopped" in done.stderr, done.stderr[-3000:]
    assert "step_0000020" in done.stderr and "--resume" in done.stderr
    ckpt = load_checkpoint(latest_checkpoint(tmp_path / "r"))
    assert ckpt.step == 20 and all(torch.isfinite(v).all() for v in ckpt.generator.values())


LEAVE = """
import os, torch
from ganforge.runtime.seam import Seam
seam = Seam("cpu")
net = torch.nn.Linear(3, 3)
opt = torch.optim.Adam(net.parameters())  # its first step imports torch._dynamo
net(torch.ones(2, 3)).sum().backward()
seam.average_gradients(net.parameters())
opt.step()
seam.close()
names = [open(f"/proc/self/task/{t}/comm").read().strip() for t in os.listdir("/proc/self/task")]
with open(os.path.join(os.path.dirname(__file__), "threads." + os.environ["RANK"]), "w") as fh:
    fh.write(",".join(sorted(names)))  # a file per process: their stdout lines interleave
"""


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="reads thread names from /proc")
def test_leaving_the_group_stops_gloos_threads(tmp_path):
    """After a clean close no gloo thread is left to free a tensor while the interpreter exits
    (that aborted a finished run now and then on a loaded machine, "terminate called without an
    active exception"). torch 2.13 keeps the group alive when dynamo is first imported after it,
    as the optimiser's first step does; the seam imports dynamo before joining."""
    script = tmp_path / "leave.py"
    script.write_text(LEAVE)
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                           "--master_addr", "127.0.0.1", "--master_port", free_port(), str(script)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    threads = [(tmp_path / f"threads.{rank}").read_text() for rank in (0, 1)]
    assert all(threads) and not any("gloo" in names for names in threads), threads
