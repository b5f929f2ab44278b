"""Checkpoints: atomic, verified, and a damaged one is refused clearly."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ganforge.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from ganforge.errors import CheckpointError


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
    import ganforge.checkpoint as ck

    def dying_save(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(ck.torch, "save", dying_save)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path / "checkpoints", 2, g, d, {})
    assert load_checkpoint(latest_checkpoint(tmp_path)).step == 1
