"""The generator's weight average: its formula, checkpoints, resume, and who samples from it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from ganforge import RunConfig
from ganforge.errors import ConfigError
from ganforge.nn import BatchNorm1d
from ganforge.run.checkpoint import latest_checkpoint, load_checkpoint
from ganforge.train.ema import (
    CALIBRATION_BATCH_SIZE,
    CALIBRATION_BATCHES,
    CALIBRATION_SEED,
    EmaGenerator,
    calibration_size,
    recalibrate_batch_norms,
)
from ganforge.train.restore import load_run


@pytest.mark.parametrize("rampup", [1.0, 4.0, 0.5])
def test_update_is_the_warmed_up_exponential_average(rampup):
    gen = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    ema = EmaGenerator(gen, 0.99, z_dim=3, rampup=rampup)
    expected = [p.detach().clone() for p in gen.parameters()]
    for step in range(1, 30):
        with torch.no_grad():
            for p in gen.parameters():
                p.add_(torch.randn_like(p))
            gen[1].running_mean.copy_(torch.randn(4))
        ema.update(gen, step)
        d = min(0.99, (1 + rampup * step) / (10 + rampup * step))
        expected = [d * e + (1 - d) * p.detach() for e, p in zip(expected, gen.parameters(), strict=True)]
    for got, want in zip(ema.module.parameters(), expected, strict=True):
        assert torch.allclose(got, want, atol=1e-6)
    assert not torch.equal(ema.current()[1].running_mean, gen[1].running_mean)  # not copied: measured
    assert not any(p.requires_grad for p in ema.module.parameters()) and not ema.module.training


@pytest.mark.parametrize("norm", [BatchNorm1d, nn.BatchNorm1d])
def test_the_average_measures_its_own_batch_norm_statistics(norm):
    """The statistics are those of the averaged weights' activations on the fixed calibration
    noise, computed here by hand; the live generator's statistics are left alone, the average
    stays in eval mode and so does any other layer, and measuring twice gives the same bits."""
    gen = nn.Sequential(nn.Linear(5, 6), norm(6), nn.Dropout(0.5), nn.Linear(6, 2))
    ema = EmaGenerator(gen, 0.9, z_dim=5, calibration_batch=300)
    live_stats = gen[1].running_mean.clone(), gen[1].running_var.clone()
    for step in range(1, 8):
        with torch.no_grad():
            for p in gen.parameters():
                p.add_(torch.randn_like(p))
        ema.update(gen, step)
    averaged = ema.current()
    rng = torch.Generator().manual_seed(CALIBRATION_SEED)
    batches = [torch.randn(300, 5, generator=rng) for _ in range(CALIBRATION_BATCHES)]
    with torch.no_grad():
        hs = [averaged[0](z).double() for z in batches]
    assert torch.allclose(averaged[1].running_mean.double(), torch.cat(hs).mean(0), atol=1e-5)
    mean_var = torch.stack([h.var(0, unbiased=True) for h in hs]).mean(0)
    assert torch.allclose(averaged[1].running_var.double(), mean_var, rtol=1e-5)
    assert torch.equal(gen[1].running_mean, live_stats[0]) and torch.equal(gen[1].running_var, live_stats[1])
    assert not averaged.training and not any(m.training for m in averaged.modules())
    assert averaged[1].momentum == gen[1].momentum
    first = {k: v.clone() for k, v in averaged.state_dict().items()}
    assert recalibrate_batch_norms(averaged, 5, 300)
    assert all(torch.equal(first[k], v) for k, v in averaged.state_dict().items())
    bn = averaged[1]
    z, h = batches[0], hs[0]
    by_hand = (h[:4].float() - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps) * bn.weight + bn.bias
    with torch.no_grad():  # eval mode draws with the measured statistics
        assert torch.allclose(averaged(z[:4]), averaged[3](by_hand), atol=1e-5)


def test_a_generator_without_batch_norm_is_not_touched():
    gen = nn.Sequential(nn.Linear(3, 4), nn.Tanh())
    ema = EmaGenerator(gen, 0.9, z_dim=3)
    ema.update(gen, 1)
    assert not recalibrate_batch_norms(ema.module, 3) and ema.current() is ema.module


def test_calibration_size_shrinks_for_large_samples():
    assert calibration_size((1, 28, 28)) == CALIBRATION_BATCH_SIZE
    assert calibration_size((2,)) == CALIBRATION_BATCH_SIZE
    assert calibration_size((3, 64, 64)) == 170
    assert calibration_size((3, 1024, 1024)) == 128


def test_checkpoint_keeps_the_average_and_resume_restores_it(small_config, make_trainer):
    trainer = make_trainer(small_config(steps=20, log_every=10, hidden=(16,), ema=0.9))
    trainer.fit()
    ckpt = load_checkpoint(latest_checkpoint(trainer.folder.root))
    assert ckpt.generator_ema is not None
    for name, value in trainer.ema.state_dict().items():
        assert torch.equal(ckpt.generator_ema[name], value)
    assert any(not torch.equal(ckpt.generator_ema[k], ckpt.generator[k]) for k in ckpt.generator)

    resumed = make_trainer(small_config(steps=20, log_every=10, hidden=(16,), ema=0.9, resume=True))
    resumed.start()
    for name, value in resumed.ema.state_dict().items():
        assert torch.equal(ckpt.generator_ema[name], value)
    resumed.stop()


def test_sample_and_eval_use_the_average_unless_told_not_to(small_config, make_trainer, registry):
    trainer = make_trainer(small_config(steps=20, log_every=10, hidden=(16,)))
    trainer.fit()
    averaged, last = load_run(trainer.folder.root, registry), load_run(trainer.folder.root, registry, ema=False)
    assert averaged.averaged and not last.averaged
    z = torch.randn(5, 4)
    with torch.no_grad():
        assert torch.allclose(averaged.generator(z), trainer.ema.module(z))
        assert torch.allclose(last.generator(z), trainer.generator.eval()(z))
        assert not torch.allclose(averaged.generator(z), last.generator(z))


def test_ema_zero_turns_it_off(small_config, make_trainer, registry):
    trainer = make_trainer(small_config(steps=20, log_every=10, hidden=(16,), ema=0.0))
    trainer.fit()
    assert trainer.ema is None and trainer.sampler is trainer.generator
    assert load_checkpoint(latest_checkpoint(trainer.folder.root)).generator_ema is None
    assert not load_run(trainer.folder.root, registry).averaged


@pytest.mark.parametrize("bad", [1.0, -0.1, 2])
def test_bad_decay_is_refused(bad):
    with pytest.raises(ConfigError, match="--ema must be a decay in"):
        RunConfig(ema=bad).validate()


def test_rampup_sets_how_soon_the_decay_takes_over():
    """The default warm-up caps a 12,000-step run's average near 0.99925 (at most about its last
    1,300 steps); a rampup of 4 lets 0.9997 hold from step 7,498 on."""
    gen = nn.Linear(2, 2)
    default, fast = EmaGenerator(gen, 0.9997, z_dim=2), EmaGenerator(gen, 0.9997, z_dim=2, rampup=4)
    assert default.decay_at(12_000) == pytest.approx(1 - 9 / 12_010)
    assert fast.decay_at(12_000) == 0.9997 and fast.decay_at(7_498) == 0.9997
    assert fast.decay_at(7_497) < 0.9997
    assert all(fast.decay_at(t) >= default.decay_at(t) for t in range(0, 20_000, 97))


@pytest.mark.parametrize("bad", [0, -1.0, float("inf"), True, "4"])
def test_bad_rampup_is_refused(bad):
    with pytest.raises(ConfigError, match="--ema-rampup must be a positive number"):
        RunConfig(ema_rampup=bad).validate()


def test_the_run_passes_its_rampup_to_the_average(small_config, make_trainer):
    trainer = make_trainer(small_config(steps=20, log_every=10, hidden=(16,), ema=0.9, ema_rampup=3.0))
    assert trainer.ema.rampup == 3.0


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


def test_saved_statistics_are_the_averages_own_and_loading_keeps_their_bits(small_config, make_trainer, registry):
    config = small_config(steps=20, log_every=10, ema=0.9,
                          options={"gen": {"hidden": (16,), "norm": "batch"}, "disc": {"hidden": (16,)}})
    trainer = make_trainer(config)
    trainer.fit()
    ckpt = load_checkpoint(latest_checkpoint(trainer.folder.root))
    live = [k for k in ckpt.generator if k.endswith("running_mean")]
    assert live and all(not torch.equal(ckpt.generator_ema[k], ckpt.generator[k]) for k in live)
    restored = load_run(trainer.folder.root, registry)
    for name, value in restored.generator.state_dict().items():
        assert torch.equal(ckpt.generator_ema[name], value), name


def test_other_buffers_follow_the_live_generator():
    """Only batch-norm statistics are re-measured; a spectral norm's power-iteration vectors are
    the live generator's (the average's own would never iterate: it only runs in eval mode)."""
    gen = nn.Sequential(nn.utils.parametrizations.spectral_norm(nn.Linear(3, 4)), nn.BatchNorm1d(4))
    ema = EmaGenerator(gen, 0.9, z_dim=3, calibration_batch=64)
    gen(torch.randn(8, 3))  # a training-mode forward moves u and v
    ema.update(gen, 1)
    averaged = ema.current()
    live = dict(gen.named_buffers())
    for name, value in averaged.named_buffers():
        if name.endswith(("_u", "_v")):
            assert torch.equal(value, live[name]), name
    assert not torch.equal(averaged[1].running_mean, gen[1].running_mean)
