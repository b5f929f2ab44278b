"""Ctrl-C, SIGTERM (kill, a scheduler's pre-emption) and SIGHUP (the terminal closed) during
training become a request that the loop honours *between* steps.

An exception raised by a signal lands wherever Python happens to be: after D's update but before
G's, halfway through an optimiser step. A checkpoint saved then holds part of a step, and a
resumed run is no longer the run that was interrupted. So the handler only records the signal;
the loop finishes the step it is in, saves a checkpoint of whole steps, and stops. A second Ctrl-C
stops at once (the user insists), and the last complete checkpoint is left as it was.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import Any

SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


class StopRequests:
    """``with StopRequests() as stop: ... if stop.requested: ...``; handlers are put back on exit.

    Outside the main thread (where Python allows no handlers) it installs nothing and never asks
    to stop."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self._previous: dict[int, Callable[[int, FrameType | None], Any] | int | signal.Handlers | None] = {}

    @property
    def requested(self) -> bool:
        return self.signal is not None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signal is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: stop now, without a new checkpoint
        self.signal = signum

    def __enter__(self) -> StopRequests:
        if threading.current_thread() is threading.main_thread():
            for sig in SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()
