"""Atomic checkpoints: a crash, Ctrl-C or kill never corrupts the last good one.

Layout under ``RUN/checkpoints/``::

    step_0001000/generator.safetensors      model weights (safetensors: no pickle, mmap-able)
    step_0001000/discriminator.safetensors
    step_0001000/generator_ema.safetensors  the generator's weight average (when --ema is on)
    step_0001000/state.safetensors          optimiser, RNG and data-position tensors
    step_0001000/state.json                 the rest of that state (see ganforge.run.tensor_tree)
    step_0001000/manifest.json              step and the SHA-256 of every file above
    latest                                  the name of the newest complete checkpoint

A checkpoint is written into a hidden temporary folder, fsynced, then renamed into place; only
then is ``latest`` replaced (write-temp-then-``os.replace``). A reader that follows ``latest``
therefore always finds a complete, verified checkpoint. Nothing in a checkpoint is a pickle:
checkpoints written before this format kept the state in ``state.pt``, which is still read
(``weights_only``) so their runs can resume.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load, save_file
from torch import nn

from ganforge.errors import CheckpointError
from ganforge.faults import crash_point
from ganforge.run import tensor_tree

FOLDER = "checkpoints"
LATEST = "latest"
FILES = ("generator.safetensors", "discriminator.safetensors", "state.safetensors", "state.json")
LEGACY_STATE = "state.pt"
EMA_FILE = "generator_ema.safetensors"


@dataclass
class Checkpoint:
    path: Path
    step: int
    generator: dict[str, torch.Tensor]
    discriminator: dict[str, torch.Tensor]
    state: dict[str, Any]
    generator_ema: dict[str, torch.Tensor] | None = None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fsync_file(path: Path) -> None:
    """Flush a written file to the disk, so a later rename never exposes a file it does not hold."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def cpu_weights(module: nn.Module) -> dict[str, torch.Tensor]:
    """``module``'s state as contiguous CPU tensors, the form safetensors writes."""
    return {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}


def write_text_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` so readers see the old or the new content, never half."""
    write_bytes_atomic(path, text.encode())


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` as :func:`write_text_atomic` does: through a temporary name
    that carries the process id (two processes may write one file: shared-study workers with one
    ``--out``), fsynced, and removed again if the write fails."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with tmp.open("wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        crash_point(f"replace.{path.name}")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def save_checkpoint(ckpt_dir: Path, step: int, generator: nn.Module, discriminator: nn.Module,
                    state: dict[str, Any], keep: int = 3, generator_ema: nn.Module | None = None) -> Path:
    """Write one checkpoint atomically, point ``latest`` at it, keep the newest ``keep``."""
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    name = f"step_{step:07d}"
    final = ckpt_dir / name
    for stale in ckpt_dir.glob(".tmp-*"):  # left by a run killed mid-save (one writer per run)
        shutil.rmtree(stale, ignore_errors=True)
    tmp = ckpt_dir / f".tmp-{name}-{os.getpid()}"
    tmp.mkdir()
    try:
        _write_files(tmp, step, generator, discriminator, state, generator_ema)
    except BaseException:  # a full disk, a signal: leave no half-written folder filling the disk
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    # Re-saving a step (Ctrl-C right after a periodic save, a resume): the new copy gets its own
    # name, so the folder ``latest`` names stays whole until ``latest`` has moved.
    revision = 1
    while final.exists():
        final = ckpt_dir / f"{name}.{revision}"
        revision += 1
    crash_point("checkpoint.written")
    os.rename(tmp, final)
    crash_point("checkpoint.renamed")
    point_latest_at(ckpt_dir, final)
    crash_point("checkpoint.latest_moved")
    superseded = [p for p in ckpt_dir.glob(f"{name}*") if p.is_dir() and p != final]
    for old in superseded + sorted(_step_folders(ckpt_dir), key=_folder_order)[:-keep]:
        if old != final:
            shutil.rmtree(old, ignore_errors=True)
    return final


def point_latest_at(ckpt_dir: Path, folder: Path) -> None:
    """Make ``latest`` name ``folder`` (atomically: readers see the old name or the new one)."""
    write_text_atomic(ckpt_dir / LATEST, folder.name + "\n")


