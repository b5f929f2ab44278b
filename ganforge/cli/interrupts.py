"""Ctrl-C, SIGTERM (kill, a scheduler's pre-emption) and SIGHUP (the terminal closed) for every
command: each stops the command the same way, as a KeyboardInterrupt, and the message says what
that means for *this* command.

Python turns only SIGINT into KeyboardInterrupt; SIGTERM's default is to die on the spot with
status -15 and no word, in the middle of whatever was being written. Training honours all three
between steps (:mod:`ganforge.runtime.stop_requests` nests its own handlers inside these); the
readers (``sample``, ``eval``, ``export``) write through :func:`ganforge.run.destination.replacing`,
whose temporary file is removed on the way out, so a stop leaves no partial output behind.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

#: what a stop leaves behind, per command; a command not named here has nothing to leave
AFTERMATH = {
    "run": "the last checkpoint is intact (resume with --resume)",
    "sample": "nothing was written (outputs are written whole or not at all)",
    "eval": "nothing was written (outputs are written whole or not at all)",
    "export": "nothing was written (outputs are written whole or not at all)",
    "sweep": "each running trial saved a checkpoint of whole steps; the same command continues the sweep",
    "tune": "the running trial saved a checkpoint; the same command continues the study (Optuna records "
            "the stopped trial as failed and starts a new one)",
}
NAMES = {getattr(signal, name): name for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)}


class SignalRecord:
    """The last signal that stopped the command (``None``: Ctrl-C through Python's own handler)."""

    signum: int | None = None


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """Within the block SIGTERM and SIGHUP raise KeyboardInterrupt as Ctrl-C does, unless they
    are ignored (nohup); the handlers before it are put back after (``main`` is also called
    in-process, by tests and plugins). In the main thread only: Python allows handlers nowhere
    else."""
    SignalRecord.signum = None
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        SignalRecord.signum = signum
        raise KeyboardInterrupt

    # a signal the process was started ignoring stays ignored: `nohup ganforge run ...` asks for
    # a run that outlives its terminal, and a shell's background job (`&`) ignores Ctrl-C
    previous = {signum: signal.signal(signum, interrupt) for signum in NAMES
                if signum != signal.SIGINT and signal.getsignal(signum) is not signal.SIG_IGN}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def stopped_message(command: str | None) -> str:
    """``"sample stopped by SIGTERM; nothing was written (...)"``: the signal, and what it left."""
    name = NAMES.get(SignalRecord.signum or signal.SIGINT, "a signal")
    how = "Ctrl-C" if name == "SIGINT" else name
    if command == "run":  # training's message, unchanged: the checkpoint is what matters
        return f"interrupted; {AFTERMATH['run']}"
    what = f"{command} stopped by {how}" if command else f"stopped by {how}"
    after = AFTERMATH.get(command or "")
    return f"{what}; {after}" if after else what
