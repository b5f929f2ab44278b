"""A sweep's grid in an Optuna study, so that workers on several machines split it.

``ganforge sweep ... --storage URL`` puts every trial of the grid (setting x seed, a *cell*) in
the study as a waiting trial (``Study.enqueue_trial``), with the cell in its user attributes. Each
worker takes the next waiting trial (the storage's atomic WAITING -> RUNNING change, the one
``Study.ask`` makes; ``ask`` itself would create a new trial when none waits), runs it into the
sweep's folder layout and tells the study its metrics. Any worker builds the report from the
study's complete trials.

Two workers starting at once may both enqueue a cell. That is harmless: a worker that takes a
trial whose cell is complete, or has a waiting or running trial of a lower number, fails it as a
duplicate and takes the next one, so each cell runs once.

Storage and heartbeat are ``ganforge tune``'s (:func:`ganforge.tune.study.open_storage`): a
running trial beats every ``HEARTBEAT_S`` seconds; a trial whose worker died (kill -9, a lost
machine) is failed ``GRACE_S`` seconds after its last beat by the next worker that looks, and its
cell waits again (Optuna's ``RetryHeartbeatStaleTrialCallback``). A worker with nothing left to
take keeps looking while other workers' trials run, so the workers still alive finish the grid.
"""

from __future__ import annotations

import json
import math
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ganforge.errors import UsageError
from ganforge.sweep.trial import measured_values

DEFAULT_STUDY = "sweep"
CELL = "cell"  # user attribute: "POINT-SLUG/seed-S"
PLAN = "sweep_plan"  # study user attribute: the plan, as sweep.json holds it


def cell_key(slug: str, seed: int) -> str:
    return f"{slug}/seed-{seed}"


@dataclass
class Taken:
    """A trial this worker took from the study."""

    number: int
    trial_id: int
    cell: str


def open_grid(url: str, name: str, plan: dict[str, Any]) -> Any:
    """Create or join the study ``name`` at ``url``, refusing one that holds another sweep."""
    from ganforge.tune.study import open_storage, require_optuna

    optuna = require_optuna()
    import warnings

    from optuna.storages import RetryHeartbeatStaleTrialCallback

    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = open_storage(url, RetryHeartbeatStaleTrialCallback(), serialize_sqlite=True)
    study = optuna.create_study(storage=storage, study_name=name, direction="minimize", load_if_exists=True)
    wanted = json.loads(json.dumps(plan))
    if isinstance(wanted.get("base"), dict):  # each machine may keep its runs in its own --out
        wanted["base"].pop("out", None)
    recorded = study.user_attrs.get(PLAN)
    if recorded is None:
        study.set_user_attr(PLAN, wanted)
        recorded = optuna.load_study(study_name=name, storage=storage).user_attrs.get(PLAN)
    if recorded != wanted:
        differs = sorted(k for k in wanted if recorded.get(k) != wanted.get(k))
        raise UsageError(f"study {name!r} in {shown(url)} holds another sweep (its {', '.join(differs)} differ "
                         f"from this command's); run the command that started it, or choose another --study")
    return study


def shown(url: str) -> str:
    """The storage URL without its user and password."""
    scheme, sep, rest = url.partition("://")
    return f"{scheme}{sep}{rest.split('@')[-1]}"


