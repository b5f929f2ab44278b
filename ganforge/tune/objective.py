"""One Optuna trial of ``ganforge tune``: draw the settings, train a run per seed, score it.

Each run's ``--eval-every`` evaluations go to Optuna as intermediate values (step ``k * steps +
step`` for the k-th seed, so the pruner compares like with like); when the pruner says stop, the
run saves a checkpoint, writes ``pruned.json`` (why it stopped) and the trial ends as pruned. The
score is the objective's last evaluation, averaged over the seeds.

A trial whose worker died (kill -9, a lost machine) is failed by Optuna's heartbeat and retried
with the same settings; the retry continues the dead trial's run folders from their checkpoints.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ganforge.config import merge_settings
from ganforge.hookspecs import hookimpl
from ganforge.run.checkpoint import write_text_atomic
from ganforge.tune.space import Param
from ganforge.tune.study import retried_number

PRUNED_FILE = "pruned.json"


class Pruned(Exception):
    """Raised from the evaluation hook when Optuna's pruner stops the trial."""


class Reporter:
    """A plugin on the evaluation hook: hands the objective's value to Optuna, asks its pruner."""

    def __init__(self, trial: Any, key: str, offset: int, pruner: str) -> None:
        self.trial, self.key, self.offset, self.pruner = trial, key, offset, pruner
        self.last: float | None = None
        self.step = 0

    @hookimpl
    def ganforge_on_eval(self, run: Any, step: int, results: dict[str, float]) -> None:
        if self.key not in results:
            from ganforge.errors import ConfigError

            raise ConfigError(f"--objective {self.key.removeprefix('eval/')}: the evaluation gave "
                              f"{', '.join(k.removeprefix('eval/') for k in results)}; name one of them "
                              f"(or add --eval-metric for the metric that reports it)")
        value, self.step = float(results[self.key]), step
        self.last = value
        self.trial.report(value, self.offset + step)
        if step < run.config.steps and self.trial.should_prune():  # at the last step it is done: score it
            record = {"step": step, "objective": self.key, "value": value, "pruner": self.pruner,
                      "trial": self.trial.number, "reason": self.reason(step, value)}
            write_text_atomic(Path(run.folder.root) / PRUNED_FILE, json.dumps(record, indent=2) + "\n")
            raise Pruned(record["reason"])

    def reason(self, step: int, value: float) -> str:
        """Why the pruner stopped it, in words: for the median pruner, the median it compared with
        (Optuna's: over the completed trials' values at this step)."""
        import optuna

        head = f"{self.pruner} pruner stopped it at step {step}: {self.key} = {value:.4g}"
        if self.pruner != "median":
            return head + " (below the share of its Hyperband bracket that goes on)"
        at = self.offset + step
        complete = [t.intermediate_values[at] for t in self.trial.study.get_trials(
            deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)) if at in t.intermediate_values]
        if not complete:
            return head
        better = "higher" if self.trial.study.direction == optuna.study.StudyDirection.MAXIMIZE else "lower"
        return (head + f"; the median of the {len(complete)} completed trials here was "
                       f"{statistics.median(complete):.4g} ({better} is better)")


def _pruned(exc: BaseException) -> Pruned | None:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, Pruned):
            return seen
        seen = seen.__cause__
    return None


@dataclass
class Objective:
    """``Objective(...)(trial)``: what ``study.optimize`` calls."""

    base: dict[str, Any]
    params: list[Param]
    objective: str  # the metrics.jsonl key, eval/NAME
    seeds: list[int]
    folder: Path
    steps: int
    pruner: str
    steps_run: dict[int, int] = field(default_factory=dict)

    def run_dir(self, number: int, seed: int) -> Path:
        return self.folder / "trials" / f"trial-{number:04d}" / f"seed-{seed}"

    def __call__(self, trial: Any) -> float:
        import optuna

        from ganforge.plugins import build_registry, get_plugin_manager
        from ganforge.resolve import resolve_settings
        from ganforge.train.trainer import Trainer

        given = dict(self.base)
        for param in self.params:
            given = merge_settings(given, param.overlay(param.suggest(trial)))
        retried = retried_number(trial)
        number = trial.number if retried is None else retried  # a retry continues the dead trial's runs
        scores, ran = [], 0
        for k, seed in enumerate(self.seeds):
            out = self.run_dir(number, seed)
            reporter = Reporter(trial, self.objective, k * self.steps, self.pruner)
            pm = get_plugin_manager(extra=[reporter])
            registry = build_registry(pm)
            config = resolve_settings({**given, "seed": seed, "out": str(out),
                                       "resume": (out / "checkpoints" / "latest").is_file()}, registry)
            if k == 0:
                trial.set_user_attr("config", json.loads(json.dumps(config.to_dict())))
                trial.set_user_attr("runs", [str(self.run_dir(number, s)) for s in self.seeds])
            trainer = Trainer(config, registry=registry, plugin_manager=pm)
            try:
                trainer.fit()
            except Exception as exc:
                stop = _pruned(exc)
                if stop is None:
                    raise
                trial.set_user_attr("steps_run", ran + trainer.step)
                trial.set_user_attr("pruned", str(stop))
                raise optuna.TrialPruned(str(stop)) from None
            ran += trainer.step
            if reporter.last is None:
                raise RuntimeError(f"run {out} made no evaluation; --eval-every must be > 0")
            scores.append(reporter.last)
        trial.set_user_attr("steps_run", ran)
        trial.set_user_attr("scores", scores)
        return statistics.fmean(scores)
