"""Run a sweep's trials, several at once, each in its own process on its own share of the cores.

With ``workers`` processes on a machine of C cores, each gets ``C // workers`` cores of its own
(its CPU affinity), and at most as many threads, so the trials together never run more compute
threads than there are cores: threads that outnumber the cores spin-wait for each other and make
every step slower (docs/performance.md, "On a busy machine"). ``--threads auto`` (the default)
measures within the trial's share, so on a machine busy with other work a trial may settle on
fewer; ``--threads N`` above the share is lowered to it.

A trial's process dies with the sweep (``PR_SET_PDEATHSIG``): after ``kill -9`` of the sweep no
orphan keeps training in a folder the next sweep will continue. Ctrl-C reaches the trials too
(the terminal signals the whole process group): each saves a checkpoint of whole steps.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from ganforge.run.folder import METRICS
from ganforge.sweep.trial import TrialSpec, is_done, read_result

POLL_S = 0.5


@dataclass
class Trial:
    """One setting at one seed, as the runner tracks it."""

    label: str
    seed: int
    spec: TrialSpec
    steps: int
    log: Path
    returncode: int | None = None

    @property
    def out(self) -> Path:
        return self.spec.out

    @property
    def done(self) -> bool:
        return is_done(self.out)

    def steps_done(self) -> int:
        """The last step the run logged (0 before its first line; ``steps`` once evaluated)."""
        if self.done:
            return self.steps
        return last_logged_step(self.out / METRICS)


def last_logged_step(path: Path) -> int:
    """The ``step`` of the last whole line of a metrics log, read from its tail only."""
    import json

    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 4096))
            lines = fh.read().decode(errors="replace").splitlines()
    except OSError:
        return 0
    for line in reversed(lines):
        try:
            return int(json.loads(line)["step"])
        except (ValueError, KeyError, TypeError):
            continue
    return 0


def core_slices(workers: int, cores: list[int] | None = None) -> list[list[int]]:
    """``workers`` disjoint, equal shares of the cores this process may use (the remainder of the
    division stays idle rather than make one share larger)."""
    if cores is None:
        cores = sorted(os.sched_getaffinity(0))
    if workers < 1:
        raise ValueError("workers must be at least 1")
    if workers > len(cores):
        from ganforge.errors import UsageError

        raise UsageError(f"--workers {workers}: this machine lets the sweep use {len(cores)} cores; at most "
                         f"--workers {len(cores)}, one core each (more would oversubscribe the cores)")
    per = len(cores) // workers
    return [cores[i * per:(i + 1) * per] for i in range(workers)]


def _die_with_parent() -> None:
    """In the child before exec: be killed when the sweep dies, however it dies (Linux only)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


@dataclass
class Slot:
    cores: list[int]
    trial: Trial | None = None
    process: subprocess.Popen[bytes] | None = None
    log: IO[bytes] | None = None


@dataclass
class Progress:
    """What the runner tells its display after each poll."""

    total_trials: int
    finished: int
    failed: int
    steps_done: int
    steps_total: int
    running: list[str] = field(default_factory=list)


def child_environment(threads: int) -> dict[str, str]:
    """The trial's environment: OpenMP and MKL pools sized to its share as well."""
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
    return env


def run_trials(trials: list[Trial], workers: int, on_progress: Callable[[Progress], None] | None = None,
               cores: list[int] | None = None) -> list[Trial]:
    """Run the unfinished ``trials``, ``workers`` at a time; return those that failed (their
    ``returncode`` set and their output in ``trial.log``)."""
    slots = [Slot(share) for share in core_slices(workers, cores)]
    pending = [t for t in trials if not t.done]
    failed: list[Trial] = []

    def report() -> None:
        if on_progress is not None:
            on_progress(Progress(len(trials), sum(t.done for t in trials), len(failed),
                                 sum(t.steps_done() for t in trials), sum(t.steps for t in trials),
                                 [s.trial.label + f" seed {s.trial.seed}" for s in slots if s.trial is not None]))

    try:
        while pending or any(s.process is not None for s in slots):
            for slot in slots:
                if slot.process is None and pending:
                    _start(slot, pending.pop(0))
            for slot in slots:
                if slot.process is not None and slot.process.poll() is not None:
                    trial = _finish(slot)
                    if trial.returncode != 0 or not trial.done:
                        failed.append(trial)
            report()
            time.sleep(POLL_S)
    finally:
        _stop_all(slots)
    report()
    return failed


