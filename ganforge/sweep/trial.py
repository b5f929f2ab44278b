"""One trial of a sweep, in its own process: train (or continue) the run, then evaluate it.

``python -m ganforge.sweep.trial SPEC_JSON`` is what the sweep's runner starts for each trial.
The run folder is an ordinary one (``ganforge sample``, ``eval``, ``run --resume`` read it); the
trial adds ``eval.json`` (the layout of ``ganforge eval --json``) when it is done, written
atomically, so its presence is what "finished" means. A trial whose folder holds a checkpoint
continues from it (``--resume``); one whose last checkpoint is the last step is only evaluated.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

EVAL_FILE = "eval.json"


@dataclass
class TrialSpec:
    """What one trial runs: the settings (``load_toml``'s layout, seed and folder included) and
    how to evaluate it."""

    given: dict[str, Any]
    metrics: list[str] = field(default_factory=list)  # empty: every metric that applies
    n: int | None = None  # evaluation samples; None: the data's default
    eval_seed: int = 0

    @property
    def out(self) -> Path:
        return Path(self.given["out"])

    def to_json(self) -> str:
        return json.dumps({"given": self.given, "metrics": self.metrics, "n": self.n, "eval_seed": self.eval_seed})

    @classmethod
    def from_json(cls, text: str) -> TrialSpec:
        raw = json.loads(text)
        return cls(raw["given"], list(raw.get("metrics") or []), raw.get("n"), int(raw.get("eval_seed", 0)))


def is_done(out: Path) -> bool:
    return (out / EVAL_FILE).is_file()


def read_result(out: Path) -> dict[str, Any]:
    return dict(json.loads((out / EVAL_FILE).read_text()))


def measured_values(result: dict[str, Any]) -> dict[str, float]:
    """An ``eval.json``'s numeric measurements, less the keys that describe the data (a mixture's
    mode total): what a sweep summarises and compares."""
    context = set(result.get("context_keys", ()))
    return {k: float(v) for k, v in result.get("metrics", {}).items()
            if isinstance(v, (int, float)) and k not in context}


def run_trial(spec: TrialSpec) -> dict[str, Any]:
    """Train the trial's run to its last step (continuing a checkpoint when there is one), evaluate
    it and write ``eval.json``; a finished trial is read back, not rerun."""
    import torch

    from ganforge.metrics.evaluate import evaluate
    from ganforge.plugins import load_registry
    from ganforge.resolve import resolve_settings
    from ganforge.run.checkpoint import checkpoint_step, write_text_atomic
    from ganforge.run.folder import RunFolder
    from ganforge.train.build import build_dataset
    from ganforge.train.restore import load_run
    from ganforge.train.trainer import Trainer

    if is_done(spec.out):
        return read_result(spec.out)
    pm, registry = load_registry()
    folder = RunFolder(spec.out)
    latest = folder.latest_checkpoint() if folder.root.is_dir() else None
    given = {**spec.given, "resume": latest is not None}
    config = resolve_settings(given, registry)
    if latest is None or checkpoint_step(latest) < config.steps:
        Trainer(config, registry=registry, plugin_manager=pm).fit()
    run = load_run(spec.out, registry)
    dataset = build_dataset(run.config, registry)
    result = evaluate(run.generator, run.z_dim, dataset, registry, spec.metrics or None, spec.n, spec.eval_seed,
                      run.step, config.section("metric"), floor=False)
    record = {"run": str(spec.out), **result.to_dict(),
              "sweep": {"threads": torch.get_num_threads(), "cores": sorted(os.sched_getaffinity(0)),
                        "pid": os.getpid()}}
    write_text_atomic(spec.out / EVAL_FILE, json.dumps(record, indent=2) + "\n")
    return record


def main(argv: list[str] | None = None) -> int:
    """The process entry: one line and exit 2 for a usage error, 1 for any other of ganforge's."""
    from ganforge.errors import GanforgeError, UsageError

    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m ganforge.sweep.trial SPEC_JSON", file=sys.stderr)
        return 2
    try:
        run_trial(TrialSpec.from_json(argv[0]))
    except GanforgeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, UsageError) else 1
    except OSError as exc:  # a full disk, a read-only mount: the checkpoints written are whole
        from ganforge.cli.main import describe_os_error

        print(f"error: {describe_os_error(exc, 'run')}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # SIGINT/SIGTERM: the trainer saved a checkpoint of whole steps
        print("interrupted; the trial continues from its last checkpoint next time", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
