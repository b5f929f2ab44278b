"""The losses between two logged lines: summed on the device, averaged when a line is written.

Reading a loss from the device every step would make each step wait for it; summing the tensors
and reading them once per ``--log-every`` keeps the device busy. The window also counts the steps
whose update ``--on-nan skip`` skipped (their losses stay out of the average) and the updates the
fp16 gradient scalers skipped. Its state is part of every checkpoint, so a resumed run writes the
same lines as one that was never stopped.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from ganforge.train.step import StepResult


class LossWindow:
    def __init__(self, device: torch.device | None = None) -> None:
        self.device = device
        self.sums: dict[str, torch.Tensor] = {}
        self.steps = 0  # steps whose losses are in the sums
        self.skipped = 0  # steps with a skipped update (--on-nan skip)
        self.scaler_skips = 0  # updates the fp16 scalers skipped
        self.skipped_in_a_row = 0
        self.skipped_total = 0  # this session's skipped steps
        self.started = time.perf_counter()

    def add(self, result: StepResult) -> None:
        """Count one step: its losses, or its skip."""
        self.scaler_skips += result.scaler_skips
        if result.skipped:
            self.skipped += 1
            self.skipped_total += 1
            self.skipped_in_a_row += 1
            return
        self.skipped_in_a_row = 0
        for key, value in (("d_loss", result.d_loss), ("g_loss", result.g_loss)):
            self.sums[key] = self.sums.get(key, 0) + value
        self.steps += 1

    def means(self) -> dict[str, float]:
        """The average of each loss over the window's steps (reads the device once)."""
        return {k: float(v) / self.steps for k, v in self.sums.items()} if self.steps else {}

    def line(self, step: int, elapsed: float, now: float) -> dict[str, Any]:
        """The metrics line that closes the window: the mean losses, the step, the time since the
        session started and the rate over the window. Non-finite means are returned as they are:
        the caller decides the run has diverged."""
        line: dict[str, Any] = self.means()
        line.update(step=step, time=round(elapsed, 3),
                    steps_per_s=round((self.steps + self.skipped) / max(now - self.started, 1e-9), 2))
        return line

    def reset(self, now: float) -> None:
        """Start the next window (after its line was written)."""
        self.sums, self.steps, self.skipped, self.scaler_skips, self.started = {}, 0, 0, 0, now

    def state_dict(self) -> dict[str, Any]:
        return {"sums": {k: torch.as_tensor(v) for k, v in self.sums.items()}, "steps": self.steps,
                "skipped": self.skipped, "scaler_skips": self.scaler_skips}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.sums = {k: v.to(self.device) if self.device is not None else v for k, v in state["sums"].items()}
        self.steps = int(state["steps"])
        self.skipped = int(state.get("skipped", 0))
        self.scaler_skips = int(state.get("scaler_skips", 0))


def legacy_window_state(state: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint written before the window was one object kept it in four top-level keys."""
    return {"sums": state["window"], "steps": state["window_steps"],
            "skipped": state.get("window_skipped", 0), "scaler_skips": state.get("window_scaler_skips", 0)}
