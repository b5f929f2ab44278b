"""``ganforge eval RUN_DIR``: sample-quality metrics of a run's latest checkpoint."""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ganforge.metrics.evaluate import EvalResult


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ganforge.cli import rejection
    from ganforge.cli.args import add_threads_argument, non_negative_int

    p = sub.add_parser("eval", help="compute sample-quality metrics for a run",
                       description="Compute metrics for a run's latest checkpoint against real data.")
    p.add_argument("run_dir", help="a run folder written by `ganforge run`")
    p.add_argument("--metric", dest="metrics", action="append", metavar="NAME",
                   help="metric to compute (repeatable; default: every built-in one that applies)")
    p.add_argument("-n", type=non_negative_int, default=None,
                   help="generated samples (default 10,000 for images, 2,500 for 2-D data)")
    p.add_argument("--no-ema", dest="ema", action="store_false",
                   help="use the last generator weights, not their average (--ema of the run)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="sampling seed (default 0)")
    p.add_argument("--step", type=non_negative_int, default=None,
                   help="use the checkpoint of this step instead of the latest (see checkpoints/)")
    p.add_argument("--set", dest="assignments", action="append", default=[], metavar="metric.NAME.KEY=VALUE",
                   help="metric options, e.g. metric.prdc.k_pr=5; metric.extractor=NAME and "
                        "metric.weights=PATH choose the feature extractor; data.KEY=VALUE changes the real "
                        "data compared with, e.g. data.root=DIR: a held-out folder for a folder run")
    p.add_argument("--json", dest="json_path", help="also write the numbers to this JSON file")
    add_threads_argument(p)
    rejection.add_arguments(p)
    p.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from ganforge.runtime.threads import fixed_threads

    with fixed_threads(args.threads):
        return _evaluate(args)


def _evaluate(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from ganforge.cli.rejection import rejection_generator
    from ganforge.config import apply_set
    from ganforge.errors import UsageError
    from ganforge.metrics.evaluate import describe_skipped, evaluate, group_by_text
    from ganforge.plugins import load_registry
    from ganforge.resources import require_memory
    from ganforge.run.destination import check_output_file, replacing
    from ganforge.train.build import build_dataset
    from ganforge.train.restore import load_run

    if args.json_path:  # before any work: one line, exit 2
        check_output_file(args.json_path, "--json", example="metrics.json")
    _, registry = load_registry()
    for name in args.metrics or []:
        registry.get("metric", name)
    options = apply_set({}, args.assignments)
    if set(options) - {"metric", "data"}:
        raise UsageError("ganforge eval --set takes metric.KEY=VALUE and data.KEY=VALUE options only")
    run = load_run(args.run_dir, registry, ema=args.ema, step=args.step)
    if args.n is not None:  # the fakes, the reals and their features, roughly
        require_memory(3 * args.n * math.prod(run.info.sample_shape), f"-n {args.n}", "ask for fewer samples")
    config = run.config
    if "data" in options:  # the run's data set, with other options: e.g. a held-out folder
        data_options = {**config.section("data"), **options["data"]}
        config = dataclasses.replace(config, options={**config.options, "data": data_options})
    dataset = build_dataset(config, registry)
    if "data" in options:
        shape = tuple(dataset.info.sample_shape)
        if shape != tuple(run.info.sample_shape):
            raise UsageError(f"--set data.*: that data has samples of shape {shape}, the run was trained on "
                             f"{tuple(run.info.sample_shape)}; keep data.size and data.channels as they were")
        describe = getattr(dataset, "describe", None)
        print(f"real data: {describe() if callable(describe) else config.data}")
    generator = rejection_generator(args, run, dataset, registry, config) if args.drs else run.generator
    result = evaluate(generator, run.z_dim, dataset, registry, args.metrics, args.n, args.seed,
                      run.step, options.get("metric", {}))
    drawn = _rejection_record(generator, args)
    against = f" vs {result.n_real} real" if result.n_real else ""
    table = Table(title=f"{args.run_dir} @ step {result.step}: {result.n_fake} generated{against}",
                  title_justify="left")
    for column in ("metric", "value", "real vs real"):
        table.add_column(column, justify="right" if column != "metric" else "left")
    for row in rows(result):
        table.add_row(*row)
    Console().print(table)
    if result.extractor:  # the feature space the image metrics were computed in
        print(f"features: {result.extractor} ({result.extractor_description})")
    if result.comparable:
        print("comparable with")
        for names, text in group_by_text(result.comparable):
            print(f"  {', '.join(names)}: {text}")
    unavailable = {k: v for k, v in result.skipped.items() if not v.startswith("does not apply")}
    if unavailable:  # a metric for other kinds of data is no news; one that lacks features is
        print(f"not computed: {describe_skipped(unavailable)}")
    if drawn:
        print(f"rejection sampling kept {drawn['acceptance']:.1%} of {drawn['candidates']:,} generated samples")
    if args.json_path:
        with replacing(args.json_path, "--json") as partial:
            Path(partial).write_text(json.dumps({"run": str(args.run_dir), **result.to_dict(),
                                                 "rejection": drawn}, indent=2) + "\n")
        print(f"wrote {args.json_path}")
    return 0


def _rejection_record(generator: object, args: argparse.Namespace) -> dict[str, float] | None:
    """What ``--drs`` did, for the printout and the JSON: ``None`` without it."""
    from ganforge.models.rejection import RejectionSampled

    if not isinstance(generator, RejectionSampled):
        return None
    return {"critic_steps": args.drs_steps, "quantile": args.drs_quantile, "cap": generator.cap,
            "acceptance": generator.acceptance, "candidates": generator.drawn}


def rows(result: EvalResult) -> list[tuple[str, str, str]]:
    """(label, value, real-vs-real value) per shown key, each as its metric declares it
    (``Metric.labels``, ``Metric.format``); keys no metric claims get the default format."""
    from ganforge.metrics.base import Metric

    claimed = [(result.metrics[name], result.keys[name]) for name in result.keys if name in result.metrics]
    unclaimed = [k for k in result.values if not any(k in keys for _, keys in claimed)]
    out: list[tuple[str, str, str]] = []
    seen: set[str] = set()
    for metric, keys in [*claimed, (Metric(), unclaimed)]:
        values = {k: result.values[k] for k in keys if k in result.values}
        shown = metric.format(values)
        # keys only the floor has (a classifier's accuracy on real data) follow the metric's own
        floor_only = [k for k in metric.labels if k in result.floor and k not in result.values]
        floor_values = {k: result.floor[k] for k in [*keys, *floor_only] if k in result.floor}
        floor = metric.format(floor_values, spread=False) if floor_values else {}
        for key, text in [*shown.items(), *((k, "") for k in floor_only if k in floor)]:
            if key not in seen:
                seen.add(key)
                out.append((metric.labels.get(key, key), text, floor.get(key, "")))
    return out