def _save_tensors(tensors: dict[str, torch.Tensor], path: Path) -> None:
    """safetensors' ``save_file``, with its I/O failures (a full disk) raised as the OSError they are."""
    try:
        save_file(tensors, str(path))
    except SafetensorError as exc:
        code = re.search(r"os error (\d+)", str(exc))
        if code is None:
            raise OSError(f"cannot write {path}: {exc}") from None
        raise OSError(int(code.group(1)), os.strerror(int(code.group(1))), str(path)) from None


def _write_files(tmp: Path, step: int, generator: nn.Module, discriminator: nn.Module, state: dict[str, Any],
                 generator_ema: nn.Module | None) -> None:
    _save_tensors(cpu_weights(generator), tmp / FILES[0])
    _save_tensors(cpu_weights(discriminator), tmp / FILES[1])
    state_tensors, state_json = tensor_tree.split({**state, "step": step})
    _save_tensors(state_tensors, tmp / FILES[2])
    (tmp / FILES[3]).write_text(state_json)
    files = list(FILES)
    if generator_ema is not None:
        _save_tensors(cpu_weights(generator_ema), tmp / EMA_FILE)
        files.append(EMA_FILE)
    manifest = {"step": step, "sha256": {f: _sha256(tmp / f) for f in files}}
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2))
    for f in (*files, "manifest.json"):
        fsync_file(tmp / f)


def _step_folders(ckpt_dir: Path) -> list[Path]:
    return [p for p in ckpt_dir.glob("step_*") if p.is_dir()]