class SharedGrid:
    """The study's side of a sweep: fill the queue, take a trial, beat, tell."""

    def __init__(self, study: Any, cells: list[str]) -> None:
        self.study = study
        self.storage = study._storage
        self.cells = cells
        self.host = socket.gethostname()

    def trials(self, states: tuple[Any, ...] | None = None) -> list[Any]:
        return list(self.study.get_trials(deepcopy=False, states=states))

    def fill(self) -> tuple[int, int]:
        """Fail the trials of dead workers (their cells wait again), then enqueue every cell that
        has no waiting, running or complete trial. Returns (cells taken over, cells enqueued)."""
        from optuna.trial import TrialState

        retried = self.take_over()
        live = {t.user_attrs.get(CELL) for t in self.trials((TrialState.WAITING, TrialState.RUNNING,
                                                             TrialState.COMPLETE))}
        added = 0
        for cell in self.cells:
            if cell not in live:
                self.study.enqueue_trial({}, user_attrs={CELL: cell})
                added += 1
        return max(0, retried), added

    def take_over(self) -> int:
        """Fail the running trials whose worker stopped beating ``GRACE_S`` seconds ago (kill -9, a
        lost machine); Optuna's retry callback puts each one's cell back as a waiting trial.
        Returns how many cells wait again."""
        from optuna.storages import fail_stale_trials
        from optuna.trial import TrialState

        before = len(self.trials((TrialState.WAITING,)))
        fail_stale_trials(self.study)
        return max(0, len(self.trials((TrialState.WAITING,))) - before)

    def take(self) -> Taken | None:
        """The next waiting trial of a cell that nobody else runs or ran, now RUNNING for this
        worker; ``None`` when none waits."""
        from optuna.exceptions import UpdateFinishedTrialError
        from optuna.trial import TrialState

        while True:
            waiting = sorted(self.trials((TrialState.WAITING,)), key=lambda t: t.number)
            if not waiting:
                return None
            for frozen in waiting:
                try:
                    if not self.storage.set_trial_state_values(frozen._trial_id, state=TrialState.RUNNING):
                        continue  # another worker took it
                except UpdateFinishedTrialError:
                    continue
                self.storage.record_heartbeat(frozen._trial_id)
                taken = Taken(frozen.number, frozen._trial_id, str(frozen.user_attrs.get(CELL)))
                if taken.cell not in self.cells:
                    self._drop(taken, "its cell is not in this sweep's grid")
                    break
                first = self._first_live(taken.cell)
                if first is not None and first != taken.number:
                    self._drop(taken, f"a duplicate of trial {first}")
                    break
                self.storage.set_trial_user_attr(frozen._trial_id, "host", self.host)
                self.storage.set_trial_user_attr(frozen._trial_id, "worker", f"{self.host}:{os.getpid()}")
                return taken
            # taken and dropped, or every trial went to other workers: look again

    def _first_live(self, cell: str) -> int | None:
        """The trial that owns ``cell``: a complete one, else the lowest waiting or running one."""
        from optuna.trial import TrialState

        mine = [t for t in self.trials() if t.user_attrs.get(CELL) == cell]
        complete = [t.number for t in mine if t.state == TrialState.COMPLETE]
        if complete:
            return min(complete)
        live = [t.number for t in mine if t.state in (TrialState.WAITING, TrialState.RUNNING)]
        return min(live) if live else None

    def _drop(self, taken: Taken, why: str) -> None:
        from optuna.trial import TrialState

        self.storage.set_trial_user_attr(taken.trial_id, "skipped", why)
        self.study.tell(taken.number, state=TrialState.FAIL, skip_if_finished=True)

    def beat(self, taken: Taken) -> None:
        self.storage.record_heartbeat(taken.trial_id)

    def finish(self, taken: Taken, out: Path, record: dict[str, Any] | None, returncode: int | None) -> None:
        """Tell the study the trial's metrics (COMPLETE), or that it failed (FAIL, with its exit code)."""
        from optuna.trial import TrialState

        set_attr = self.storage.set_trial_user_attr
        set_attr(taken.trial_id, "run", str(out))
        if record is None:
            set_attr(taken.trial_id, "exit", returncode)
            self.study.tell(taken.number, state=TrialState.FAIL, skip_if_finished=True)
            return
        values = measured_values(record)
        set_attr(taken.trial_id, "values", {k: (v if math.isfinite(v) else str(v)) for k, v in values.items()})
        self.study.tell(taken.number, 0.0, skip_if_finished=True)  # the value is unused: the metrics are above

    def results(self) -> dict[str, tuple[str, dict[str, float]]]:
        """Each cell's complete trial: its run folder and its metrics."""
        from optuna.trial import TrialState

        out: dict[str, tuple[str, dict[str, float]]] = {}
        for t in sorted(self.trials((TrialState.COMPLETE,)), key=lambda t: t.number):
            cell = t.user_attrs.get(CELL)
            if cell in self.cells and cell not in out:
                where = t.user_attrs.get("run", "")
                host = t.user_attrs.get("host")
                run = f"{host}:{where}" if host and host != self.host else where
                out[cell] = (run, {k: float(v) for k, v in t.user_attrs.get("values", {}).items()})
        return out

    def counts(self) -> dict[str, int]:
        """Cells by where they stand: complete, running, waiting, failed (none of the others)."""
        from optuna.trial import TrialState

        by_cell: dict[str, set[str]] = {cell: set() for cell in self.cells}
        for t in self.trials():
            cell = t.user_attrs.get(CELL)
            if cell in by_cell and "skipped" not in t.user_attrs:
                by_cell[cell].add(t.state.name)
        counts = {"complete": 0, "running": 0, "waiting": 0, "failed": 0}
        for states in by_cell.values():
            if TrialState.COMPLETE.name in states:
                counts["complete"] += 1
            elif TrialState.RUNNING.name in states:
                counts["running"] += 1
            elif TrialState.WAITING.name in states:
                counts["waiting"] += 1
            else:
                counts["failed"] += 1
        return counts
