"""``ganforge run``: train a GAN chosen by component names.

The flags come from the settings table (:mod:`ganforge.settings`) and the resolution, resume
included, from :func:`ganforge.resolve.resolve_settings`: this module only gathers what the user
gave, in the order recipe < ``--config`` < flags < ``--set``.
"""

from __future__ import annotations

import argparse
from typing import Any

from ganforge.config import ResolvedConfig, apply_set, load_toml, merge_settings
from ganforge.registry import Registry
from ganforge.settings import CLI_ONLY, SETTINGS, add_flags


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="train a GAN", description="Train a GAN chosen by component names.")
    p.add_argument("--config", metavar="FILE", help=CLI_ONLY["--config"])
    add_flags(p)
    p.add_argument("--set", dest="assignments", action="append", default=[], metavar="KEY=VALUE",
                   help=CLI_ONLY["--set"])
    p.set_defaults(handler=handle)


def given_from_args(args: argparse.Namespace, registry: Registry | None = None) -> dict[str, Any]:
    """What the command line chose, layered recipe < ``--config`` < flags < ``--set``: only the
    keys given, so a resumed run keeps its recorded value for every other one."""
    values: dict[str, Any] = {}
    if getattr(args, "recipe", None):
        if registry is None:
            from ganforge.plugins import load_registry

            registry = load_registry()[1]
        values = {**registry.get("recipe", args.recipe).build(), "recipe": args.recipe}
    if getattr(args, "config", None):
        values = merge_settings(values, load_toml(args.config))
    for setting in SETTINGS:
        flag = getattr(args, setting.name, None)
        if flag is not None:
            values[setting.name] = flag
    assignments = apply_set({}, getattr(args, "assignments", None) or [])
    if assignments:
        values = merge_settings(values, {"options": assignments})
    return values


def config_from_args(args: argparse.Namespace, registry: Registry | None = None) -> ResolvedConfig:
    """The run's resolved settings: defaults < component defaults < recipe < TOML < flags < --set
    (on ``--resume``, the recorded run's settings just below what was given now)."""
    from ganforge.resolve import resolve_settings

    if registry is None:
        from ganforge.plugins import load_registry

        registry = load_registry()[1]
    return resolve_settings(given_from_args(args, registry), registry)


def handle(args: argparse.Namespace) -> int:
    from rich.console import Console

    from ganforge.cli.progress import ProgressDisplay
    from ganforge.plugins import build_registry, get_plugin_manager
    from ganforge.run.destination import check_run_folder
    from ganforge.train.trainer import Trainer

    console = Console(stderr=True, highlight=False)
    pm = get_plugin_manager(extra=[ProgressDisplay(console)])
    registry = build_registry(pm)
    config = config_from_args(args, registry)
    check_run_folder(config.out)  # before any work: a bad --out is one line, exit 2
    trainer = Trainer(config, registry=registry, plugin_manager=pm)
    run_dir = trainer.fit()
    if not trainer.seam.is_main_process:  # under torchrun only rank 0 reports (and writes)
        return 0
    print(f"done: {trainer.step} steps. Run folder: {run_dir}")
    print(f"samples: {trainer.folder.last_samples()}")
    if trainer.folder.real_preview.is_file():  # image data: the real images to judge the samples against
        print(f"real:    {trainer.folder.real_preview}")
    print(f"losses:  {trainer.folder.losses_plot}")
    return 0
