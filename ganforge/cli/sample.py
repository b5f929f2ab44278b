"""``ganforge sample RUN_DIR -n N -o FILE``: draw samples from a run's latest checkpoint."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np

from ganforge.errors import UsageError

FORMATS = (".npy", ".png")


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ganforge.cli import rejection
    from ganforge.cli.args import add_threads_argument, non_negative_int

    p = sub.add_parser("sample", help="write samples from a run's latest checkpoint",
                       description="Write N samples as .npy (N, *sample_shape) or a .png picture.")
    p.add_argument("run_dir", help="a run folder written by `ganforge run`")
    p.add_argument("-n", type=non_negative_int, default=64, help="number of samples (default 64)")
    p.add_argument("-o", "--output", required=True, help="output file, .npy or .png")
    p.add_argument("--no-ema", dest="ema", action="store_false",
                   help="use the last generator weights, not their average (--ema of the run)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="noise seed (default 0)")
    p.add_argument("--class", dest="label", type=int, default=None, metavar="K",
                   help="draw only class K (runs trained with classes, e.g. the mnist recipe: 0-9)")
    p.add_argument("--step", type=non_negative_int, default=None,
                   help="use the checkpoint of this step instead of the latest (see checkpoints/)")
    add_threads_argument(p)
    rejection.add_arguments(p)
    p.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from ganforge.runtime.threads import fixed_threads

    with fixed_threads(args.threads):
        return _sample(args)


def _sample(args: argparse.Namespace) -> int:
    from ganforge.plugins import load_registry
    from ganforge.resources import require_memory
    from ganforge.run.destination import check_output_file, check_space, replacing
    from ganforge.train.artifacts import save_samples
    from ganforge.train.restore import load_run

    out = Path(args.output)
    if out.suffix not in FORMATS:
        raise UsageError(f"-o {out}: unknown format {out.suffix or '(none)'}; use a name ending in .npy or .png")
    if args.n < 1:
        raise UsageError("-n must be at least 1")
    if args.drs and args.label is not None:
        raise UsageError("--class and --drs cannot be combined: the rejection critic scores samples without a "
                         "class; drop one of them")
    check_output_file(out, "-o", example="samples.npy")  # before any work: one line, exit 2
    _, registry = load_registry()
    run = load_run(args.run_dir, registry, ema=args.ema, step=args.step)
    if args.drs:
        import dataclasses

        from ganforge.cli.rejection import rejection_generator
        from ganforge.train.build import build_dataset

        sampler = rejection_generator(args, run, build_dataset(run.config, registry), registry)
        run = dataclasses.replace(run, generator=sampler)
    require_memory(args.n * math.prod(run.info.sample_shape), f"-n {args.n}", "ask for fewer samples")
    samples = run.sample(args.n, seed=args.seed, label=args.label)
    real = None
    if out.suffix == ".png" and run.info.modality != "image":
        import torch

        from ganforge.train.build import build_dataset

        real = build_dataset(run.config, registry).real_samples(args.n, torch.Generator().manual_seed(0))
    if out.suffix == ".npy":
        check_space(out, samples.numel() * samples.element_size() + 4096, "-o")
    with replacing(out, "-o") as partial:  # renamed into place once whole
        if out.suffix == ".npy":
            np.save(partial, samples.numpy())
        else:
            save_samples(samples, run.info, partial, real, title=f"step {run.step}")
    print(f"wrote {args.n} samples of shape {tuple(run.info.sample_shape)} from step {run.step} to {out}")
    return 0
