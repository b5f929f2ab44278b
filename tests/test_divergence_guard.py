"""A run whose losses or weights become non-finite stops with a clear error and never writes a
non-finite checkpoint; the run-folder records are rewritten atomically."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from ganforge import RunConfig
from ganforge.errors import ConfigError, DivergenceError
from ganforge.run.checkpoint import latest_checkpoint, load_checkpoint


class NanAfter:
    """A step function that starts returning NaN losses (and poisons G's weights) after ``n`` steps."""

    def __init__(self, trainer, n, poison_weights=False):
        self.trainer, self.inner, self.n, self.calls, self.poison = trainer, trainer.step_fn, n, 0, poison_weights

    def __call__(self):
        self.calls += 1
        result = self.inner()
        if self.calls > self.n:
            if self.poison:
                with torch.no_grad():
                    next(self.trainer.generator.parameters()).fill_(float("nan"))
            else:
                result = dataclasses.replace(result, d_loss=result.d_loss * float("nan"))
        return result


@pytest.mark.parametrize("poison_weights", [False, True])
def test_divergence_stops_the_run_and_keeps_the_last_good_checkpoint(poison_weights, small_config, make_trainer):
    trainer = make_trainer(small_config(steps=60, z_dim=None, sample_every=0, hidden=(16,)))
    trainer.start()
    trainer.step_fn = NanAfter(trainer, 23, poison_weights)
    with pytest.raises(DivergenceError, match="training diverged") as info:
        try:
            trainer.train(60 - trainer.step)
            trainer.save_checkpoint()
        finally:
            trainer.stop()
    message = str(info.value)
    assert "last good checkpoint is " in message and "step_0000020" in message and "--lr-g" in message
    assert trainer.step < 60
    ckpt = load_checkpoint(latest_checkpoint(trainer.folder.root))
    assert ckpt.step == 20
    assert all(torch.isfinite(v).all() for v in (*ckpt.generator.values(), *ckpt.discriminator.values()))


def test_divergence_is_one_line_from_the_cli(tmp_path, capsys, monkeypatch):
    from ganforge.cli.main import main
    from ganforge.train import trainer as trainer_module

    start = trainer_module.Trainer.start

    def start_then_break(self):
        start(self)
        self.step_fn = NanAfter(self, 7)

    monkeypatch.setattr(trainer_module.Trainer, "start", start_then_break)
    code = main(["run", "--data", "ring8", "--steps", "30", "--log-every", "5", "--out", str(tmp_path / "r"),
                 "--set", "gen.hidden=16", "--set", "disc.hidden=16"])
    err = capsys.readouterr().err
    assert code == 1 and "training diverged" in err and "Traceback" not in err
    assert "between steps 6 and 10" in err


@pytest.mark.parametrize("flag", ["lr_g", "lr_d"])
def test_infinite_learning_rate_is_refused(flag):
    with pytest.raises(ConfigError, match="positive learning rate"):
        RunConfig(**{flag: float("inf")}).validate()


def _poisoned_points(bad_batches):
    """A plugin data set whose batches number ``bad_batches`` (1-based) hold a NaN sample."""
    from ganforge.data.base import DataInfo, GanDataset

    class Poisoned(GanDataset):
        info = DataInfo((2,), None, "points")

        def batches(self, batch_size, generator):
            n = 0
            while True:
                n += 1
                batch = torch.randn(batch_size, 2, generator=generator)
                if n in bad_batches:
                    batch[0, 0] = float("nan")
                yield batch

        def real_samples(self, n, generator, split="test"):
            return torch.randn(n, 2, generator=generator)

    return Poisoned


@pytest.mark.parametrize("on_nan", ["stop", "skip"])
def test_on_nan_skip_skips_the_bad_updates_and_counts_them(on_nan, small_config, make_trainer, registry):
    registry.add("dataset", "poisoned", lambda **_: _poisoned_points({12, 13, 31})())
    config = small_config(data="poisoned", steps=40, z_dim=None, sample_every=0, hidden=(16,), on_nan=on_nan)
    trainer = make_trainer(config)
    if on_nan == "stop":
        with pytest.raises(DivergenceError, match="step_0000010"):
            trainer.fit()
        return
    trainer.fit()
    assert trainer.skipped_updates == 3
    from ganforge.run.folder import read_metrics

    rows = read_metrics(trainer.folder.metrics)
    assert sum(r.get("skipped", 0) for r in rows) == 3
    assert all(torch.isfinite(p).all() for p in trainer.discriminator.parameters())


def test_on_nan_skip_still_stops_a_run_that_only_produces_nan(small_config, make_trainer, registry):
    registry.add("dataset", "poisoned", lambda **_: _poisoned_points(set(range(1000)))())
    config = small_config(data="poisoned", steps=300, z_dim=None, sample_every=0, ckpt_every=0, hidden=(16,),
                          on_nan="skip")
    with pytest.raises(DivergenceError, match="in a row"):
        make_trainer(config).fit()


def test_on_nan_must_be_stop_or_skip(small_config):
    with pytest.raises(ConfigError, match="--on-nan"):
        small_config(steps=60, z_dim=None, sample_every=0, hidden=(16,), on_nan="ignore").validate()
