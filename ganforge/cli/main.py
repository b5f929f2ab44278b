"""The ``ganforge`` command. The one place that turns errors into exit codes and messages."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from ganforge.errors import GanforgeError, UsageError

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class ArgumentParser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so every usage error takes the same path."""

    def error(self, message: str) -> None:  # type: ignore[override]  # raises instead of exiting: NoReturn
        raise UsageError(f"{self.prog}: {message}")


def build_parser() -> ArgumentParser:
    from ganforge import __version__
    from ganforge.cli import doctor, evaluate, export, listing, run, sample, sweep, tune

    parser = ArgumentParser(prog="ganforge", description="Train and evaluate GANs built from plugins.")
    parser.add_argument("--version", action="version", version=f"ganforge {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=ArgumentParser)
    for module in (run, listing, sample, evaluate, export, doctor, sweep, tune):
        module.add_parser(sub)
    return parser


def entry() -> NoReturn:
    """The ``ganforge`` command and ``python -m ganforge``: :func:`main`, then its exit status.

    A stop signal that lands while a library runs Python code through the C API (torch's import
    does) leaves CPython's "unhandled KeyboardInterrupt" flag set even though main() caught it, and
    CPython then ends the process by SIGINT instead of the status 130 that the message promised.
    Everything of ours is written by then (outputs whole or not at all, checkpoints fsynced), so a
    stopped command leaves without the interpreter's finalisation."""
    code = main()
    if code == EXIT_INTERRUPTED:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    from rich.console import Console
    from rich.markup import escape

    from ganforge.cli.interrupts import stop_on_signals, stopped_message
    from ganforge.runtime.environment import check_environment

    err = Console(stderr=True, highlight=False)
    args = None
    try:
        with stop_on_signals():
            args = build_parser().parse_args(argv)
            check_environment(args.command)
            return int(args.handler(args) or 0)
    except UsageError as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)  # paths may hold [brackets]
        return EXIT_USAGE
    except GanforgeError as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
        return 1
    except MemoryError:
        err.print("[bold red]error:[/] out of memory; lower --batch-size, the layer sizes or -n", soft_wrap=True)
        return 1
    except RuntimeError as exc:  # torch reports a failed allocation as a RuntimeError
        if "allocate" not in str(exc):
            raise
        first = str(exc).strip().splitlines()[0][:240]
        err.print(f"[bold red]error:[/] out of memory ({escape(first)}); lower --batch-size, the layer "
                  f"sizes or -n", soft_wrap=True)
        return 1
    except BrokenPipeError:  # `ganforge sample ... | head`: the reader has all it wanted
        _silence_stdout()
        return 1  # quietly, as rich does for what it prints (Console.on_broken_pipe)
    except OSError as exc:  # a full disk or a read-only mount met while training, or any other I/O failure
        err.print(f"[bold red]error:[/] {escape(describe_os_error(exc, getattr(args, 'command', None)))}",
                  soft_wrap=True)
        return 1
    except KeyboardInterrupt:
        command = getattr(args, "command", None) or named_command(sys.argv[1:] if argv is None else argv)
        err.print(escape(stopped_message(command)), soft_wrap=True)
        return EXIT_INTERRUPTED


def named_command(argv: Sequence[str]) -> str | None:
    """The command ``argv`` names, for a stop that comes before the arguments are parsed."""
    from ganforge.cli.interrupts import AFTERMATH

    first = next((word for word in argv if not word.startswith("-")), None)
    return first if first in AFTERMATH else None


def describe_os_error(exc: OSError, command: str | None) -> str:
    """What happened, and what to do, for an ``OSError`` no command turned into a message.

    The writers of ``sample``, ``eval`` and ``export`` check their destination first and report a
    failed write themselves (exit 2); what reaches here is mostly ``run`` meeting a full disk or a
    mount gone read-only, where the checkpoints already written are whole (they are renamed into
    place only once complete).
    """
    import errno

    where = f" ({exc.filename})" if exc.filename else ""
    what = (exc.strerror or str(exc)) + where
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        hint = "free space or choose another --out" if command == "run" else "free space and try again"
    elif exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        hint = ("the folder is read-only; choose an --out you can write to" if command == "run"
                else "the path is read-only for this user; choose one you can write to")
    else:
        hint = ""
    text = what + (f"; {hint}" if hint else "")
    return text + ". Earlier checkpoints are intact" if command == "run" else text


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's final flush does not fail a second time
    (Python's documented recipe for SIGPIPE)."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout already closed or not a real file
        pass
    finally:
        os.close(devnull)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
