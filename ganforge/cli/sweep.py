"""``ganforge sweep``: a grid of settings over seeds, each trial an ordinary run, with honest statistics.

The logic lives in :mod:`ganforge.sweep` (grid, plan, trial runner, statistics, report files);
this module gathers the arguments, shows progress and prints the tables.
"""

from __future__ import annotations

import argparse
import math
from typing import TYPE_CHECKING

from ganforge.settings import CLI_ONLY, SETTINGS, flag_help, text_to

if TYPE_CHECKING:
    from ganforge.sweep.report import Report


def add_run_flags(p: argparse.ArgumentParser, owned: tuple[str, ...]) -> None:
    """``ganforge run``'s flags, less those a sweep or a search owns (seed, out, resume)."""
    p.add_argument("--config", metavar="FILE", help=CLI_ONLY["--config"])
    for setting in SETTINGS:
        option = setting.option
        if option is None or setting.name in owned:
            continue
        if setting.kind == "bool":
            p.add_argument(option, dest=setting.name, action="store_true", default=None, help=flag_help(setting))
        elif setting.kind == "names":
            p.add_argument(option, dest=setting.name, action="append", metavar="NAME", help=flag_help(setting))
        else:
            metavar = ("|".join(setting.choices) if setting.choices
                       else {"int": "N", "float": "X", "threads": "auto|N"}.get(setting.kind, "NAME"))
            p.add_argument(option, dest=setting.name, type=text_to(setting.kind, option), metavar=metavar,
                           help=flag_help(setting))
    p.add_argument("--set", dest="assignments", action="append", default=[], metavar="KEY=VALUE",
                   help=CLI_ONLY["--set"])


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ganforge.cli.args import non_negative_int
    from ganforge.sweep.grid import NOT_VARIED

    p = sub.add_parser("sweep", help="run a grid of settings over seeds and compare them",
                       description="Run every combination of the --vary values once per seed, each as an ordinary "
                                   "run folder inside --out, evaluate each, and report per setting the mean, "
                                   "standard error and bootstrap 95%% interval of every metric, and each setting "
                                   "against the baseline (difference, its interval, Welch's t, Mann-Whitney U). "
                                   "The same command continues a stopped sweep.")
    p.add_argument("--out", required=True, metavar="DIR", help="the sweep's folder (the same one continues it)")
    p.add_argument("--vary", action="append", default=[], metavar="KEY=V1,V2",
                   help="a setting or component option and its values, e.g. loss=nonsat,rpgan, lr_g=1e-4,2e-4 or "
                        "disc.pack=1,2 (repeatable: every combination runs)")
    p.add_argument("--point", action="append", default=[], metavar="KEY=V,KEY=V",
                   help="one setting given whole, e.g. a tuned trial's lr_g=3e-4,lr_d=1e-4 against the recipe's "
                        "lr_g=1e-4,lr_d=1e-4 (repeatable; each is crossed with the --vary axes, if any)")
    p.add_argument("--grid", metavar="FILE",
                   help="a TOML file with a [vary] table of lists and/or [[points]] tables (and seeds, baseline)")
    p.add_argument("--seeds", metavar="N|S1,S2", help="seeds per setting: a count (0..N-1) or a list (default 3)")
    p.add_argument("--metric", dest="metrics", action="append", metavar="NAME",
                   help="metric to evaluate each trial with (repeatable; default: every one that applies)")
    p.add_argument("-n", type=non_negative_int, default=None,
                   help="generated samples per evaluation (default: the data's, 2,500 for 2-D data)")
    p.add_argument("--baseline", metavar="KEY=VALUE", help="the setting the others are compared with, e.g. "
                                                           "loss=nonsat (default: the first)")
    p.add_argument("--workers", type=non_negative_int, default=1, metavar="N",
                   help="trials at once, each on its own share of the cores (default 1)")
    p.add_argument("--storage", metavar="URL",
                   help="an Optuna study's database (sqlite:///FILE or postgresql://user@host/db, as ganforge tune "
                        "takes it): the grid goes in the study, and every worker started with the same command, "
                        "on this machine or another, takes the next trial nobody has started")
    p.add_argument("--study", default=None, metavar="NAME",
                   help="the study's name with --storage (default sweep)")
    add_run_flags(p, NOT_VARIED)
    p.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from rich.console import Console

    from ganforge.cli.run import given_from_args
    from ganforge.errors import UsageError
    from ganforge.plugins import load_registry
    from ganforge.resolve import resolve_settings
    from ganforge.sweep.grid import find_point, load_grid, parse_point, parse_seeds, parse_vary
    from ganforge.sweep.plan import SweepFolder, SweepPlan
    from ganforge.sweep.runner import Trial, core_slices

    console = Console(stderr=True, highlight=False)
    try:
        import scipy  # noqa: F401  # the statistics: checked before hours of training, not after
    except ImportError:
        raise UsageError("ganforge sweep needs scipy for its statistics: pip install 'ganforge[sweep]'") from None
    _, registry = load_registry()
    for name in args.metrics or []:
        registry.get("metric", name)
    axes = [parse_vary(text) for text in args.vary]
    given_points = [parse_point(text) for text in args.point]
    extra: dict = {}
    if args.grid:
        grid_axes, extra = load_grid(args.grid)
        axes = [*grid_axes, *axes]
        given_points = [*extra.pop("points", []), *given_points]
    seeds = parse_seeds(args.seeds if args.seeds is not None else extra.get("seeds", 3))
    if args.workers < 1:
        raise UsageError("--workers must be at least 1")
    slices = core_slices(args.workers)
    base = given_from_args(args, registry)
    plan = SweepPlan(base, axes, seeds, list(args.metrics or []), args.n, given_points)
    points = plan.points
    baseline_text = args.baseline or extra.get("baseline")
    baseline = find_point(points, baseline_text) if baseline_text else points[0]
    folder = SweepFolder(args.out)
    specs = folder.specs(plan)
    steps = {}
    for point in points:  # every setting checked before any training: a bad value is one line, exit 2
        spec = next(s for p, _, s in specs if p == point)
        steps[point] = resolve_settings({**spec.given, "resume": False}, registry).steps
    if args.study is not None and not args.storage:
        raise UsageError("--study names a study on --storage; give --storage URL as well")
    grid = _open_shared(args, plan, specs) if args.storage else None
    continued = _open_folder(folder, plan, shared=grid is not None)
    trials = [Trial(point.label, seed, spec, steps[point], folder.log(point, seed)) for point, seed, spec in specs]
    if grid is not None:
        return _shared(args, grid, folder, points, baseline, specs, trials, slices, console)
    finished = sum(t.done for t in trials)
    console.print(f"[bold]ganforge sweep[/]: {len(points)} setting(s) x {len(seeds)} seed(s) = {len(trials)} trials"
                  f"{f', {finished} already finished' if continued else ''}; {args.workers} at a time on "
                  f"{len(slices[0])} core(s) each -> {folder.root}")
    failed = _run_with_progress(trials, args.workers, console)
    report = _report(folder, points, baseline, [(point, seed, spec.out) for point, seed, spec in specs])
    _print_tables(report)
    for name in ("summary.json", "summary.csv", "trials.csv", "summary.png"):
        print(f"wrote {folder.report(name)}")
    if failed:
        _print_failed(console, failed, "[bold red]{n} trial(s) failed[/]; the same command retries them. Their output:")
        return 1
    return 0


