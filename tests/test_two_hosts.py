"""Two machines for real on one: two network namespaces joined by a veth pair, each running its own
``torchrun --nnodes 2 --rdzv-backend c10d``, as two hosts on a LAN would.

Each "host" gets its own run folder path (its own disk, as far as ganforge can tell): only the
host whose process became rank 0 may have one afterwards. Then one host is killed mid-run and the
other must stop by itself with a clear message, its last checkpoint intact.

Needs root and iproute2 (``tools/ensure_iproute2.sh`` installs it in CI); where the sandbox refuses
network namespaces the tests skip and say so.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from ganforge.run.checkpoint import latest_checkpoint, load_checkpoint

pytestmark = pytest.mark.slow

ADDRESSES = ("10.213.0.1", "10.213.0.2")
PORT = "29431"
ARGS = ["--data", "ring8", "--batch-size", "64", "--threads", "1", "--set", "gen.norm=none",
        "--set", "gen.hidden=32,32", "--set", "disc.hidden=32", "--sample-every", "0", "--log-every", "10"]


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=30)


@pytest.fixture
def hosts() -> Iterator[tuple[str, str]]:
    """Two namespaces, ``gfh0-PID`` and ``gfh1-PID``, with 10.213.0.1 and .2 on a veth pair."""
    if shutil.which("ip") is None:
        pytest.skip("iproute2's `ip` is not installed (tools/ensure_iproute2.sh installs it as root)")
    tag = str(os.getpid())
    names = (f"gfh0-{tag}", f"gfh1-{tag}")
    veths = (f"gfa{tag}"[:15], f"gfb{tag}"[:15])
    try:
        for name in names:
            ip("netns", "add", name)
    except (subprocess.CalledProcessError, PermissionError) as exc:
        for name in names:
            subprocess.run(["ip", "netns", "del", name], capture_output=True)
        reason = exc.stderr.strip() if isinstance(exc, subprocess.CalledProcessError) else str(exc)
        pytest.skip(f"this sandbox refuses network namespaces (`ip netns add`: {reason})")
    try:
        try:
            ip("link", "add", veths[0], "type", "veth", "peer", "name", veths[1])
            for name, veth, address in zip(names, veths, ADDRESSES, strict=True):
                ip("link", "set", veth, "netns", name)
                ip("-n", name, "addr", "add", f"{address}/24", "dev", veth)
                ip("-n", name, "link", "set", veth, "up")
                ip("-n", name, "link", "set", "lo", "up")
        except subprocess.CalledProcessError as exc:
            pytest.skip(f"this sandbox refuses to join network namespaces ({' '.join(exc.cmd)}: {exc.stderr.strip()})")
        yield names
    finally:
        for name in names:
            subprocess.run(["ip", "netns", "del", name], capture_output=True)
        subprocess.run(["ip", "link", "del", veths[0]], capture_output=True)  # if it never left the host


def start_host(ns: str, rank: int, out: Path, *extra: str) -> subprocess.Popen:
    veth = f"gfa{os.getpid()}"[:15] if rank == 0 else f"gfb{os.getpid()}"[:15]
    env = {**os.environ, "CI": "true", "GLOO_SOCKET_IFNAME": veth, "PYTHONUNBUFFERED": "1"}
    command = ["ip", "netns", "exec", ns, sys.executable, "-m", "torch.distributed.run",
               "--nnodes", "2", "--nproc_per_node", "1", "--node-rank", str(rank), "--max-restarts", "0",
               "--rdzv-backend", "c10d", "--rdzv-endpoint", f"{ADDRESSES[0]}:{PORT}", "--rdzv-id", "gf",
               "--local-addr", ADDRESSES[rank], "--rdzv-conf", f"is_host={str(rank == 0).lower()}",
               "-m", "ganforge", "run", *ARGS, *extra, "--out", str(out)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                            start_new_session=True)


def kill_host(ns: str) -> None:
    """Every process in the namespace, SIGKILL: torchrun's workers run in sessions of their own,
    so killing the launcher's process group would leave them running."""
    pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout.split()
    for pid in pids:
        try:
            os.kill(int(pid), signal.SIGKILL)
        except ProcessLookupError:
            pass


def finish(proc: subprocess.Popen, timeout: float = 240) -> tuple[int, str]:
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate(timeout=30)
        pytest.fail(f"a host did not finish within {timeout} s:\n{output[-3000:]}")
    return proc.returncode, output


def finish_all(hosts: tuple[str, str], procs: list[subprocess.Popen], timeout: float = 240) -> list[tuple[int, str]]:
    """Both hosts' exit codes and output. When one hangs, every process of both namespaces is
    killed and both outputs are shown: torchrun's agent on the rendezvous host waits up to 300 s
    for the other agent at exit, so the host that hangs is often not the one that failed."""
    deadline = time.monotonic() + timeout
    while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
        time.sleep(0.2)
    hung = [i for i, p in enumerate(procs) if p.poll() is None]
    for ns in hosts:
        kill_host(ns)
    outputs = [p.communicate(timeout=30)[0] for p in procs]
    if hung:
        shown = "\n".join(f"--- host {i} (exit {p.returncode}{', hung' if i in hung else ''}):\n{out[-2500:]}"
                          for i, (p, out) in enumerate(zip(procs, outputs, strict=True)))
        pytest.fail(f"host(s) {hung} did not finish within {timeout} s:\n{shown}")
    return [(p.returncode, out) for p, out in zip(procs, outputs, strict=True)]


def test_a_run_across_two_hosts_completes_with_one_run_folder(hosts, tmp_path):
    outs = [tmp_path / "host0" / "run", tmp_path / "host1" / "run"]
    procs = [start_host(ns, rank, out, "--steps", "30")
             for rank, (ns, out) in enumerate(zip(hosts, outs, strict=True))]
    results = finish_all(hosts, procs)
    for code, output in results:
        assert code == 0, output[-3000:]
    written = [out for out in outs if out.exists()]
    assert len(written) == 1, "exactly one host (rank 0's) writes a run folder"
    ckpt = load_checkpoint(latest_checkpoint(written[0]))
    assert ckpt.step == 30
    assert sum(output.count("done:") for _, output in results) == 1


def test_killing_one_host_stops_the_other_with_a_message_and_an_intact_checkpoint(hosts, tmp_path):
    outs = [tmp_path / "host0" / "run", tmp_path / "host1" / "run"]
    procs = [start_host(ns, rank, out, "--steps", "1000000", "--ckpt-every", "20")
             for rank, (ns, out) in enumerate(zip(hosts, outs, strict=True))]
    try:
        deadline = time.monotonic() + 180
        while not any((out / "checkpoints" / "step_0000040").exists() for out in outs):
            assert time.monotonic() < deadline and all(p.poll() is None for p in procs), "no checkpoint came"
            time.sleep(0.2)
        writer = next(i for i, out in enumerate(outs) if out.exists())
        kill_host(hosts[1 - writer])  # the other machine goes away, all of it
        code, output = finish(procs[writer], timeout=120)
    finally:
        for ns, p in zip(hosts, procs, strict=True):
            if p.poll() is None:
                kill_host(ns)
                p.communicate()
    assert code != 0
    assert "another process of this torchrun job stopped" in output, output[-3000:]
    assert "last good checkpoint is" in output and "--resume" in output
    ckpt = load_checkpoint(latest_checkpoint(outs[writer]))
    assert ckpt.step >= 40 and ckpt.step % 20 == 0
    assert all(torch.isfinite(v).all() for v in ckpt.generator.values())
