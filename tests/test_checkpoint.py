"""Checkpoints: atomic, verified, and a damaged one is refused clearly."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ganforge.errors import CheckpointError
from ganforge.run.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint


def models():
    return nn.Linear(3, 4), nn.Linear(4, 1)


def test_roundtrip_and_latest_pointer(tmp_path):
    g, d = models()
    for step in (1, 2, 3, 4):
        save_checkpoint(tmp_path / "checkpoints", step, g, d, {"x": torch.arange(3)}, keep=2)
    latest = latest_checkpoint(tmp_path)
    assert latest.name == "step_0000004"
    assert sorted(p.name for p in (tmp_path / "checkpoints").glob("step_*")) == ["step_0000003", "step_0000004"]
    ckpt = load_checkpoint(latest)
    assert ckpt.step == 4 and torch.equal(ckpt.generator["weight"], g.weight.detach())
    assert torch.equal(ckpt.state["x"], torch.arange(3))


def test_damaged_checkpoint_is_refused(tmp_path):
    g, d = models()
    path = save_checkpoint(tmp_path / "checkpoints", 1, g, d, {})
    data = bytearray((path / "generator.safetensors").read_bytes())
    data[-1] ^= 0xFF
    (path / "generator.safetensors").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="does not match its manifest"):
        load_checkpoint(path)


def test_crash_mid_save_leaves_the_last_good_checkpoint(tmp_path, monkeypatch):
    g, d = models()
    save_checkpoint(tmp_path / "checkpoints", 1, g, d, {})
    import ganforge.run.checkpoint as ck

    def dying_split(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(ck.tensor_tree, "split", dying_split)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path / "checkpoints", 2, g, d, {})
    assert load_checkpoint(latest_checkpoint(tmp_path)).step == 1


def test_resaving_a_step_never_leaves_latest_pointing_at_nothing(tmp_path, monkeypatch):
    """A kill between writing the new copy and moving ``latest`` keeps the old copy usable."""
    import ganforge.run.checkpoint as ckpt_module
    from ganforge.run.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint

    g, d = torch.nn.Linear(2, 2), torch.nn.Linear(2, 1)
    ckpt_dir = tmp_path / "checkpoints"
    first = save_checkpoint(ckpt_dir, 5, g, d, {"x": 1})

    def killed(path, text):
        raise KeyboardInterrupt  # the process dies just before ``latest`` moves

    monkeypatch.setattr(ckpt_module, "write_text_atomic", killed)
    with torch.no_grad():
        g.weight.add_(1.0)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(ckpt_dir, 5, g, d, {"x": 2})
    monkeypatch.undo()
    assert latest_checkpoint(tmp_path) == first
    assert load_checkpoint(first).state["x"] == 1

    again = save_checkpoint(ckpt_dir, 5, g, d, {"x": 3})
    assert latest_checkpoint(tmp_path) == again and load_checkpoint(again).state["x"] == 3
    assert sorted(p.name for p in ckpt_dir.iterdir() if p.is_dir()) == [again.name]


def test_keep_orders_checkpoints_by_step_number(tmp_path):
    from ganforge.run.checkpoint import save_checkpoint

    g, d = torch.nn.Linear(2, 2), torch.nn.Linear(2, 1)
    ckpt_dir = tmp_path / "checkpoints"
    for step in (9, 10, 100, 12_000_000):
        save_checkpoint(ckpt_dir, step, g, d, {}, keep=2)
    assert sorted(p.name for p in ckpt_dir.iterdir() if p.is_dir()) == ["step_0000100", "step_12000000"]


def test_atomic_bytes_write_that_fails_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    """The writer the sweep's summary picture goes through: a failure mid-write (a full disk)
    leaves the previous picture whole and no temporary file beside it."""
    import ganforge.run.checkpoint as ckpt_module
    from ganforge.run.checkpoint import write_bytes_atomic

    path = tmp_path / "summary.png"
    write_bytes_atomic(path, b"old picture")

    def full_disk(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ckpt_module.os, "fsync", full_disk)
    with pytest.raises(OSError):
        write_bytes_atomic(path, b"new picture")
    assert path.read_bytes() == b"old picture"
    assert [p.name for p in tmp_path.iterdir()] == ["summary.png"]
    monkeypatch.undo()
    write_bytes_atomic(path, b"new picture")
    assert path.read_bytes() == b"new picture" and [p.name for p in tmp_path.iterdir()] == ["summary.png"]
