"""``ganforge eval``: sample-quality metrics for a finished run (see ganforge.metrics)."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    return None
