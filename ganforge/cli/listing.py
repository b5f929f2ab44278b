"""``ganforge list``: every registered component with its provider, as a rich table."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any, cast


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("list", help="list registered components",
                       description="List every registered component: kind, name, description, provider.")
    p.add_argument("--kind", help="only this kind (generator, discriminator, loss, dataset, metric, extractor)")
    p.set_defaults(handler=handle)


# Arguments the trainer passes itself: not user options.
SUPPLIED = {"z_dim", "sample_shape", "value_range", "self"}


def options_of(factory: object) -> str:
    """``hidden=None, dropout=None, ...`` from the factory's signature (what ``--set`` accepts)."""
    import inspect

    try:
        parameters = inspect.signature(cast(Callable[..., Any], factory)).parameters.values()
    except (TypeError, ValueError):
        return ""
    shown = []
    for p in parameters:
        if p.name in SUPPLIED or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        shown.append(p.name if p.default is p.empty else f"{p.name}={p.default!r}")
    return ", ".join(shown)


def handle(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from ganforge.errors import UsageError
    from ganforge.ops import backend
    from ganforge.plugins import load_registry
    from ganforge.registry import KINDS

    if args.kind and args.kind not in KINDS:
        raise UsageError(f"--kind {args.kind!r} is not a component kind; use one of {', '.join(KINDS)}")
    _, registry = load_registry()
    table = Table(title="ganforge components", title_justify="left")
    for column in ("kind", "name", "description", "options (--set KIND.KEY=VALUE)", "provided by"):
        table.add_column(column, overflow="fold")
    for comp in registry:
        if args.kind and comp.kind != args.kind:
            continue
        p = comp.provider
        by = f"{p.distribution} {p.version}" if p.distribution else p.plugin
        table.add_row(comp.kind, comp.name, comp.description, options_of(comp.factory), by)
    console = Console()
    if not console.is_terminal:  # piped or captured: one line per component, for grep
        console = Console(width=200)
    console.print(table)
    console.print(f"fused op backend: {backend()}", highlight=False)
    return 0
