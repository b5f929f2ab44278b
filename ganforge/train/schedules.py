"""Learning-rate schedules: ``--lr-schedule constant|linear|cosine`` and ``--warmup STEPS``.

A schedule is a pure function of the step, so a resumed run picks up exactly where it stopped
without any saved scheduler state. Both optimisers follow the same factor of their own base rate
(TTUR-style different base rates for G and D stay in proportion).
"""

from __future__ import annotations

import math

import torch

SCHEDULES = ("constant", "linear", "cosine")


def lr_factor(schedule: str, step: int, total: int, warmup: int = 0) -> float:
    """The multiplier of the base learning rate for generator step ``step`` (0-based) of ``total``.

    Warm-up rises linearly from 1/warmup to 1 over the first ``warmup`` steps; then ``linear``
    decays to 0 at ``total`` and ``cosine`` follows half a cosine to 0; ``constant`` stays at 1.
    """
    if warmup and step < warmup:
        return (step + 1) / warmup
    if schedule == "constant" or total <= warmup:
        return 1.0
    progress = min(1.0, (step - warmup) / (total - warmup))
    if schedule == "linear":
        return 1.0 - progress
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    raise ValueError(f"unknown learning-rate schedule {schedule!r}; use one of {', '.join(SCHEDULES)}")


class LrSchedule:
    """Sets each optimiser's learning rate to ``base * lr_factor(...)`` before a step."""

    def __init__(self, schedule: str, total: int, warmup: int,
                 optimizers: dict[torch.optim.Optimizer, float]) -> None:
        self.schedule, self.total, self.warmup = schedule, total, warmup
        self.optimizers = optimizers
        self.active = schedule != "constant" or warmup > 0

    def apply(self, step: int) -> None:
        if not self.active:
            return
        factor = lr_factor(self.schedule, step, self.total, self.warmup)
        for optimizer, base in self.optimizers.items():
            for group in optimizer.param_groups:
                group["lr"] = base * factor
