"""The run folder's layout and its records: the one place that knows where a run keeps what.

Layout of ``RUN/`` (``--out``)::

    config.json        the resolved settings, the data's shape, versions, and the resume record
    metrics.jsonl      one JSON line per logged step and per evaluation
    samples/           step_NNNNNNN.png pictures of the fixed noise, real.png for image data
    losses.png         both losses (and evaluations) over the steps
    checkpoints/       step_NNNNNNN/ folders and ``latest`` (see :mod:`ganforge.run.checkpoint`)
    .lock              held while a process trains here (see :mod:`ganforge.run.lock`)

Everything else (the trainer, ``sample``, ``eval``, ``export``, plugins) asks a :class:`RunFolder`
for a path or a record instead of spelling a name, so the layout can change in one file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ganforge.data.base import DataInfo
from ganforge.errors import ConfigError, UsageError
from ganforge.run import checkpoint
from ganforge.run.checkpoint import write_text_atomic

CONFIG = "config.json"
METRICS = "metrics.jsonl"
SAMPLES = "samples"
LOSSES_PLOT = "losses.png"
REAL_PREVIEW = "real.png"
CRITICS = "critics"


@dataclass
class RunRecord:
    """What ``config.json`` holds: the settings the run was built with, the data's shape (so the
    networks rebuild without the data), which code made it, and each resume."""

    config: dict[str, Any]
    data_info: DataInfo
    versions: dict[str, Any] = field(default_factory=dict)
    resumes: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"config": self.config, "data_info": self.data_info.to_dict(),
                               "versions": self.versions}
        if self.resumes:
            out["resumes"] = self.resumes
        return out


class RunFolder:
    """One run's folder: its paths, its records, its checkpoints."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"RunFolder({str(self.root)!r})"

    # -- paths -----------------------------------------------------------------------------------

    @property
    def config(self) -> Path:
        return self.root / CONFIG

    @property
    def metrics(self) -> Path:
        return self.root / METRICS

    @property
    def samples(self) -> Path:
        return self.root / SAMPLES

    @property
    def checkpoints(self) -> Path:
        return self.root / checkpoint.FOLDER

    @property
    def losses_plot(self) -> Path:
        return self.root / LOSSES_PLOT

    @property
    def real_preview(self) -> Path:
        """Real training images drawn like the pictures (image data only)."""
        return self.samples / REAL_PREVIEW

    def sample_picture(self, step: int) -> Path:
        return self.samples / f"step_{step:07d}.png"

    def last_samples(self) -> Path | None:
        found = sorted(self.samples.glob("step_*.png"))
        return found[-1] if found else None

    def critic(self, fingerprint: str) -> Path:
        """Where ``--drs`` keeps the rejection critic it fitted for ``fingerprint`` (the generator's
        weights and how the critic was fitted; :func:`ganforge.models.rejection.fingerprint`)."""
        return self.root / CRITICS / f"drs-{fingerprint[:20]}.safetensors"

    def plugin_dir(self, name: str) -> Path:
        """A folder of the run's for a plugin's own files (``RUN/tensorboard``, ...)."""
        return self.root / name

    # -- config.json -----------------------------------------------------------------------------

    def is_run(self) -> bool:
        return self.config.is_file()

    def read_record(self) -> RunRecord:
        """The run's ``config.json``; a folder that is no run, or a record that cannot be read,
        is a :class:`UsageError` naming the file."""
        if not self.is_run():
            raise UsageError(f"{self.root} is not a ganforge run folder (no {CONFIG}); pass the --out "
                             f"folder of a `ganforge run`")
        try:
            raw = json.loads(self.config.read_text())
            return RunRecord(dict(raw["config"]), DataInfo.from_dict(raw["data_info"]),
                             dict(raw.get("versions") or {}), list(raw.get("resumes") or []))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise UsageError(f"{self.config} is unreadable ({exc}); was it edited by hand?") from None

    def recorded_config(self) -> dict[str, Any] | None:
        """The settings ``config.json`` recorded, or ``None`` when the folder holds no record yet;
        an unreadable record is a :class:`ConfigError` (``--resume`` cannot go on without it)."""
        if not self.is_run():
            return None
        try:
            return dict(json.loads(self.config.read_text())["config"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"{self.config} is unreadable ({exc}); cannot --resume this run") from None

    def write_record(self, record: RunRecord) -> None:
        write_text_atomic(self.config, json.dumps(record.to_dict(), indent=2) + "\n")

    # -- metrics.jsonl ---------------------------------------------------------------------------

    def append_metrics(self, row: dict[str, Any]) -> None:
        with self.metrics.open("a") as fh:
            fh.write(json.dumps(row) + "\n")

    def read_metrics(self) -> list[dict[str, Any]]:
        """The rows of metrics.jsonl (none when it does not exist). A line that is not a JSON
        object (the torn last line of a run killed mid-write, bytes from a damaged disk) is dropped,
        never fatal: the file is a log."""
        return read_metrics(self.metrics) if self.metrics.exists() else []

    def trim_metrics(self, step: int) -> None:
        """Drop the lines logged after ``step`` (a resume from that step's checkpoint)."""
        if self.metrics.exists():
            rows = [r for r in self.read_metrics() if r.get("step", 0) <= step]
            write_text_atomic(self.metrics, "".join(json.dumps(r) + "\n" for r in rows))

    def forget_metrics(self) -> None:
        """A previous run died before its first checkpoint: its lines describe nothing kept."""
        self.metrics.unlink(missing_ok=True)

    # -- checkpoints -----------------------------------------------------------------------------

    def latest_checkpoint(self) -> Path | None:
        return checkpoint.latest_checkpoint(self.root)

    def checkpoint_at(self, step: int) -> Path:
        return checkpoint.checkpoint_at(self.root, step)

    def orphan_checkpoints(self) -> list[Path]:
        """Checkpoint folders present without a ``latest`` pointer naming one."""
        return sorted(self.checkpoints.glob("step_*")) if self.latest_checkpoint() is None else []

    def describe_orphans(self, orphans: list[Path]) -> str:
        return (f"{self.checkpoints} holds checkpoints ({orphans[-1].name}, ...) but no `{checkpoint.LATEST}` "
                f"pointer naming one; write the folder name to continue from into "
                f"{self.checkpoints / checkpoint.LATEST} and --resume, or choose another --out")

    def checkpoint_to_resume(self, resume: bool, from_step: int | None) -> Path | None:
        """The checkpoint a training session continues from (``None``: a new run), after checking
        that the folder may be trained in: not a file, no finished run overwritten without
        ``--resume``, no checkpoints without a ``latest`` restarted over silently. With
        ``from_step`` the run is rewound first (see :meth:`rewind_to`)."""
        if self.root.exists() and not self.root.is_dir():
            raise ConfigError(f"--out {self.root} is a file, not a folder; choose another --out")
        existing = self.latest_checkpoint() if self.root.exists() else None
        if from_step is not None and existing is not None:
            existing = self.rewind_to(from_step)
        if existing is not None and not resume:
            raise ConfigError(f"{self.root} already holds a run (checkpoint {existing.name}); pass "
                              f"--resume to continue it or choose another --out")
        orphans = self.orphan_checkpoints() if existing is None else []
        if orphans:  # checkpoints without a `latest` pointer: never restart over them silently
            raise ConfigError(self.describe_orphans(orphans))
        return existing

    def resume_history(self, config: dict[str, Any], step: int,
                       defaults: dict[str, Any]) -> list[dict[str, Any]]:
        """The run's earlier resumes plus this one: the step it continued from and each setting
        that this resume changed (``--steps``, rates, intervals), old and new value. ``defaults``
        stand in for keys an older version did not record: it ran with them."""
        try:
            before = json.loads(self.config.read_text())
        except (OSError, ValueError):
            before = {}
        history = before.get("resumes", []) if isinstance(before, dict) else []
        old = before.get("config", {}) if isinstance(before, dict) else {}
        config = json.loads(json.dumps(config))  # tuples as the lists the record holds
        if isinstance(old, dict) and old:
            old = {**json.loads(json.dumps(defaults)), **old}
        changed = {k: [old.get(k), v] for k, v in config.items()
                   if k not in ("resume",) and k in old and old.get(k) != v}
        return [*history, {"step": step, "changed": changed}]

    def rewind_to(self, step: int) -> Path:
        """``--from-step``: make the checkpoint of ``step`` the latest; checkpoints of later steps
        belong to the abandoned continuation and move into ``checkpoints/after_step_N-TIME/``
        (never deleted), so pruning and ``latest`` only see this run's line."""
        target = self.checkpoint_at(step)
        later = [p for p in self.checkpoints.glob("step_*")
                 if p.is_dir() and checkpoint.checkpoint_step(p) > step]
        if later:
            aside = self.checkpoints / f"after_step_{step}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
            aside.mkdir()
            for path in later:
                path.rename(aside / path.name)
        checkpoint.point_latest_at(self.checkpoints, target)
        return target

    def last_good(self) -> str:
        """A phrase for error messages: where the run can be continued from."""
        last = self.latest_checkpoint()
        return f"the last good checkpoint is {last}" if last else "no checkpoint was written yet"


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """The JSON-object lines of a metrics file (see :meth:`RunFolder.read_metrics`)."""
    rows = []
    with Path(path).open(errors="replace") as fh:
        for line in fh:
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if isinstance(row, dict):
                rows.append(row)
    return rows


def default_out(data: str, gen: str, loss: str) -> Path:
    """``--out`` left out: ``runs/DATA-GEN-LOSS-TIME``."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{data}-{gen}-{loss}-{stamp}"
