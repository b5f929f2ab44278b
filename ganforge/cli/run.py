"""``ganforge run``: train a GAN chosen by component names."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

from ganforge.config import RunConfig, apply_set, load_toml, merge_settings
from ganforge.errors import ConfigError
from ganforge.registry import Registry

FLAGS: tuple[tuple[str, Any, str], ...] = (
    ("gen", str, "generator name (default mlp)"),
    ("disc", str, "discriminator name (default: the generator's family if it has one, else mlp)"),
    ("loss", str, "loss name (default nonsat)"),
    ("data", str, "data set name (default mnist)"),
    ("steps", "int", "generator steps"),
    ("batch_size", "int", "batch size"),
    ("z_dim", "int", "noise dimension"),
    ("lr_g", "float", "generator learning rate (default: the loss's)"),
    ("lr_d", "float", "discriminator learning rate (default: the loss's)"),
    ("n_critic", "int", "discriminator steps per generator step (default: the loss's)"),
    ("lr_schedule", str, "learning-rate schedule: constant (default), linear or cosine decay to 0"),
    ("warmup", "int", "learning-rate warm-up steps (default 0)"),
    ("ema", "decay", "average of G's weights for pictures, sample and eval (default 0.999; 0: off)"),
    ("ema_rampup", "float", "how fast the average's span grows: about R x step / 9 steps until the decay "
                            "takes over (default 1)"),
    ("on_nan", str, "a non-finite loss or gradient: stop (default; the last good checkpoint stays) or "
                    "skip the update, count it and go on"),
    ("precision", str, "fp32 (default), bf16 (autocast on CPU and CUDA; weights and optimiser stay "
                       "float32) or fp16 (autocast with gradient scaling; for CUDA, slow on the CPU)"),
    ("seed", "int", "random seed"),
    ("device", str, "auto, cpu or cuda"),
    ("threads", "threads", "CPU threads: auto (default: the fastest measured, re-checked as load changes) or N"),
    ("out", str, "run folder (default runs/DATA-GEN-LOSS-TIME)"),
    ("log_every", "int", "write a metrics.jsonl line every N steps (0: only the last)"),
    ("sample_every", "int", "save a sample picture every N steps (0: only the last)"),
    ("ckpt_every", "int", "checkpoint every N steps (0: only the last)"),
    ("keep", "int", "checkpoints kept, newest first (default 3); `sample`/`eval --step N` read any of them"),
    ("eval_every", "int", "compute --eval-metric every N steps (0: off); appended to metrics.jsonl"),
    ("eval_samples", "int", "generated samples per --eval-every evaluation (default 2000)"),
)


def thread_count(text: str) -> int:
    """``--threads``: ``auto`` (0) or a positive count."""
    from ganforge.runtime.threads import parse_threads

    try:
        return parse_threads(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--threads ")) from None


def decay(text: str) -> float:
    """``--ema``: a number in [0, 1)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a decay such as 0.999, got {text!r}") from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"expected a decay in [0, 1) such as 0.999 (0: off), got {value}")
    return value


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ganforge.cli.args import non_negative_int, positive_float

    types = {"int": non_negative_int, "float": positive_float, "threads": thread_count, "decay": decay}
    p = sub.add_parser("run", help="train a GAN", description="Train a GAN chosen by component names.")
    p.add_argument("--recipe", help="a named, shipped configuration (`ganforge list --kind recipe`): "
                                    "mnist, ring8, grid25, ...; --config, flags and --set override it")
    p.add_argument("--config", help="TOML file with run keys and [gen]/[disc]/[loss]/[data] tables")
    for name, kind, text in FLAGS:
        p.add_argument(f"--{name.replace('_', '-')}", dest=name, type=types.get(kind, kind), help=text)
    p.add_argument("--eval-metric", dest="eval_metrics", action="append", metavar="NAME",
                   help="metric for --eval-every (repeatable)")
    p.add_argument("--set", dest="assignments", action="append", default=[], metavar="KEY=VALUE",
                   help="component option, e.g. gen.hidden=256,512 or data.root=DIR (repeatable)")
    p.add_argument("--resume", action="store_true", default=None, help="continue the run in --out")
    p.add_argument("--from-step", dest="from_step", type=non_negative_int, default=None, metavar="N",
                   help="with --resume: continue from the kept checkpoint of step N instead of the latest "
                        "(later checkpoints are moved aside, not deleted)")
    p.set_defaults(handler=handle)


