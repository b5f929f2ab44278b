"""The terminal display: a live bar on a terminal that keeps print() working, plain lines elsewhere."""

from __future__ import annotations

import io
import sys

from rich.console import Console

from ganforge import Trainer
from ganforge.cli.progress import ProgressDisplay
from ganforge.plugins import build_registry, get_plugin_manager


def started(config, display: ProgressDisplay) -> Trainer:  # type: ignore[no-untyped-def]
    pm = get_plugin_manager(entry_points=False, extra=[display])
    trainer = Trainer(config, registry=build_registry(pm), plugin_manager=pm)
    trainer.start()
    return trainer


def test_a_bar_drawn_into_a_buffer_leaves_the_callers_prints_alone(tiny_points_config, capsys):
    """A Trainer started from a script or notebook with its bar in a buffer: print() after start()
    reaches the real stdout, not the bar's buffer (rich redirects stdout into a live bar's console)."""
    buffer = io.StringIO()
    trainer = started(tiny_points_config, ProgressDisplay(Console(file=buffer, force_terminal=True)))
    try:
        print("after start")
        trainer.train(2)
    finally:
        trainer.stop()
    assert "after start" in capsys.readouterr().out and "after start" not in buffer.getvalue()
    assert "train" in buffer.getvalue()  # the bar itself was drawn there


def test_a_bar_on_the_screen_keeps_prints_above_it(tiny_points_config, monkeypatch):
    """On the screen's own stream the bar redirects print() into its console, so lines go above it."""
    screen = io.StringIO()
    monkeypatch.setattr(sys, "stderr", screen)
    trainer = started(tiny_points_config, ProgressDisplay(Console(file=sys.stderr, force_terminal=True)))
    try:
        print("above the bar")
        trainer.train(2)
    finally:
        trainer.stop()
    assert "above the bar" in screen.getvalue()
