"""A finished sweep's numbers gathered, summarised and written: JSON, CSV and a PNG of every value.

:func:`collect` reads each trial's ``eval.json``; :func:`build_report` summarises each metric per
setting and compares each setting with the baseline (:mod:`ganforge.sweep.stats`); the writers put
the report beside the runs. The terminal table is the CLI's (``ganforge/cli/sweep.py``).
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ganforge.run.checkpoint import write_bytes_atomic, write_text_atomic
from ganforge.sweep import stats
from ganforge.sweep.grid import Point
from ganforge.sweep.trial import is_done, measured_values, read_result


@dataclass
class TrialValues:
    label: str
    seed: int
    run: str
    values: dict[str, float]


@dataclass
class Report:
    labels: list[str]
    baseline: str
    metrics: list[str]
    trials: list[TrialValues]
    summaries: dict[str, dict[str, stats.Summary]] = field(default_factory=dict)  # label -> metric -> summary
    comparisons: dict[str, dict[str, stats.Comparison]] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)  # trials without a result (failed, not run yet)

    def values(self, label: str, metric: str) -> list[float]:
        return [t.values[metric] for t in self.trials if t.label == label and metric in t.values]

    def to_dict(self) -> dict[str, Any]:
        return {"baseline": self.baseline, "settings": self.labels, "metrics": self.metrics,
                "confidence": stats.CONFIDENCE, "bootstrap": {"method": stats.METHOD, "resamples": stats.RESAMPLES},
                "summary": {label: {m: s.to_dict() for m, s in per.items()} for label, per in self.summaries.items()},
                "versus_baseline": {label: {m: c.to_dict() for m, c in per.items()}
                                    for label, per in self.comparisons.items()},
                "trials": [t.__dict__ for t in self.trials], "missing": self.missing}


def collect(trials: list[tuple[Point, int, Path]]) -> tuple[list[TrialValues], list[str]]:
    """The evaluated trials' values (and the metric keys in first-seen order), and the runs that
    have none yet."""
    found, missing = [], []
    for point, seed, out in trials:
        if not is_done(out):
            missing.append(str(out))
            continue
        found.append(TrialValues(point.label, seed, str(out), measured_values(read_result(out))))
    return found, missing


def build_report(points: list[Point], baseline: Point, trials: list[TrialValues], missing: list[str]) -> Report:
    """Every metric key the trials reported (each trial evaluated the sweep's metrics only)."""
    keys: list[str] = []
    for trial in trials:
        keys += [k for k in trial.values if k not in keys]
    report = Report([p.label for p in points], baseline.label, keys, trials, missing=missing)
    for label in report.labels:
        report.summaries[label] = {m: stats.summarize(report.values(label, m)) for m in keys}
        if label != baseline.label:
            report.comparisons[label] = {m: stats.compare(report.values(label, m), report.values(baseline.label, m))
                                         for m in keys}
    return report


def write_json(report: Report, path: Path) -> None:
    write_text_atomic(path, json.dumps(report.to_dict(), indent=2, default=_json_number) + "\n")


def _json_number(value: Any) -> Any:
    return float(value)


def write_trials_csv(report: Report, path: Path) -> None:
    """One row per trial and metric key (the long layout pandas and R read directly)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["setting", "seed", "metric", "value", "run"])
    for trial in report.trials:
        for metric in report.metrics:
            if metric in trial.values:
                writer.writerow([trial.label, trial.seed, metric, repr(trial.values[metric]), trial.run])
    write_text_atomic(path, buffer.getvalue())


def write_summary_csv(report: Report, path: Path) -> None:
    """One row per setting and metric: the summary and the comparison with the baseline."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["setting", "metric", "n", "mean", "sem", "ci_low", "ci_high", "difference", "diff_ci_low",
                     "diff_ci_high", "welch_t", "welch_p", "mannwhitney_u", "mannwhitney_p"])
    for label in report.labels:
        for metric in report.metrics:
            s = report.summaries[label][metric]
            c = report.comparisons.get(label, {}).get(metric)
            versus = ([c.difference, c.low, c.high, c.welch_t, c.welch_p, c.mannwhitney_u, c.mannwhitney_p]
                      if c is not None else [""] * 7)
            writer.writerow([label, metric, s.n, s.mean, s.sem, s.low, s.high, *versus])
    write_text_atomic(path, buffer.getvalue())


def plot(report: Report, path: Path) -> None:
    """One panel per metric key; in each, one box and the seeds' points per setting, the baseline's
    box shaded. Written to a temporary name and renamed, as every other output."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    metrics = report.metrics
    cols = min(4, max(1, len(metrics)))
    rows = max(1, math.ceil(len(metrics) / cols))
    width = max(3.2, 0.9 * len(report.labels) + 1.5)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * width, rows * 3.2), squeeze=False)
    rng = np.random.default_rng(0)  # the points' horizontal jitter only
    for ax, metric in zip(axes.flat, metrics, strict=False):
        data = [report.values(label, metric) for label in report.labels]
        positions = list(range(1, len(data) + 1))
        shown = [(p, d) for p, d in zip(positions, data, strict=True) if d]
        if shown:
            boxes = ax.boxplot([d for _, d in shown], positions=[p for p, _ in shown], widths=0.5,
                               patch_artist=True, showfliers=False)
            for (p, _), patch in zip(shown, boxes["boxes"], strict=True):
                patch.set_facecolor("#d9e6f2" if report.labels[p - 1] == report.baseline else "white")
        for p, d in zip(positions, data, strict=True):
            ax.scatter(p + rng.uniform(-0.12, 0.12, len(d)), d, s=14, color="#1f4e79", zorder=3)
        ax.set_xticks(positions)
        ax.set_xticklabels([label.replace(" ", "\n") for label in report.labels], fontsize=7)
        ax.set_title(metric, fontsize=9)
        ax.tick_params(axis="y", labelsize=7)
    for ax in list(axes.flat)[len(metrics):]:
        ax.set_visible(False)
    fig.suptitle(f"{len(report.trials)} trials; shaded: baseline ({report.baseline})", fontsize=9)
    fig.tight_layout()
    png = io.BytesIO()
    fig.savefig(png, dpi=110, format="png")
    plt.close(fig)
    write_bytes_atomic(path, png.getvalue())
