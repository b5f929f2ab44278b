"""Atomic checkpoints: a crash, Ctrl-C or kill never corrupts the last good one.

Layout under ``RUN/checkpoints/``::

    step_0001000/generator.safetensors      model weights (safetensors: no pickle, mmap-able)
    step_0001000/discriminator.safetensors
    step_0001000/generator_ema.safetensors  the generator's weight average (when --ema is on)
    step_0001000/state.pt                   optimiser and RNG state, step (torch.save, weights_only)
    step_0001000/manifest.json              step and the SHA-256 of every file above
    latest                                  the name of the newest complete checkpoint

A checkpoint is written into a hidden temporary folder, fsynced, then renamed into place; only
then is ``latest`` replaced (write-temp-then-``os.replace``). A reader that follows ``latest``
therefore always finds a complete, verified checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from ganforge.errors import CheckpointError

LATEST = "latest"
FILES = ("generator.safetensors", "discriminator.safetensors", "state.pt")
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


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _weights(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}


def write_text_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` so readers see the old or the new content, never half."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with tmp.open("w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


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
    save_file(_weights(generator), str(tmp / FILES[0]))
    save_file(_weights(discriminator), str(tmp / FILES[1]))
    torch.save({**state, "step": step}, tmp / FILES[2])
    files = list(FILES)
    if generator_ema is not None:
        save_file(_weights(generator_ema), str(tmp / EMA_FILE))
        files.append(EMA_FILE)
    manifest = {"step": step, "sha256": {f: _sha256(tmp / f) for f in files}}
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2))
    for f in (*files, "manifest.json"):
        _fsync(tmp / f)
    # Re-saving a step (Ctrl-C right after a periodic save, a resume): the new copy gets its own
    # name, so the folder ``latest`` names stays whole until ``latest`` has moved.
    revision = 1
    while final.exists():
        final = ckpt_dir / f"{name}.{revision}"
        revision += 1
    os.rename(tmp, final)
    write_text_atomic(ckpt_dir / LATEST, final.name + "\n")
    superseded = [p for p in ckpt_dir.glob(f"{name}*") if p.is_dir() and p != final]
    for old in superseded + sorted(_step_folders(ckpt_dir), key=_folder_order)[:-keep]:
        if old != final:
            shutil.rmtree(old, ignore_errors=True)
    return final


def _step_folders(ckpt_dir: Path) -> list[Path]:
    return [p for p in ckpt_dir.glob("step_*") if p.is_dir()]


def _folder_order(path: Path) -> tuple[int, int]:
    """``step_0001000.2`` -> (1000, 2): by step number, then re-save, never as text."""
    step, _, revision = path.name.removeprefix("step_").partition(".")
    return (int(step) if step.isdigit() else -1, int(revision) if revision.isdigit() else 0)


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The folder ``latest`` names, or ``None`` when the run has no checkpoint yet."""
    pointer = Path(run_dir) / "checkpoints" / LATEST
    if not pointer.is_file():
        return None
    path = pointer.parent / pointer.read_text().strip()
    if not path.is_dir():
        raise CheckpointError(f"{pointer} names {path.name}, which does not exist; the run folder "
                              f"was edited by hand or copied partially")
    return path


def load_checkpoint(path: Path, *, verify: bool = True) -> Checkpoint:
    """Read a checkpoint folder, checking every file against its manifest."""
    path = Path(path)
    try:
        manifest = json.loads((path / "manifest.json").read_text())
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"checkpoint {path} has no readable manifest.json: {exc}") from None
    if verify:
        for f, digest in manifest["sha256"].items():
            if not (path / f).is_file() or _sha256(path / f) != digest:
                raise CheckpointError(f"checkpoint file {path / f} is missing or does not match its "
                                      f"manifest; the checkpoint is damaged, use an earlier one")
    state = torch.load(path / FILES[2], map_location="cpu", weights_only=True)
    ema = load_file(str(path / EMA_FILE)) if EMA_FILE in manifest["sha256"] else None
    return Checkpoint(path, int(manifest["step"]), load_file(str(path / FILES[0])),
                      load_file(str(path / FILES[1])), state, ema)
