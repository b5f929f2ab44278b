"""How many CPU threads a run uses, chosen by measuring the run's own steps.

Why measure instead of using torch's default (one thread per core): the right count depends on the
shapes and on what else the machine is doing. On a quiet machine more threads make a step faster;
with one CPU-bound process next to it, threads that spin-wait for each other at every parallel
region make the same step many times *slower*, while one thread keeps a fair share
(docs/performance.md, "On a busy machine"). So with ``--threads auto`` (the default) the
:class:`ThreadTuner` times a few real training steps at each candidate count, keeps the fastest, and
measures again when the step time jumps (a competitor arrived) or every ``period_s`` seconds (a
competitor left).

Changing the thread count must not change the numbers: MKL's GEMMs split their work differently with
more threads and round differently (docs/performance.md). MKL's *strict conditional numerical
reproducibility* mode (``MKL_CBWR=AUTO,STRICT``) makes its GEMMs bitwise identical for any thread
count at no measured cost; ``import ganforge`` asks for it (``ganforge/__init__.py``, before torch
can run a GEMM). ganforge's own kernels and torch's fused Adam are thread-count invariant by
construction; torch's CPU BatchNorm is not (its reductions depend on the thread count), so
ganforge's networks use :class:`ganforge.nn.BatchNorm1d`, which is.

Convolutions are the exception: oneDNN, torch's CPU convolution, sums weight gradients in an order
that depends on the thread count. ``--thread-invariant`` sends them through torch's own im2col +
GEMM path for the run (``torch.backends.mkldnn.enabled = False``), which is invariant and several
times slower; without it a convolutional run is reproducible at a fixed ``--threads N`` only.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import torch

REPRODUCIBLE_GEMM_ENV = "MKL_CBWR"
_MKL_CBWR_ALL = -1
_MKL_CBWR_STRICT = 0x10000


def gemm_reproducibility() -> str:
    """``"strict"`` when MKL's GEMMs are thread-count invariant in this process, else why not."""
    if not torch.backends.mkl.is_available():
        return "no MKL (the BLAS in use decides)"
    try:
        lib = ctypes.CDLL(str(Path(torch.__file__).parent / "lib" / "libtorch_cpu.so"))
        mode = lib.mkl_serv_cbwr_get(_MKL_CBWR_ALL)
    except (OSError, AttributeError):
        return "unknown (MKL's mode cannot be queried in this torch build)"
    if mode & _MKL_CBWR_STRICT:
        return "strict (MKL_CBWR=AUTO,STRICT: any thread count gives the same bits)"
    return f"off (MKL_CBWR={os.environ.get(REPRODUCIBLE_GEMM_ENV, 'unset')}; set it before the first GEMM)"


