"""The Optuna study behind ``ganforge tune``: its storage, pruner and sampler, the loop, the result.

Storage is an SQLite file in the tune folder unless ``--storage`` names a database (PostgreSQL,
MySQL): then every worker started with the same command, on this machine or another, joins the
one study, and Optuna hands each a different trial. Workers keep a heartbeat; a trial whose worker
died is failed after ``GRACE_S`` seconds and retried once with the same settings.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ganforge.errors import UsageError

HEARTBEAT_S = 5
GRACE_S = 20
STUDY_FILE = "study.db"
BEST_FILE = "best.toml"
MAXIMIZED = {"modes", "high_quality", "precision", "recall", "density", "coverage", "is", "legible",
             "stacked_modes", "accuracy", "rarest_digit"}
"""Metric keys where more is better; every other objective is minimised unless --direction says."""


def require_optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise UsageError("ganforge tune needs Optuna: pip install 'ganforge[tune]' (or make install)") from None
    return optuna


def default_direction(objective: str) -> str:
    return "maximize" if objective.removeprefix("eval/") in MAXIMIZED else "minimize"


def storage_url(folder: Path, storage: str | None) -> str:
    return storage or f"sqlite:///{(folder / STUDY_FILE).resolve()}"


def open_storage(url: str, on_stale: Any, serialize_sqlite: bool = False) -> Any:
    """Optuna's database storage at ``url``, with a heartbeat every ``HEARTBEAT_S`` seconds: a
    trial whose worker died is failed ``GRACE_S`` seconds after its last beat and handed to
    ``on_stale`` (a ``heartbeat_stale_trial_callback``). A missing driver or an unreachable
    database is one line, not a traceback.

    ``serialize_sqlite``: give every SQLite transaction the write lock from its start (``BEGIN
    IMMEDIATE``). Python's sqlite3 begins a transaction only at its first write, so Optuna's
    check-then-set of a trial's state (how a waiting trial is handed to one worker) is not atomic
    on SQLite otherwise, and two processes can take the same trial."""
    import time
    import warnings

    optuna = require_optuna()
    from optuna.storages import RDBStorage

    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    for attempt in range(5):
        try:
            storage = RDBStorage(url, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S,
                                 heartbeat_stale_trial_callback=on_stale)
            break
        except ImportError as exc:  # the database's driver
            raise UsageError(f"--storage {url.split(':', 1)[0]}: its Python driver is missing ({exc}); for "
                             f"PostgreSQL: pip install psycopg2-binary") from None
        except Exception as exc:  # sqlalchemy's errors: one line, not a traceback
            # two workers created the tables at once and the other one won: PostgreSQL says
            # "already exists" / "duplicate key", SQLite "UNIQUE constraint failed" or "locked"
            if attempt < 4 and any(words in str(exc) for words in ("already exists", "duplicate key", "locked",
                                                                   "UNIQUE constraint failed")):
                time.sleep(0.5 + attempt)
                continue
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise UsageError(f"cannot open the study's storage {url}: {first}") from None
    if serialize_sqlite and storage.engine.name == "sqlite":
        _serialize_sqlite(storage.engine)
    return storage


def _serialize_sqlite(engine: Any) -> None:
    """SQLAlchemy's recipe for transactions that really begin at ``BEGIN`` with pysqlite: the
    driver's own transaction handling off, and ``BEGIN IMMEDIATE`` on every begin."""
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _autocommit_driver(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin_immediate(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    engine.dispose()  # pooled connections made before the listeners


def open_study(url: str, name: str, direction: str, pruner: Any, sampler: Any) -> Any:
    """Create the study, or join it (the same command on another machine, or after a stop)."""
    optuna = require_optuna()
    from optuna.storages import RetryHeartbeatStaleTrialCallback

    # serialised on SQLite too: a retried trial is handed out as a waiting one, by a check-then-set
    storage = open_storage(url, RetryHeartbeatStaleTrialCallback(max_retry=1, inherit_intermediate_values=True),
                           serialize_sqlite=True)
    study = optuna.create_study(storage=storage, study_name=name, direction=direction, pruner=pruner,
                                sampler=sampler, load_if_exists=True)
    if study.direction.name.lower() != direction:
        raise UsageError(f"study {name!r} in {url} was created to {study.direction.name.lower()}; this command "
                         f"asks to {direction} (--direction, or another --study)")
    return study


def retried_number(trial: Any) -> int | None:
    """The number of the trial that ``trial`` retries (its worker died), or ``None``."""
    from optuna.storages import RetryHeartbeatStaleTrialCallback

    frozen = next(t for t in trial.study.get_trials(deepcopy=False) if t.number == trial.number)
    return RetryHeartbeatStaleTrialCallback.retried_trial_number(frozen)


def make_pruner(name: str, eval_every: int, max_resource: int, startup: int) -> Any:
    optuna = require_optuna()
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=startup, n_warmup_steps=0)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=eval_every, max_resource=max_resource, reduction_factor=3)
    return optuna.pruners.NopPruner()


@dataclass
class Outcome:
    complete: int
    pruned: int
    failed: int
    steps_run: int
    steps_full: int  # every finished or pruned trial run to its last step, over every seed
    best: Any  # optuna's FrozenTrial, or None


def outcome(study: Any, steps_per_trial: int) -> Outcome:
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    done = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    complete = [t for t in done if t.state == TrialState.COMPLETE]
    best = study.best_trial if complete else None
    return Outcome(len(complete), len(done) - len(complete), sum(t.state == TrialState.FAIL for t in trials),
                   sum(int(t.user_attrs.get("steps_run", 0)) for t in done), steps_per_trial * len(done), best)


def write_best(study: Any, folder: Path, objective: str, seeds: list[int]) -> Path | None:
    """The best trial's settings as a TOML config (seed: the first of its seeds)."""
    from ganforge.run.checkpoint import write_text_atomic
    from ganforge.tune.best import config_toml

    result = outcome(study, 0)
    if result.best is None:
        return None
    best = result.best
    config = dict(best.user_attrs["config"])
    scores = best.user_attrs.get("scores", [])
    header = (f"The best trial of study {study.study_name!r}: trial {best.number}, {objective} = {best.value:.6g}\n"
              f"(the mean over seeds {', '.join(map(str, seeds))}: {', '.join(f'{s:.6g}' for s in scores)}).\n"
              f"Searched: {json.dumps(best.params)}\n"
              f"`ganforge run --config best.toml --out DIR` trains its seed {config['seed']} run again, step for "
              f"step;\n"
              f"add --seed S for its other seeds. Its run folders: {', '.join(best.user_attrs.get('runs', []))}")
    path = folder / BEST_FILE
    write_text_atomic(path, config_toml(config, header))
    return path


def write_trials_csv(study: Any, path: Path) -> None:
    import csv
    import io

    from ganforge.run.checkpoint import write_text_atomic

    trials = study.get_trials(deepcopy=False)
    keys = sorted({k for t in trials for k in t.params})
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["trial", "state", "value", *keys, "steps_run", "pruned"])
    for t in trials:
        writer.writerow([t.number, t.state.name, "" if t.value is None else repr(t.value),
                         *(t.params.get(k, "") for k in keys), t.user_attrs.get("steps_run", ""),
                         t.user_attrs.get("pruned", "")])
    write_text_atomic(path, buffer.getvalue())
