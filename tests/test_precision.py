"""``--precision bf16|fp16``: autocast around the forward passes (the fused op runs its own bf16
path on the CPU and falls back to its reference for fp16, whose linear runs in half precision);
weights, gradients and optimiser state stay float32; fp16 adds torch.amp's gradient scaling, whose
skipped steps are counted and logged."""

from __future__ import annotations

import json

import pytest
import torch

from ganforge import RunConfig, Trainer
from ganforge.cli.main import main
from ganforge.errors import ConfigError
from ganforge.nn import FusedDense
from ganforge.run.folder import read_metrics
from ganforge.runtime import precision


def fit_recording_dtypes(trainer: Trainer, network: torch.nn.Module) -> set[torch.dtype]:
    """Train, and return the output dtypes of ``network``'s dense layers."""
    dtypes: set[torch.dtype] = set()
    for module in network.modules():
        if isinstance(module, FusedDense):
            module.register_forward_hook(lambda m, i, out: dtypes.add(out.dtype))
    trainer.fit()
    return dtypes


def config(tmp_path, **kw) -> RunConfig:
    base = dict(data="digits", steps=6, batch_size=16, out=str(tmp_path / "r"), threads=1, sample_every=0,
                precision="bf16", options={"gen": {"hidden": (32, 32), "norm": "batch"}, "disc": {"hidden": (32,)}})
    return RunConfig(**{**base, **kw})


@pytest.mark.parametrize("loss_options", [{}, {"r1": 1.0}])
def test_bf16_trains_with_float32_weights_and_bf16_layers(loss_options, tmp_path, make_trainer):
    cfg = config(tmp_path, options={**config(tmp_path).options, "loss": loss_options})
    trainer = make_trainer(cfg)
    dtypes = fit_recording_dtypes(trainer, trainer.discriminator)
    assert torch.bfloat16 in dtypes  # the dense layers ran in bf16
    for p in [*trainer.generator.parameters(), *trainer.discriminator.parameters()]:
        assert p.dtype == torch.float32 and torch.isfinite(p).all()
    state = trainer.opt_g.state_dict()["state"]
    assert all(v.dtype == torch.float32 for s in state.values() for k, v in s.items() if k != "step")


@pytest.mark.parametrize("loss_options", [{}, {"r1": 1.0}])
def test_fp16_trains_with_float32_weights_fp16_layers_and_a_logged_loss_scale(loss_options, tmp_path, make_trainer):
    cfg = config(tmp_path, precision="fp16", log_every=2, options={**config(tmp_path).options, "loss": loss_options})
    trainer = make_trainer(cfg)
    dtypes = fit_recording_dtypes(trainer, trainer.generator)
    assert torch.float16 in dtypes
    for p in [*trainer.generator.parameters(), *trainer.discriminator.parameters()]:
        assert p.dtype == torch.float32 and torch.isfinite(p).all()
    rows = read_metrics(tmp_path / "r" / "metrics.jsonl")
    assert [r["step"] for r in rows] == [2, 4, 6]
    assert all(r["fp16_scale"] > 0 and r["fp16_overflow_skips"] >= 0 for r in rows)


def test_fp16_overflow_skips_the_update_counts_it_and_lowers_the_scale(tmp_path, make_trainer):
    trainer = make_trainer(config(tmp_path, precision="fp16", steps=4, log_every=4))
    # A scale no float16 gradient survives: the first updates must overflow and be skipped.
    trainer.scalers = {k: torch.amp.GradScaler("cpu", init_scale=2.0 ** 60) for k in ("d", "g")}
    before = {k: v.clone() for k, v in trainer.generator.state_dict().items()}
    trainer.start()
    try:
        trainer.train(1)
        assert trainer.step_fn.scaler_skips == 2  # D's update and G's
        after = trainer.generator.state_dict()
        assert all(torch.equal(before[k], after[k]) for k in before if "running" not in k and "batches" not in k)
        trainer.train(3)
    finally:
        trainer.stop()
    [row] = read_metrics(tmp_path / "r" / "metrics.jsonl")
    assert row["fp16_overflow_skips"] >= 2
    assert row["fp16_scale"] < 2.0 ** 60
    assert all(torch.isfinite(p).all() for p in trainer.generator.parameters())


def test_fp16_resume_restores_the_loss_scale_exactly(tmp_path, make_trainer):
    def run(out: str, steps: int, resume: bool = False) -> Trainer:
        trainer = make_trainer(config(tmp_path, precision="fp16", steps=steps, out=str(tmp_path / out), resume=resume))
        # A scale that overflows at first and then grows every 2 clean steps: it changes often.
        trainer.scalers = {k: torch.amp.GradScaler("cpu", init_scale=2.0 ** 30, growth_interval=2) for k in "dg"}
        trainer.fit()
        return trainer

    straight = run("straight", 8)
    run("cut", 4)
    resumed = run("cut", 8, resume=True)
    def scaler_states(trainer):  # type: ignore[no-untyped-def]
        return {k: v.state_dict() for k, v in trainer.scalers.items()}

    assert scaler_states(straight) == scaler_states(resumed)
    resumed_weights = resumed.generator.state_dict().values()
    for (name, a), b in zip(straight.generator.state_dict().items(), resumed_weights, strict=True):
        assert torch.equal(a, b), name


def test_precision_must_be_known(tmp_path):
    with pytest.raises(ConfigError, match="--precision"):
        config(tmp_path, precision="fp8").validate()


@pytest.mark.parametrize("native, resolved", [(True, "bf16"), (False, "fp32")])
def test_auto_takes_bf16_only_where_the_device_computes_it_natively(native, resolved, tmp_path, make_trainer,
                                                                   monkeypatch):
    """``auto``: bf16 where the hardware does it (AVX512-BF16/AMX, a recent GPU), fp32 where torch
    would emulate it (12x slower convolutions on an AVX2 CPU); the run records what it resolved to."""
    monkeypatch.setattr(precision, "native_bf16", lambda device: native)
    trainer = make_trainer(config(tmp_path, precision="auto"))
    dtypes = fit_recording_dtypes(trainer, trainer.discriminator)
    assert trainer.seam.precision == trainer.run.precision == resolved
    assert dtypes == {torch.bfloat16 if native else torch.float32}
    record = json.loads((tmp_path / "r" / "config.json").read_text())
    assert record["config"]["precision"] == "auto" and record["versions"]["precision"] == resolved
    assert trainer.run.precision_warning is None


def test_bf16_on_a_cpu_that_emulates_it_warns_in_one_line_and_still_trains(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(precision, "native_bf16", lambda device: False)
    code = main(["run", "--data", "digits", "--steps", "2", "--batch-size", "16", "--threads", "1",
                 "--precision", "bf16", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 0
    assert "on cpu in bf16" in err
    warning = [line for line in err.splitlines() if "no native bf16" in line]
    assert len(warning) == 1 and "--precision auto" in warning[0]


def test_fp32_and_native_bf16_print_no_precision_warning():
    cpu = torch.device("cpu")
    assert precision.emulation_warning("fp32", cpu) is None and precision.emulation_warning("auto", cpu) is None
    assert precision.resolve_precision("fp16", cpu) == "fp16"