def _open_folder(folder, plan, shared: bool) -> bool:
    """``folder.open(plan)``; with --storage, workers sharing one --out may create it at the same
    moment: one writes sweep.json, and the others read it a moment later."""
    import time

    from ganforge.errors import UsageError

    for attempt in range(10):
        try:
            return bool(folder.open(plan))
        except UsageError:
            if not shared or attempt == 9 or not folder.root.is_dir():
                raise
            time.sleep(0.2)
    return False


def _open_shared(args, plan, specs):
    from ganforge.sweep.shared import DEFAULT_STUDY, SharedGrid, cell_key, open_grid

    study = open_grid(args.storage, args.study or DEFAULT_STUDY, plan.to_dict())
    return SharedGrid(study, [cell_key(point.slug, seed) for point, seed, _ in specs])


def _shared(args, grid, folder, points, baseline, specs, trials, slices, console) -> int:
    """A worker on the study's grid: take trials until none waits, then report what the study has."""
    from ganforge.sweep.shared import DEFAULT_STUDY, cell_key, shown
    from ganforge.tune.study import GRACE_S

    name = args.study or DEFAULT_STUDY
    retried, added = grid.fill()
    counts = grid.counts()
    console.print(f"[bold]ganforge sweep[/]: {len(points)} setting(s) x {len(specs) // len(points)} seed(s) = "
                  f"{len(trials)} trials in study {name!r} on {shown(args.storage)}: {counts['complete']} complete, "
                  f"{counts['running']} running elsewhere, {counts['waiting']} waiting"
                  + (f" ({added} enqueued now)" if added and added != len(trials) else "")
                  + (f", {retried} taken over from workers that stopped beating" if retried else "")
                  + f"; this worker runs {args.workers} at a time on {len(slices[0])} core(s) each -> {folder.root}")
    by_cell = {cell_key(point.slug, seed): trial for (point, seed, _), trial in zip(specs, trials, strict=True)}
    failed = _run_with_progress(list(by_cell.values()), args.workers, console,
                                shared=lambda on: _run_shared(by_cell, grid, args.workers, on))
    results = grid.results()
    report = _report_shared(folder, points, baseline, specs, results)
    _print_tables(report)
    for report_name in ("summary.json", "summary.csv", "trials.csv", "summary.png"):
        print(f"wrote {folder.report(report_name)}")
    counts = grid.counts()
    if counts["running"] or counts["waiting"]:
        console.print(f"{counts['complete']} of {len(trials)} trials complete; {counts['running']} running on other "
                      f"workers, {counts['waiting']} waiting: the table has the complete ones. Run the same command "
                      f"when they are done for the whole table. A trial whose worker died is run again by a "
                      f"worker still running or started later, once its heartbeat is {GRACE_S} s old (from its "
                      f"checkpoint where that worker sees the run folder).")
    if counts["failed"]:
        console.print(f"{counts['failed']} trial(s) failed; the same command enqueues them again.")
    if failed:
        _print_failed(console, failed, "[bold red]{n} trial(s) failed here[/]. Their output:")
        return 1
    return 0