def _start(slot: Slot, trial: Trial) -> None:
    trial.log.parent.mkdir(parents=True, exist_ok=True)
    share = slot.cores
    asked = trial.spec.given.get("threads")
    if isinstance(asked, int) and asked > len(share):  # never more than its share; auto measures within it
        trial.spec.given["threads"] = len(share)
    slot.log = trial.log.open("ab")
    slot.log.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} {trial.label} seed {trial.seed} on cores "
                   f"{share}\n".encode())
    slot.log.flush()

    def setup() -> None:
        _die_with_parent()
        os.sched_setaffinity(0, share)

    slot.trial = trial
    slot.process = subprocess.Popen([sys.executable, "-m", "ganforge.sweep.trial", trial.spec.to_json()],
                                    stdout=slot.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env=child_environment(len(share)), preexec_fn=setup)


def _finish(slot: Slot) -> Trial:
    assert slot.process is not None and slot.trial is not None
    trial = slot.trial
    trial.returncode = slot.process.returncode
    if slot.log is not None:
        slot.log.close()
    slot.process, slot.trial, slot.log = None, None, None
    return trial


def _stop_all(slots: list[Slot], grace_s: float = 30.0) -> None:
    """On the way out (Ctrl-C, an error): wait for the trials, which save a checkpoint and stop
    (they got the terminal's SIGINT; SIGTERM otherwise), then kill what is left."""
    running = [s for s in slots if s.process is not None]
    for slot in running:
        assert slot.process is not None
        if slot.process.poll() is None:
            slot.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for slot in running:
        assert slot.process is not None
        try:
            slot.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            slot.process.kill()
            slot.process.wait()
        _finish(slot)


def run_shared(trials: dict[str, Trial], grid: Any, workers: int,
               on_progress: Callable[[Progress], None] | None = None, cores: list[int] | None = None) -> list[Trial]:
    """Take trials from the study behind ``grid`` (:class:`ganforge.sweep.shared.SharedGrid`),
    ``workers`` at a time, until no cell waits or runs anywhere; ``trials`` maps each cell to its
    trial here. Returns those that failed here.

    With nothing left to take while other workers' trials run, the worker waits for them rather
    than leave: one of them may belong to a worker that was killed, and once its heartbeat is stale
    this worker fails it and runs its cell (from its checkpoint where the run folder is shared).
    A trial stopped by Ctrl-C is failed in the study; the next start of the sweep enqueues its
    cell again."""
    from ganforge.sweep.shared import Taken
    from ganforge.tune.study import HEARTBEAT_S

    slots = [Slot(share) for share in core_slices(workers, cores)]
    taken: dict[int, Taken] = {}  # slot index -> the study's trial it runs
    failed: list[Trial] = []
    counts = grid.counts()
    looked = beaten = time.monotonic()
    exhausted = False

    def report() -> None:
        if on_progress is not None:
            running = [s.trial for s in slots if s.trial is not None]
            elsewhere = counts["running"] - len(taken)
            done = [t for t in trials.values() if t.done]
            on_progress(Progress(len(trials), max(counts["complete"], len(done)), len(failed),
                                 sum(t.steps for t in done) + sum(t.steps_done() for t in running if not t.done),
                                 sum(t.steps for t in trials.values()),
                                 [t.label + f" seed {t.seed}" for t in running]
                                 + ([f"{elsewhere} on other workers"] if elsewhere > 0 else [])))

    try:
        while True:
            for i, slot in enumerate(slots):
                if slot.process is None and not exhausted:
                    got = grid.take()
                    if got is None:
                        exhausted = True
                        continue
                    taken[i] = got
                    _start(slot, trials[got.cell])
            for i, slot in enumerate(slots):
                if slot.process is not None and slot.process.poll() is not None:
                    trial = _finish(slot)
                    ok = trial.returncode == 0 and trial.done
                    grid.finish(taken.pop(i), trial.out, read_result(trial.out) if ok else None, trial.returncode)
                    if not ok:
                        failed.append(trial)
                    looked = 0.0  # look at the study now: the grid may be done
            now = time.monotonic()
            if now - beaten >= HEARTBEAT_S:
                for got in taken.values():
                    grid.beat(got)
                beaten = now
            if now - looked >= HEARTBEAT_S:
                counts, looked = grid.counts(), now
                if exhausted and counts["running"] > len(taken) and grid.take_over():
                    counts = grid.counts()  # a dead worker's trial waits again
                if counts["waiting"]:
                    exhausted = False
                elif exhausted and not taken and not counts["running"]:
                    break
            report()
            time.sleep(POLL_S)
    finally:
        stopped = [(i, s.trial) for i, s in enumerate(slots) if s.trial is not None]
        _stop_all(slots)
        for i, trial in stopped:
            if i in taken and trial is not None:
                grid.finish(taken.pop(i), trial.out, read_result(trial.out) if trial.done else None,
                            trial.returncode)
    counts = grid.counts()
    report()
    return failed