def _folder_order(path: Path) -> tuple[int, int]:
    """``step_0001000.2`` -> (1000, 2): by step number, then re-save, never as text."""
    step, _, revision = path.name.removeprefix("step_").partition(".")
    return (int(step) if step.isdigit() else -1, int(revision) if revision.isdigit() else 0)


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The folder ``latest`` names, or ``None`` when the run has no checkpoint yet."""
    pointer = Path(run_dir) / FOLDER / LATEST
    if not pointer.is_file():
        return None
    path = pointer.parent / pointer.read_text().strip()
    if not path.is_dir():
        raise CheckpointError(f"{pointer} names {path.name}, which does not exist; the run folder "
                              f"was edited by hand or copied partially")
    return path


def checkpoint_step(path: Path) -> int:
    """The step of a checkpoint folder from its name (``step_0001000.2`` -> 1000; -1 if none)."""
    return _folder_order(path)[0]


def checkpoint_at(run_dir: Path, step: int) -> Path:
    """The checkpoint folder of ``step`` (its newest re-save), or a :class:`CheckpointError` that
    lists the steps the run kept."""
    ckpt_dir = Path(run_dir) / FOLDER
    found = sorted((p for p in _step_folders(ckpt_dir) if _folder_order(p)[0] == step), key=_folder_order)
    if not found:
        kept = sorted({_folder_order(p)[0] for p in _step_folders(ckpt_dir)} - {-1})
        raise CheckpointError(f"{run_dir} has no checkpoint of step {step}; it kept steps "
                              f"{', '.join(map(str, kept)) or 'none'} (--keep N keeps more)")
    return found[-1]


def load_checkpoint(path: Path, *, verify: bool = True) -> Checkpoint:
    """Read a checkpoint folder, checking every file against its manifest. Anything malformed
    (manifest, tensor files, state) is a :class:`CheckpointError` naming the folder.

    Each file is read into memory once, checked and parsed from those bytes: what is verified is
    what is loaded, and a file that a running training prunes after it was read cannot change
    the result (see :func:`read_checkpoint` for a pruning that comes first)."""
    path = Path(path)
    try:
        manifest = json.loads((path / "manifest.json").read_text())
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"checkpoint {path} has no readable manifest.json: {exc}") from None
    files = manifest.get("sha256") if isinstance(manifest, dict) else None
    step = manifest.get("step") if isinstance(manifest, dict) else None
    if (not isinstance(files, dict) or not all(isinstance(v, str) for v in files.values())
            or isinstance(step, bool) or not isinstance(step, int) or step < 0
            or not {FILES[0], FILES[1]} <= files.keys()):
        raise CheckpointError(f"checkpoint {path} has a malformed manifest.json (it needs a step and the "
                              f"SHA-256 of each file); the checkpoint is damaged, use an earlier one")
    blobs: dict[str, bytes] = {}
    for f, digest in files.items():
        try:
            blob: bytes | None = (path / f).read_bytes()
        except OSError:
            blob = None
        if blob is None or (verify and hashlib.sha256(blob).hexdigest() != digest):
            raise CheckpointError(f"checkpoint file {path / f} is missing or does not match its "
                                  f"manifest; the checkpoint is damaged, use an earlier one")
        blobs[f] = blob
    state = _load_state(path, files, blobs)
    try:
        ema = load(blobs[EMA_FILE]) if EMA_FILE in files else None
        generator, discriminator = load(blobs[FILES[0]]), load(blobs[FILES[1]])
    except (OSError, ValueError, RuntimeError, SafetensorError) as exc:
        raise CheckpointError(f"checkpoint {path} holds an unreadable weights file ({exc}); "
                              f"use an earlier checkpoint") from None
    return Checkpoint(path, step, generator, discriminator, state, ema)


READ_ATTEMPTS = 20


def _pointer(run_dir: Path) -> str | None:
    try:
        return (Path(run_dir) / FOLDER / LATEST).read_text().strip()
    except OSError:
        return None


def read_checkpoint(run_dir: Path, step: int | None = None) -> Checkpoint | None:
    """The run's newest checkpoint (or the one of ``step``), safe against the run training in it.

    A run that saves every few steps with ``--keep 1`` prunes the checkpoint a reader chose while
    the reader opens it. Such a read failed for a reason that was not damage: when ``latest``
    moved during the attempt, the reader starts again from the new one. Only a failure with
    ``latest`` unchanged (nothing was published or pruned meanwhile) is reported as damage.
    ``None``: the run has no checkpoint yet."""
    if step is not None:
        path = checkpoint_at(run_dir, step)
        try:
            return load_checkpoint(path)
        except CheckpointError:
            if path.exists():
                raise
            raise CheckpointError(f"the checkpoint of step {step} was pruned by the run training in "
                                  f"{run_dir} while it was read; keep more with --keep N") from None
    for _ in range(READ_ATTEMPTS):
        before = _pointer(run_dir)
        try:
            newest = latest_checkpoint(run_dir)
            return None if newest is None else load_checkpoint(newest)
        except CheckpointError:
            if _pointer(run_dir) == before:
                raise
    raise CheckpointError(f"{run_dir} published {READ_ATTEMPTS} new checkpoints while one was being read; "
                          f"save less often (--ckpt-every) or read it when it is not saving")


@contextmanager
def restoring(path: Path) -> Iterator[None]:
    """``with restoring(path): module.load_state_dict(...)``: a checkpoint whose tensors do not fit
    the networks and state that the run's config.json builds (edited by hand, another
    architecture, damage whose checksums were redone) becomes one :class:`CheckpointError`
    instead of torch's many-line RuntimeError."""
    try:
        yield
    except (RuntimeError, KeyError, TypeError, ValueError, IndexError) as exc:
        detail = " ".join(line.strip() for line in str(exc).strip().splitlines()[:2])[:300]
        raise CheckpointError(f"checkpoint {path} does not fit the networks and training state that the "
                              f"run's config.json describes ({detail}); was the run folder edited or mixed "
                              f"with another run's files? Use an earlier checkpoint") from None


def _load_state(path: Path, files: dict[str, str], blobs: dict[str, bytes]) -> dict[str, Any]:
    if LEGACY_STATE in files:
        return torch.load(io.BytesIO(blobs[LEGACY_STATE]), map_location="cpu", weights_only=True)
    try:
        state = tensor_tree.join(load(blobs[FILES[2]]), blobs[FILES[3]].decode())
    except (KeyError, OSError, ValueError, RuntimeError, SafetensorError) as exc:
        raise CheckpointError(f"checkpoint {path} has an unreadable training state ({exc}); "
                              f"use an earlier checkpoint") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint {path}: {FILES[3]} does not hold a training state")
    return state
