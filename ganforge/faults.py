"""Named crash points for the reliability tests: ``GANFORGE_CRASH_AT=NAME`` (or ``NAME:K``, the
K-th time) makes the process kill itself (SIGKILL, no clean-up of any kind) at the point ``NAME``;
``GANFORGE_PAUSE_AT=NAME`` makes it say ``paused at NAME`` on stderr and wait there for a signal,
so a test can stop it exactly in the middle of writing an output.

A random kill rarely lands inside the few microseconds between writing a checkpoint and moving
``latest``; these points put it there every time. Unset, :func:`crash_point` is one dictionary
lookup.
"""

from __future__ import annotations

import os
import signal

ENV = "GANFORGE_CRASH_AT"
PAUSE_ENV = "GANFORGE_PAUSE_AT"
_reached: dict[str, int] = {}


def crash_point(name: str) -> None:
    if os.environ.get(PAUSE_ENV) == name:
        os.write(2, f"paused at {name}\n".encode())
        while True:  # until a signal's handler raises (or the default handler ends the process)
            signal.pause()
    wanted = os.environ.get(ENV)
    if not wanted:
        return
    point, _, times = wanted.partition(":")
    if point == name:
        _reached[name] = _reached.get(name, 0) + 1
        if _reached[name] == (int(times) if times.isdigit() else 1):
            os.kill(os.getpid(), signal.SIGKILL)