@contextlib.contextmanager
def fixed_threads(count: int) -> Iterator[None]:
    """torch's thread count set to ``count`` (0: left as it is) inside the block, given back after."""
    before = torch.get_num_threads()
    if count:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def available_cores() -> int:
    """CPUs this process may run on (respects taskset and container CPU sets)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def candidate_counts(cores: int) -> list[int]:
    """1, 2, 4, ... up to the cores available, and the core count itself."""
    counts, n = [], 1
    while n < cores:
        counts.append(n)
        n *= 2
    return [*counts, cores]


def parse_threads(value: object) -> int:
    """``--threads``: a positive count, or ``auto`` / 0 for measured choice; returns 0 for auto."""
    if value in (None, "auto", 0, "0"):
        return 0
    try:
        count = int(cast(Any, value))  # int() itself refuses what it cannot convert
    except (TypeError, ValueError):
        count = -1
    limit = 4 * (os.cpu_count() or 1)
    if count < 1 or count > limit:
        from ganforge.errors import ConfigError

        raise ConfigError(f"--threads must be 'auto' or a number of threads from 1 to {limit} (this machine "
                          f"has {os.cpu_count()} cores), got {value!r}")
    return count


@dataclass
class ThreadTuner:
    """Sets torch's thread count for a run and, in auto mode, keeps it the fastest measured.

    Call :meth:`start` before the first step and :meth:`step_done` after every step. Probing uses
    the run's real steps, so it wastes no work: each candidate count runs ``probe_steps`` steps
    (the first of them discarded, it pays for resizing the thread pool) and the one with the
    lowest median step time is kept.
    """

    requested: int = 0  # 0: auto
    invariant_convolutions: bool = False  # --thread-invariant: convolutions off oneDNN for the run
    probe_steps: int = 6
    period_s: float = 30.0
    jump: float = 1.5  # re-probe when the recent median step time exceeds the chosen one by this
    clock: Callable[[], float] = time.perf_counter
    candidates: list[int] = field(default_factory=list)
    threads: int = 0
    reason: str = ""
    _previous: int = 0
    _queue: list[int] = field(default_factory=list)
    _times: dict[int, list[float]] = field(default_factory=dict)
    _recent: list[float] = field(default_factory=list)
    _chosen_time: float = 0.0
    _last: float = 0.0
    _settled_at: float = 0.0
    _onednn_before: bool | None = None

    def start(self) -> None:
        self._previous = torch.get_num_threads()
        if self.invariant_convolutions:
            self._onednn_before = bool(torch.backends.mkldnn.enabled)
            torch.backends.mkldnn.enabled = False  # type: ignore[assignment]  # torch's documented switch
        cores = available_cores()
        if self.requested:
            self._set(self.requested)
            self.reason = f"--threads {self.requested}"
        else:
            self.candidates = candidate_counts(cores)
            if len(self.candidates) == 1:
                self._set(1)
                self.reason = "auto: one core available"
            else:
                self._probe(f"auto: measuring {', '.join(map(str, self.candidates))} on {cores} cores")
        self._last = self.clock()

    def restore(self) -> None:
        """Give torch back the thread count (and the convolution path) it had before :meth:`start`."""
        if self._previous:
            torch.set_num_threads(self._previous)
        if self._onednn_before is not None:
            torch.backends.mkldnn.enabled = self._onednn_before  # type: ignore[assignment]
            self._onednn_before = None

    @property
    def probing(self) -> bool:
        return bool(self._queue)

    def step_done(self) -> None:
        now = self.clock()
        elapsed, self._last = now - self._last, now
        if self.requested or not self.candidates:
            return
        if self._queue:
            times = self._times.setdefault(self.threads, [])
            times.append(elapsed)
            if len(times) > self.probe_steps:  # times[0] paid for the pool resize
                self._queue.pop(0)
                if self._queue:
                    self._set(self._queue[0])
                else:
                    self._settle(now)
            return
        self._recent = [*self._recent[-(self.probe_steps - 1):], elapsed]
        slowed = (len(self._recent) == self.probe_steps
                  and statistics.median(self._recent) > self.jump * self._chosen_time)
        if slowed:
            self._probe("auto: steps slowed down, measuring again")
        elif now - self._settled_at > self.period_s:
            self._probe("auto: periodic check")

    def _probe(self, why: str) -> None:
        self.reason = why
        self._times, self._recent = {}, []
        # Start from the current count (no pool resize) so the first probe steps are not wasted.
        current = self.threads if self.threads in self.candidates else self.candidates[-1]
        self._queue = [current, *[c for c in self.candidates if c != current]]
        self._set(self._queue[0])

    def _settle(self, now: float) -> None:
        medians = {n: statistics.median(t[1:]) for n, t in self._times.items()}
        best = min(medians, key=medians.__getitem__)
        self._chosen_time = medians[best]
        self._set(best)
        shown = ", ".join(f"{n}: {1e3 * m:.2f} ms" for n, m in sorted(medians.items()))
        self.reason = f"auto: fastest measured step ({shown})"
        self._settled_at = now
        self._recent = []

    def _set(self, n: int) -> None:
        if n != torch.get_num_threads():
            torch.set_num_threads(n)
        self.threads = n
