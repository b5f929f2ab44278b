"""The generator's weight average: its formula, checkpoints, resume, and who samples from it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from ganforge import RunConfig, Trainer
from ganforge.checkpoint import latest_checkpoint, load_checkpoint
from ganforge.errors import ConfigError
from ganforge.train.ema import EmaGenerator
from ganforge.train.restore import load_run


def test_update_is_the_warmed_up_exponential_average():
    gen = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    ema = EmaGenerator(gen, 0.99)
    expected = [p.detach().clone() for p in gen.parameters()]
    for step in range(1, 30):
        with torch.no_grad():
            for p in gen.parameters():
                p.add_(torch.randn_like(p))
            gen[1].running_mean.copy_(torch.randn(4))
        ema.update(gen, step)
        d = min(0.99, (1 + step) / (10 + step))
        expected = [d * e + (1 - d) * p.detach() for e, p in zip(expected, gen.parameters())]
    for got, want in zip(ema.module.parameters(), expected):
        assert torch.allclose(got, want, atol=1e-6)
    assert torch.equal(ema.module[1].running_mean, gen[1].running_mean)  # buffers copied
    assert not any(p.requires_grad for p in ema.module.parameters()) and not ema.module.training


def _config(tmp_path, **overrides):
    base = dict(data="ring8", steps=20, batch_size=32, z_dim=4, out=str(tmp_path / "run"), log_every=10,
                sample_every=10, ckpt_every=10, options={"gen": {"hidden": (16,)}, "disc": {"hidden": (16,)}})
    return RunConfig(**{**base, **overrides})


def test_checkpoint_keeps_the_average_and_resume_restores_it(tmp_path, registry, plugin_manager):
    trainer = Trainer(_config(tmp_path, ema=0.9), registry=registry, plugin_manager=plugin_manager)
    trainer.fit()
    ckpt = load_checkpoint(latest_checkpoint(trainer.paths.root))
    assert ckpt.generator_ema is not None
    for name, value in trainer.ema.state_dict().items():
        assert torch.equal(ckpt.generator_ema[name], value)
    assert any(not torch.equal(ckpt.generator_ema[k], ckpt.generator[k]) for k in ckpt.generator)

    resumed = Trainer(_config(tmp_path, ema=0.9, steps=20, resume=True), registry=registry,
                      plugin_manager=plugin_manager)
    resumed.start()
    for name, value in resumed.ema.state_dict().items():
        assert torch.equal(ckpt.generator_ema[name], value)
    resumed.stop()


def test_sample_and_eval_use_the_average_unless_told_not_to(tmp_path, registry, plugin_manager):
    trainer = Trainer(_config(tmp_path), registry=registry, plugin_manager=plugin_manager)
    trainer.fit()
    averaged, last = load_run(trainer.paths.root, registry), load_run(trainer.paths.root, registry, ema=False)
    assert averaged.averaged and not last.averaged
    z = torch.randn(5, 4)
    with torch.no_grad():
        assert torch.allclose(averaged.generator(z), trainer.ema.module(z))
        assert torch.allclose(last.generator(z), trainer.generator.eval()(z))
        assert not torch.allclose(averaged.generator(z), last.generator(z))


def test_ema_zero_turns_it_off(tmp_path, registry, plugin_manager):
    trainer = Trainer(_config(tmp_path, ema=0.0), registry=registry, plugin_manager=plugin_manager)
    trainer.fit()
    assert trainer.ema is None and trainer.sampler is trainer.generator
    assert load_checkpoint(latest_checkpoint(trainer.paths.root)).generator_ema is None
    assert not load_run(trainer.paths.root, registry).averaged


@pytest.mark.parametrize("bad", [1.0, -0.1, 2])
def test_bad_decay_is_refused(bad):
    with pytest.raises(ConfigError, match="--ema must be a decay in"):
        RunConfig(ema=bad).validate()


def test_cli_no_ema_flag(tmp_path, capsys):
    from ganforge.cli.main import main

    out = tmp_path / "r"
    assert main(["run", "--data", "ring8", "--steps", "12", "--ema", "0.5", "--out", str(out),
                 "--set", "gen.hidden=8", "--set", "disc.hidden=8"]) == 0
    assert main(["sample", str(out), "-n", "7", "-o", str(tmp_path / "a.npy")]) == 0
    assert main(["sample", str(out), "-n", "7", "-o", str(tmp_path / "b.npy"), "--no-ema"]) == 0
    a, b = np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy")
    assert a.shape == b.shape == (7, 2) and not np.allclose(a, b)
    assert main(["run", "--ema", "1.5"]) == 2
    assert "decay in [0, 1)" in capsys.readouterr().err
