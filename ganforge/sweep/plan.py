"""A sweep's folder and its plan: the one place that knows where a sweep keeps what.

Layout of ``SWEEP/`` (``--out``)::

    sweep.json         the plan: the settings of every trial, the axes, the seeds, the evaluation
    runs/POINT/seed-S/ one ordinary run folder per trial, with eval.json once it is done
    logs/POINT-seed-S.log  each trial's output, appended to on every attempt
    summary.json, summary.csv, trials.csv, summary.png   the report (rewritten on every sweep)

The plan is written before the first trial and checked on every later start: the same command
continues the sweep, and a different one in the same folder is refused instead of mixing two
sweeps' trials in one table.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ganforge.errors import UsageError
from ganforge.run.checkpoint import write_text_atomic
from ganforge.sweep.grid import Axis, Point, expand
from ganforge.sweep.trial import TrialSpec

PLAN = "sweep.json"
VERSION = 1


@dataclass
class SweepPlan:
    base: dict[str, Any]
    axes: list[Axis]
    seeds: list[int]
    metrics: list[str] = field(default_factory=list)
    n: int | None = None
    given_points: list[dict[str, Any]] = field(default_factory=list)  # --point, each crossed with the axes

    @property
    def points(self) -> list[Point]:
        return expand(self.axes, self.given_points)

    def to_dict(self) -> dict[str, Any]:
        plan = {"version": VERSION, "base": self.base,
                "axes": [{"key": a.key, "values": list(a.values)} for a in self.axes],
                "seeds": self.seeds, "metrics": self.metrics, "n": self.n}
        if self.given_points:  # absent otherwise: the plans of earlier sweeps stay equal to their commands'
            plan["points"] = self.given_points
        return json.loads(json.dumps(plan))

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> SweepPlan:
        return cls(dict(raw["base"]), [Axis(a["key"], tuple(a["values"])) for a in raw["axes"]],
                   list(raw["seeds"]), list(raw.get("metrics") or []), raw.get("n"), list(raw.get("points") or []))


class SweepFolder:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    @property
    def plan(self) -> Path:
        return self.root / PLAN

    def run_dir(self, point: Point, seed: int) -> Path:
        return self.root / "runs" / point.slug / f"seed-{seed}"

    def log(self, point: Point, seed: int) -> Path:
        return self.root / "logs" / f"{point.slug}-seed-{seed}.log"

    def report(self, name: str) -> Path:
        return self.root / name

    def open(self, plan: SweepPlan) -> bool:
        """Record ``plan`` in a new sweep folder, or check that it is the plan already recorded.
        Returns whether the sweep continues an earlier start."""
        if self.root.exists() and not self.root.is_dir():
            raise UsageError(f"--out {self.root} is a file, not a folder; choose another --out")
        wanted = plan.to_dict()
        if self.plan.is_file():
            try:
                recorded = json.loads(self.plan.read_text())
            except (OSError, ValueError) as exc:
                raise UsageError(f"{self.plan} is unreadable ({exc}); choose another --out") from None
            if recorded != wanted:
                differs = sorted(k for k in wanted if recorded.get(k) != wanted[k])
                raise UsageError(f"{self.root} holds another sweep (its {', '.join(differs)} differ from this "
                                 f"command's); run the command that started it to continue it, or choose "
                                 f"another --out")
            return True
        if self.root.is_dir() and any(self.root.iterdir()):
            raise UsageError(f"--out {self.root} is a folder with files but no {PLAN}; choose an empty or new --out")
        self.root.mkdir(parents=True, exist_ok=True)
        write_text_atomic(self.plan, json.dumps(wanted, indent=2) + "\n")
        return False

    def specs(self, plan: SweepPlan) -> list[tuple[Point, int, TrialSpec]]:
        """Every trial, point by point and seed by seed."""
        out = []
        for point in plan.points:
            given = point.given(plan.base)
            for seed in plan.seeds:
                spec = TrialSpec({**given, "seed": seed, "out": str(self.run_dir(point, seed))},
                                 list(plan.metrics), plan.n, eval_seed=seed)
                out.append((point, seed, spec))
        return out