def _print_failed(console, failed, headline: str) -> None:
    """``headline`` (``{n}``: how many failed), then each failed trial's log and its last line."""
    console.print(headline.format(n=len(failed)))
    for trial in failed:
        console.print(f"  {trial.label} seed {trial.seed} (exit {trial.returncode}): {trial.log}", markup=False)
        last = _last_line(trial.log)
        if last:
            console.print(f"    {last}", markup=False)


def _run_shared(by_cell, grid, workers, on_progress):
    from ganforge.sweep.runner import run_shared

    return run_shared(by_cell, grid, workers, on_progress)


def _report_shared(folder, points, baseline, specs, results) -> Report:
    """The report from the study's complete trials (a trial's run folder may be on another machine),
    and from run folders here that finished without telling the study (their worker died after
    the evaluation)."""
    from ganforge.sweep import report as files
    from ganforge.sweep.shared import cell_key

    found, missing = [], []
    for point, seed, spec in specs:
        cell = cell_key(point.slug, seed)
        if cell in results:
            run, values = results[cell]
            found.append(files.TrialValues(point.label, seed, run, values))
        else:
            here, _ = files.collect([(point, seed, spec.out)])
            found += here
            if not here:
                missing.append(str(spec.out))
    return _write_report(folder, files.build_report(points, baseline, found, missing))


def _last_line(path) -> str:
    """The last non-empty line of a trial's log: usually the one-line error."""
    try:
        lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return lines[-1][:300] if lines else ""


def _run_with_progress(trials, workers: int, console, shared=None) -> list:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from ganforge.sweep.runner import Progress as SweepProgress
    from ganforge.sweep.runner import run_trials

    if not console.is_terminal:  # CI, pipes: a line per finished trial
        seen = [sum(t.done for t in trials)]

        def lines(p: SweepProgress) -> None:
            if p.finished != seen[0]:
                seen[0] = p.finished
                console.print(f"sweep: {p.finished}/{p.total_trials} trials done, {p.steps_done}/{p.steps_total} "
                              f"steps" + (f", {p.failed} failed" if p.failed else ""))

        return shared(lines) if shared else run_trials(trials, workers, lines)
    with Progress(TextColumn("[bold blue]sweep"), BarColumn(), MofNCompleteColumn(), TextColumn("steps"),
                  TextColumn("{task.fields[trials]}"), TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task("sweep", total=1, trials="")

        def show(p: SweepProgress) -> None:
            running = f"; running: {', '.join(p.running)}" if p.running else ""
            failed = f", {p.failed} failed" if p.failed else ""
            bar.update(task, total=p.steps_total, completed=p.steps_done,
                       trials=f"{p.finished}/{p.total_trials} trials{failed}{running}")

        return shared(show) if shared else run_trials(trials, workers, show)


def _report(folder, points, baseline, runs) -> Report:
    from ganforge.sweep import report as files

    found, missing = files.collect(runs)
    return _write_report(folder, files.build_report(points, baseline, found, missing))


def _write_report(folder, report: Report) -> Report:
    from ganforge.sweep import report as files

    files.write_json(report, folder.report("summary.json"))
    files.write_summary_csv(report, folder.report("summary.csv"))
    files.write_trials_csv(report, folder.report("trials.csv"))
    if report.trials and report.metrics:
        files.plot(report, folder.report("summary.png"))
    return report


def fmt(value: float) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:.4g}"


def fmt_p(value: float) -> str:
    if not math.isfinite(value):
        return "-"
    return f"{value:.3f}" if value >= 0.001 else f"{value:.1e}"


def _print_tables(report: Report) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    if not console.is_terminal:  # a file or a pipe: wide enough for the comparison columns
        console = Console(highlight=False, width=130)
    for label in sorted(report.labels, key=lambda label: label != report.baseline):  # the baseline first
        is_base = label == report.baseline
        table = Table(title=f"{label}" + ("  (baseline)" if is_base else f"  vs {report.baseline}"),
                      title_justify="left")
        for column in ("metric", "n", "mean", "sem", "95% CI"):
            table.add_column(column, justify="left" if column == "metric" else "right")
        if not is_base:
            for column in ("diff", "diff 95% CI", "Welch p", "M-W p"):
                table.add_column(column, justify="right")
        for metric in report.metrics:
            s = report.summaries[label][metric]
            row = [metric, str(s.n), fmt(s.mean), fmt(s.sem), f"[{fmt(s.low)}, {fmt(s.high)}]"]
            if not is_base:
                c = report.comparisons[label][metric]
                row += [fmt(c.difference), f"[{fmt(c.low)}, {fmt(c.high)}]", fmt_p(c.welch_p), fmt_p(c.mannwhitney_p)]
            table.add_row(*row)
        console.print(table)
    if report.missing:
        console.print(f"{len(report.missing)} trial(s) have no result yet and are left out of the numbers")
