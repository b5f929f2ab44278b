"""``--drs`` for ``ganforge eval`` and ``ganforge sample``: draw through discriminator rejection
sampling (:mod:`ganforge.models.rejection`) instead of from the generator alone.

The fitted critic is saved in the run folder (``RUN/critics/``) under a fingerprint of the
generator's weights and of how it was fitted, so the next ``--drs`` on the same checkpoint, data,
steps and seed loads it instead of spending minutes refitting; ``--drs-refit`` fits afresh."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn

    from ganforge.config import ResolvedConfig, RunConfig
    from ganforge.data import GanDataset
    from ganforge.registry import Registry
    from ganforge.train.restore import RestoredRun

CRITIC_STEPS = 3_000
"""--drs-steps' default: on Stacked MNIST runs the critic's loss fell from 0.69 to about 0.25 by
2,000 steps; 3,000 took 6 minutes on one core beside two training runs."""
CAP_QUANTILE = 0.9
"""--drs-quantile's default (docs/experiments.md has what each quantile gave)."""
SHARP_CAP = -3.0
"""A cap below this (the 0.9-quantile sample judged 20 times likelier under G than under the data)
is a critic that separates almost everything: on Stacked MNIST, a cap of -0.8 lowered the KL and
one of -7.4 raised it."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ganforge.cli.args import non_negative_int

    p.add_argument("--drs", action="store_true",
                   help="discriminator rejection sampling (Azadi et al. 2019): fit a critic to tell real data "
                        "from this run's samples (saved in RUN/critics and reused), then keep each sample in "
                        "proportion to how real it finds it")
    p.add_argument("--drs-steps", type=non_negative_int, default=CRITIC_STEPS, metavar="N",
                   help=f"the critic's training steps of 64 real and 64 generated samples (default {CRITIC_STEPS:,})")
    p.add_argument("--drs-quantile", type=float, default=CAP_QUANTILE, metavar="Q",
                   help=f"samples whose critic logit is above this quantile are all kept (default {CAP_QUANTILE}); "
                        f"higher corrects more and keeps fewer")
    p.add_argument("--drs-refit", action="store_true",
                   help="fit the critic afresh even when the run folder holds one fitted the same way")


def rejection_generator(args: argparse.Namespace, run: RestoredRun, dataset: GanDataset, registry: Registry,
                        data_config: RunConfig | ResolvedConfig | None = None) -> nn.Module:
    """The run's generator behind a rejection step whose critic is fitted on ``dataset`` (the data
    of ``data_config``, the run's by default), seeded by ``--seed``, or loaded from the run folder
    where it was fitted the same way before; prints what it did in two lines."""
    from ganforge.errors import UsageError
    from ganforge.models.rejection import RejectionSampled

    if not 0.0 < args.drs_quantile <= 1.0:
        raise UsageError(f"--drs-quantile {args.drs_quantile}: give a quantile above 0 and at most 1, e.g. 0.9")
    if args.drs_steps < 1:
        raise UsageError("--drs-steps must be at least 1")
    critic, how = _critic(args, run, dataset, registry, data_config or run.config)
    sampler = RejectionSampled(run.generator, critic, run.z_dim, args.drs_quantile, seed=args.seed)
    print(f"rejection sampling: critic {how}, its logits capped at the {args.drs_quantile} quantile: "
          f"{sampler.cap:.2f}")
    if sampler.cap < SHARP_CAP:
        print(f"  the critic tells nearly every generated sample from the data (cap below {SHARP_CAP}): it keeps the "
              f"most real-looking samples as much as the rare ones; compare with an eval without --drs")
    return sampler


def _critic(args: argparse.Namespace, run: RestoredRun, dataset: GanDataset, registry: Registry,
            data_config: RunConfig | ResolvedConfig) -> tuple[nn.Module, str]:
    """The critic, loaded from the run folder when one was fitted the same way, else fitted and
    saved there; and a few words on which."""
    import time

    import torch

    from ganforge.models import rejection
    from ganforge.run.folder import RunFolder
    from ganforge.runtime.precision import resolve_precision
    from ganforge.train.build import build_critic

    bf16 = resolve_precision(run.config.precision, torch.device("cpu")) == "bf16"
    recipe: dict[str, Any] = {"disc": run.config.disc or run.config.gen, "options": run.config.section("disc"),
                              "data": data_config.data, "data_options": data_config.section("data"),
                              "steps": args.drs_steps, "seed": args.seed, "bf16": bf16}
    saved = RunFolder(args.run_dir).critic(rejection.fingerprint(run.generator, recipe))
    with torch.random.fork_rng(devices=[]):  # the critic's first weights and dropout: seeded too
        torch.manual_seed(args.seed)
        critic = build_critic(run.config, registry, run.info)
        if saved.is_file() and not args.drs_refit and _load(critic, saved):
            return critic.eval(), f"loaded from {saved} (fitted in {args.drs_steps:,} steps)"
        start = time.perf_counter()
        critic = rejection.fit_critic(critic, run.generator, run.z_dim, dataset, steps=args.drs_steps,
                                      seed=args.seed, bf16=bf16)
    how = f"fitted in {args.drs_steps:,} steps ({time.perf_counter() - start:.0f} s)"
    return critic, how + _save(critic, saved)


def _load(critic: nn.Module, path: Path) -> bool:
    """Whether ``critic`` now holds the weights saved at ``path`` (False for a file that is not
    such a critic's: it is then refitted and replaced)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        critic.load_state_dict(load_file(path))
    except (SafetensorError, RuntimeError, OSError):
        return False
    return True


def _save(critic: nn.Module, path: Path) -> str:
    """Save ``critic`` at ``path`` (atomically, so an interrupted save leaves no half file); a few
    words for the printout. A run folder one may not write to costs the next call a refit only."""
    from safetensors.torch import save

    from ganforge.run.checkpoint import cpu_weights, write_bytes_atomic

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(path, save(cpu_weights(critic)))
    except OSError as error:
        return f"; not saved ({error.strerror or error}), so the next --drs fits it again"
    return f", saved as {path}"
