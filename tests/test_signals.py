"""Ctrl-C, SIGTERM and SIGHUP during ``sample``, ``eval`` and ``export``: a message that fits the
command, exit 130, no traceback, and no partial output, whether the signal lands while the
command computes or in the middle of writing its output (held there by ``GANFORGE_PAUSE_AT``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ganforge.cli.main import main

SIGNALS = [signal.SIGINT, signal.SIGTERM, signal.SIGHUP]
NAMES = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM", signal.SIGHUP: "SIGHUP"}
#: (command, its arguments after the run folder, the output it writes)
COMMANDS = {
    "sample-npy": (["sample", "-n", "5000"], "x.npy", "-o"),
    "sample-png": (["sample", "-n", "16"], "x.png", "-o"),
    "eval": (["eval", "-n", "600"], "m.json", "--json"),
    "export": (["export"], "g.pt2", "-o"),
}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("signals") / "run"
    assert main(["run", "--steps", "2", "--out", str(out), "--sample-every", "0", "--set", "gen.hidden=16",
                 "--set", "disc.hidden=16", "--z-dim", "4"]) == 0
    return out


def start(args, env_extra=None, ignored=(), defaults=True, script=False):
    """The command in a child whose signal dispositions are the defaults (or ignored, as nohup
    leaves SIGHUP), whatever this test process inherited: a shell's background job ignores
    SIGINT, and children inherit that. ``script``: the installed ``ganforge`` command rather than
    ``python -m ganforge``."""
    def dispositions() -> None:
        for s in SIGNALS:
            signal.signal(s, signal.SIG_IGN if s in ignored else signal.SIG_DFL)

    env = {**os.environ, **(env_extra or {})}
    command = [str(Path(sys.executable).with_name("ganforge"))] if script else [sys.executable, "-m", "ganforge"]
    return subprocess.Popen([*command, *args], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=dispositions if defaults else None)


def handles(pid: int, sig: int) -> bool:
    """Whether ``pid`` has a handler installed for ``sig`` (the SigCgt mask of /proc)."""
    try:
        status = open(f"/proc/{pid}/status").read()
    except FileNotFoundError:
        return False
    mask = int(next(line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:")), 16)
    return bool(mask >> (sig - 1) & 1)


def wait_for_line(proc, text: str, timeout: float = 120.0) -> list[str]:
    lines, deadline = [], time.time() + timeout
    while time.time() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        lines.append(line)
        if text in line:
            return lines
    proc.kill()
    pytest.fail(f"never printed {text!r}: {''.join(lines)}")


def assert_stopped_cleanly(proc, command: str, sig: int, folder, before: set[str], early: str = "") -> None:
    _, err = proc.communicate(timeout=60)
    err = early + err
    assert proc.returncode == 130, err
    assert f"{command} stopped by {NAMES[sig]}; nothing was written" in err, err
    assert "Traceback" not in err and len(err.strip().splitlines()) <= 2, err
    assert set(os.listdir(folder)) == before  # no output, no temporary file


@pytest.mark.parametrize("sig", SIGNALS)
@pytest.mark.parametrize("which", list(COMMANDS))
def test_a_signal_while_the_output_is_written_leaves_nothing(run_dir, tmp_path, which, sig):
    head, name, option = COMMANDS[which]
    proc = start([head[0], str(run_dir), *head[1:], option, str(tmp_path / name)],
                 {"GANFORGE_PAUSE_AT": "output-written"})
    early = "".join(wait_for_line(proc, "paused at output-written"))
    assert any(entry.startswith(".") for entry in os.listdir(tmp_path))  # the whole temporary file
    proc.send_signal(sig)
    assert_stopped_cleanly(proc, head[0], sig, tmp_path, set(), early.replace("paused at output-written\n", ""))


def test_a_hangup_under_nohup_is_still_ignored(run_dir, tmp_path):
    """``nohup ganforge ...`` starts the process ignoring SIGHUP so that it outlives its terminal:
    the hangup must not stop it; SIGTERM still does, cleanly."""
    head, name, option = COMMANDS["sample-npy"]
    proc = start([head[0], str(run_dir), *head[1:], option, str(tmp_path / name)],
                 {"GANFORGE_PAUSE_AT": "output-written"}, ignored=(signal.SIGHUP,))
    early = "".join(wait_for_line(proc, "paused at output-written"))
    proc.send_signal(signal.SIGHUP)
    time.sleep(0.5)
    assert proc.poll() is None  # still paused, not stopped
    proc.send_signal(signal.SIGTERM)
    early = early.replace("paused at output-written\n", "")
    assert_stopped_cleanly(proc, head[0], signal.SIGTERM, tmp_path, set(), early)


@pytest.mark.parametrize("script", [False, True], ids=["python-m", "console-script"])
@pytest.mark.parametrize("which", ["sample-npy", "eval"])
def test_a_signal_while_the_command_computes_leaves_nothing(run_dir, tmp_path, which, script):
    """An early SIGTERM, often while torch is still being imported: the message, exit 130 (not
    death by SIGINT, which CPython chose when the signal landed inside a C-API call), nothing
    written; for ``python -m ganforge`` and the installed ``ganforge`` command alike."""
    head, name, option = COMMANDS[which]
    proc = start([head[0], str(run_dir), *head[1:], option, str(tmp_path / name)], script=script)
    deadline = time.time() + 60
    while not handles(proc.pid, signal.SIGTERM) and time.time() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    assert_stopped_cleanly(proc, head[0], signal.SIGTERM, tmp_path, set())


def test_training_keeps_its_own_message_and_handlers_are_put_back(tmp_path):
    """``run`` still says the checkpoint is intact; ``main`` called in-process restores the
    handlers it found."""
    from ganforge.cli.interrupts import SignalRecord, stopped_message

    before = {s: signal.getsignal(s) for s in SIGNALS}
    assert main(["list", "--kind", "loss"]) == 0
    assert {s: signal.getsignal(s) for s in SIGNALS} == before
    SignalRecord.signum = signal.SIGTERM
    assert stopped_message("run") == "interrupted; the last checkpoint is intact (resume with --resume)"
    assert stopped_message("list") == "list stopped by SIGTERM"
    SignalRecord.signum = None
    assert stopped_message("sample").startswith("sample stopped by Ctrl-C; nothing was written")
