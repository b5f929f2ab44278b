"""Argument types shared by the subcommands' parsers (kept out of ``cli/main.py``, which imports
every subcommand)."""

from __future__ import annotations

import argparse


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {value}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number such as 2e-4, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value}")
    return value


def thread_count(text: str) -> int:
    """``--threads``: ``auto`` (returned as 0) or a number of threads, refused as ``run`` refuses it."""
    from ganforge.errors import ConfigError
    from ganforge.runtime.threads import parse_threads

    try:
        return parse_threads(text)
    except ConfigError as error:
        raise argparse.ArgumentTypeError(str(error).removeprefix("--threads ")) from None


def add_threads_argument(parser: argparse.ArgumentParser) -> None:
    """``--threads`` of the commands that only sample and measure (no thread tuner: nothing to time)."""
    parser.add_argument("--threads", type=thread_count, default=0, metavar="auto|N",
                        help="threads for sampling, features and the --drs critic (default auto: torch's, one "
                             "per core); the numbers do not depend on it")
