"""The terminal display, a plugin on the step hook: a rich progress bar on a terminal, plain
periodic log lines otherwise (CI, pipes). The trainer itself never imports rich."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from ganforge.hookspecs import hookimpl
from ganforge.train.run_view import Run


def _threads(n: object) -> str:
    return f"{n} thread" if n == 1 else f"{n} threads"


def _format(logs: Mapping[str, Any]) -> str:
    return "  ".join(f"{k} {v:.4f}" for k, v in logs.items() if k.endswith("loss") or k.startswith("eval/"))


class ProgressDisplay:
    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.progress: Progress | None = None
        self.task: TaskID | None = None

    @hookimpl
    def ganforge_on_train_start(self, run: Run) -> None:
        c = run.config
        self.console.print(f"[bold]ganforge[/] training {c.gen}/{c.disc} with {c.loss} on {c.data} "
                           f"for {c.steps} steps on {run.device} in {run.precision} -> {c.out}")
        if run.precision_warning:
            self.console.print(f"[yellow]warning:[/] {run.precision_warning}", highlight=False, soft_wrap=True)
        if run.data_description:  # a data set may say what it loaded (the folder set: counts, skips)
            self.console.print(f"data: {run.data_description}", markup=False)
        if self.console.is_terminal:
            # rich keeps print() above a live bar by redirecting sys.stdout/stderr into the bar's
            # console; a display drawn elsewhere (a file, a buffer) must not swallow the caller's prints
            on_screen = self.console.file in (sys.stdout, sys.stderr)
            self.progress = Progress(
                TextColumn("[bold blue]train"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[rate]} steps/s ({task.fields[threads]})"),
                TextColumn("{task.fields[losses]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                console=self.console, transient=False, redirect_stdout=on_screen, redirect_stderr=on_screen)
            self.task = self.progress.add_task("train", total=c.steps, completed=run.step,
                                               rate="  -  ", losses="", threads="- threads")
            self.progress.start()

    @hookimpl
    def ganforge_on_step_end(self, run: Run, step: int, logs: Mapping[str, Any], logged: bool) -> None:
        if self.progress is not None:
            assert self.task is not None  # added with the progress bar
            fields: dict[str, Any] = {}
            if logged:
                fields = {"rate": f"{logs['steps_per_s']:6.1f}", "losses": _format(logs),
                          "threads": _threads(logs["threads"])}
            self.progress.update(self.task, completed=step, **fields)
        elif logged:
            self.console.print(f"step {step}/{run.config.steps}  {_format(logs)}  "
                               f"{logs['steps_per_s']:.1f} steps/s ({_threads(logs['threads'])})", highlight=False)

    @hookimpl
    def ganforge_on_train_end(self, run: Run) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