def config_from_args(args: argparse.Namespace, registry: Registry | None = None) -> RunConfig:
    """Defaults < recipe < TOML < flags < --set."""
    values: dict[str, Any] = {}
    if getattr(args, "recipe", None):
        if registry is None:
            from ganforge.plugins import load_registry

            registry = load_registry()[1]
        values = {**registry.get("recipe", args.recipe).build(), "recipe": args.recipe}
    if args.config:
        values = merge_settings(values, load_toml(args.config))
    for field in dataclasses.fields(RunConfig):
        flag = getattr(args, field.name, None)
        if flag is not None and field.name != "options":
            values[field.name] = flag
    if values.get("from_step") is not None and not values.get("resume"):
        raise ConfigError("--from-step N continues a run from an earlier checkpoint: add --resume (and --out RUN)")
    if values.get("resume") and values.get("out"):
        values = resumed_settings(Path(values["out"]), values, args.assignments)
    config = RunConfig.from_dict(values)
    config.options = apply_set(config.options, args.assignments)
    config.validate()
    return config


# What defines the networks and the data: a resumed run cannot change them.
FIXED_ON_RESUME = ("data", "gen", "disc", "loss", "z_dim")


def _same(value: Any) -> Any:
    """JSON turns tuples into lists: compare them alike."""
    return list(value) if isinstance(value, (tuple, list)) else value


def resumed_settings(out: Path, given: dict[str, Any], assignments: list[str]) -> dict[str, Any]:
    """``--resume``: the run's recorded config.json, with only what was given now on top.

    Without this, every flag left out would silently fall back to its default (a batch of 64
    instead of the run's 100) and a missing ``--data`` would rebuild the wrong networks.
    """
    record_path = out / "config.json"
    if not record_path.is_file():
        return given
    try:
        recorded = json.loads(record_path.read_text())["config"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{record_path} is unreadable ({exc}); cannot --resume this run") from None
    recorded.pop("from_step", None)  # where an earlier resume started is no setting of this one
    merged = merge_settings(recorded, given)
    changed = [k for k in FIXED_ON_RESUME if k in given and given[k] != recorded.get(k)]
    recorded_options = recorded.get("options") or {}
    for section, options in apply_set({}, assignments).items():
        if section in ("gen", "disc", "data"):
            changed += [f"{section}.{key}" for key, value in options.items()
                        if _same(value) != _same(recorded_options.get(section, {}).get(key))]
    if changed:
        raise ConfigError(f"--resume continues the run in {out} as it was built; it cannot change "
                          f"{', '.join(changed)}. Leave them out, or start a new run with another --out")
    return {**merged, "resume": True, "out": str(out)}


def stop_on_sigterm() -> None:
    """Treat SIGTERM (kill, a scheduler's pre-emption) and SIGHUP (the terminal closed) like
    Ctrl-C: save a checkpoint, then stop."""
    import signal

    def interrupt(signum, frame):  # type: ignore[no-untyped-def]
        raise KeyboardInterrupt

    for name in ("SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), interrupt)


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
    stop_on_sigterm()
    trainer = Trainer(config, registry=registry, plugin_manager=pm)
    run_dir = trainer.fit()
    if not trainer.seam.is_main_process:  # under torchrun only rank 0 reports (and writes)
        return 0
    print(f"done: {trainer.step} steps. Run folder: {run_dir}")
    print(f"samples: {trainer.last_samples}")
    if trainer.paths.real_preview.is_file():  # image data: the real images to judge the samples against
        print(f"real:    {trainer.paths.real_preview}")
    print(f"losses:  {trainer.paths.losses_plot}")
    return 0
