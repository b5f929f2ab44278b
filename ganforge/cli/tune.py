"""``ganforge tune``: hyperparameter search with Optuna, pruning poor trials early.

The logic lives in :mod:`ganforge.tune` (space, objective, study, best.toml); this module gathers
the arguments and prints the outcome. Optuna is an optional extra: ``pip install 'ganforge[tune]'``.
"""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ganforge.cli.args import non_negative_int
    from ganforge.cli.sweep import add_run_flags
    from ganforge.sweep.grid import NOT_VARIED

    p = sub.add_parser("tune", help="search settings with Optuna, pruning poor trials early",
                       description="Search run settings and component options with Optuna. Each trial trains "
                                   "a run per seed; its --eval-every evaluations of --objective go to Optuna, "
                                   "whose pruner stops poor trials early. The best trial is written as "
                                   "best.toml for `ganforge run --config`. Workers started with the same command "
                                   "and --storage join one study, on one machine or many.")
    p.add_argument("--out", required=True, metavar="DIR", help="the search's folder: runs, study.db, best.toml")
    p.add_argument("--search", action="append", default=[], metavar="KEY=LOW..HIGH[:log|:int]",
                   help="a setting or option to search, e.g. lr_g=1e-5..1e-3:log, loss.r1=0..10 or "
                        "loss=nonsat,rpgan (repeatable)")
    p.add_argument("--trials", type=non_negative_int, default=20, metavar="N",
                   help="trials in the study, over all workers (default 20)")
    p.add_argument("--objective", required=True, metavar="METRIC",
                   help="the evaluation key to optimise, e.g. fid, high_quality or recall (eval/NAME in "
                        "metrics.jsonl)")
    p.add_argument("--direction", choices=("minimize", "maximize"),
                   help="default: maximize for counts and shares (modes, high_quality, recall, ...), else minimize")
    p.add_argument("--pruner", choices=("median", "hyperband", "none"), default="median",
                   help="Optuna's pruner (default median)")
    p.add_argument("--startup-trials", type=non_negative_int, default=5, metavar="N",
                   help="the median pruner prunes nothing before N trials finished (default 5)")
    p.add_argument("--seeds", metavar="K|S1,S2", default="1",
                   help="seeds per trial, its score their mean: a count (0..K-1) or a list (default 1)")
    p.add_argument("--storage", metavar="URL", help="the study's database, e.g. postgresql://user@host/db "
                                                    "(default: sqlite in --out)")
    p.add_argument("--study", default="ganforge", metavar="NAME", help="the study's name (default ganforge)")
    p.add_argument("--enqueue", action="append", default=[], metavar="KEY=VALUE,...",
                   help="a trial to run before the sampler's, with these values of searched keys, e.g. the "
                        "recipe's own (lr_g=1e-4,lr_d=1e-4): the search is then compared with them under the "
                        "same protocol (repeatable; Optuna's enqueue_trial; a new study only)")
    p.add_argument("--sampler-seed", type=non_negative_int, default=None, metavar="S",
                   help="seed of Optuna's TPE sampler (one worker: the same trials every time)")
    add_run_flags(p, NOT_VARIED)
    p.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    import logging
    from pathlib import Path

    from rich.console import Console

    from ganforge.cli.run import given_from_args
    from ganforge.errors import UsageError
    from ganforge.plugins import load_registry
    from ganforge.resolve import resolve_settings
    from ganforge.sweep.grid import parse_seeds
    from ganforge.tune import study as studies
    from ganforge.tune.objective import Objective
    from ganforge.tune.space import parse_enqueue, parse_search

    console = Console(stderr=True, highlight=False)
    optuna = studies.require_optuna()
    if not args.search:
        raise UsageError("ganforge tune needs at least one --search KEY=LOW..HIGH (e.g. --search lr_g=1e-5..1e-3:log)")
    if args.trials < 1:
        raise UsageError("--trials must be at least 1")
    params = [parse_search(text) for text in args.search]
    seeds = parse_seeds(args.seeds)
    _, registry = load_registry()
    base = given_from_args(args, registry)
    folder = Path(args.out)
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"--out {folder} is a file, not a folder; choose another --out")
    probe = resolve_settings({**base, "out": str(folder / "probe"), "seed": seeds[0]}, registry)
    if not probe.eval_every:  # the pruner needs intermediate values: evaluate ten times a run
        base["eval_every"] = max(1, probe.steps // 10)
        console.print(f"--eval-every not given: evaluating every {base['eval_every']} steps")
    eval_every = int(base.get("eval_every") or probe.eval_every)
    objective = "eval/" + args.objective.removeprefix("eval/")
    direction = args.direction or studies.default_direction(objective)
    folder.mkdir(parents=True, exist_ok=True)
    url = studies.storage_url(folder, args.storage)
    pruner = studies.make_pruner(args.pruner, eval_every, probe.steps * len(seeds), args.startup_trials)
    sampler = optuna.samplers.TPESampler(seed=args.sampler_seed)
    optuna.logging.set_verbosity(logging.WARNING)
    study = studies.open_study(url, args.study, direction, pruner, sampler)
    console.print(f"[bold]ganforge tune[/]: {direction} {objective} over {'; '.join(p.describe() for p in params)}; "
                  f"{args.trials} trials, {len(seeds)} seed(s) each, {args.pruner} pruner; study {args.study!r} "
                  f"in {url.split('@')[-1]}")
    enqueued = [parse_enqueue(text, params) for text in args.enqueue]
    if enqueued and not study.get_trials(deepcopy=False):  # a worker joining a running study adds none
        for values in enqueued:
            study.enqueue_trial(values, skip_if_exists=True)
    run = Objective(base, params, objective, seeds, folder, probe.steps, args.pruner)

    def said(study_: object, trial: Any) -> None:
        value = "" if trial.value is None else f" {objective} = {trial.value:.4g}"
        why = f" ({trial.user_attrs['pruned']})" if "pruned" in trial.user_attrs else ""
        console.print(f"trial {trial.number} {trial.state.name.lower()}{value} {trial.params}{why}", markup=False)

    done = optuna.study.MaxTrialsCallback(args.trials, states=(optuna.trial.TrialState.COMPLETE,
                                                               optuna.trial.TrialState.PRUNED,
                                                               optuna.trial.TrialState.RUNNING))
    _optimize_until_done(study, optuna, args.trials, lambda: study.optimize(run, n_trials=args.trials,
                                                                             callbacks=[done, said], catch=()), console)
    result = studies.outcome(study, probe.steps * len(seeds))
    studies.write_trials_csv(study, folder / "trials.csv")
    best = studies.write_best(study, folder, objective, seeds)
    saved = 1 - result.steps_run / result.steps_full if result.steps_full else 0.0
    print(f"{result.complete} complete, {result.pruned} pruned, {result.failed} failed; steps trained "
          f"{result.steps_run:,} of {result.steps_full:,} without pruning ({100 * saved:.0f}% saved)")
    for trial in study.get_trials(deepcopy=False):
        if "fixed_params" in trial.system_attrs:  # an --enqueue trial: what the search is compared with
            value = "-" if trial.value is None else f"{trial.value:.6g}"
            print(f"enqueued: trial {trial.number} ({trial.state.name.lower()}), {objective} = {value}, {trial.params}")
    if result.best is not None:
        print(f"best: trial {result.best.number}, {objective} = {result.best.value:.6g}, {result.best.params}")
        print(f"wrote {best}  (ganforge run --config {best} --out DIR reproduces it)")
    print(f"wrote {folder / 'trials.csv'}")
    return 0 if result.best is not None else 1


def _optimize_until_done(study, optuna, trials: int, optimize, console) -> None:
    """Run trials until the study has ``trials`` finished ones, counting every worker's.

    Optuna's stop rule (``MaxTrialsCallback``) counts the trials running on other workers, so that
    the workers together do not overshoot; but a trial whose worker was killed stays RUNNING. So a
    worker that has stopped waits while other workers' trials run, and once a dead worker's
    heartbeat is ``GRACE_S`` seconds old fails its trial, which the retry callback puts back as a
    waiting trial with the same settings, and runs it."""
    import time

    from optuna.storages import fail_stale_trials

    from ganforge.tune.study import GRACE_S, HEARTBEAT_S

    State = optuna.trial.TrialState
    told = False
    while True:
        states = [t.state for t in study.get_trials(deepcopy=False)]
        count = {state: states.count(state) for state in (State.COMPLETE, State.PRUNED, State.RUNNING, State.WAITING)}
        finished = count[State.COMPLETE] + count[State.PRUNED]
        if finished >= trials:
            return
        if finished + count[State.RUNNING] < trials or count[State.WAITING]:
            optimize()
            continue
        if not told:
            console.print(f"waiting for {count[State.RUNNING]} trial(s) running on other workers (one whose worker "
                          f"died runs here again once its heartbeat is {GRACE_S} s old)")
            told = True
        time.sleep(HEARTBEAT_S)
        fail_stale_trials(study)
