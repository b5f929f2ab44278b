"""Train with the plugin registered, then read the event files back with TensorBoard's own
reader and compare them with the run's metrics.jsonl."""

from __future__ import annotations

import ganforge_tensorboard
import pytest

from ganforge import RunConfig, Trainer
from ganforge.plugins import build_registry, get_plugin_manager
from ganforge.run.folder import read_metrics

event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator",
                                        reason="the tensorboard package is not installed")


def train(tmp_path, data: str, steps: int, resume: bool = False) -> Trainer:
    pm = get_plugin_manager(entry_points=False, extra=[ganforge_tensorboard.TensorBoardLogger()])
    config = RunConfig(data=data, steps=steps, batch_size=16, out=str(tmp_path / "run"), threads=1, log_every=5,
                       sample_every=10, ckpt_every=10, eval_every=10, eval_samples=200, resume=resume,
                       eval_metrics=("modes",) if data == "ring8" else ("fid",),
                       options={"gen": {"hidden": (16,)}, "disc": {"hidden": (16,)}})
    trainer = Trainer(config, registry=build_registry(pm), plugin_manager=pm)
    trainer.fit()
    return trainer


def events(run) -> event_accumulator.EventAccumulator:
    reader = event_accumulator.EventAccumulator(str(run / "tensorboard"), size_guidance={"images": 0, "scalars": 0})
    reader.Reload()
    return reader


@pytest.mark.parametrize("data", ["ring8", "mnist"])
def test_losses_evals_and_samples_are_written(tmp_path, data):
    trainer = train(tmp_path, data, 20)
    reader = events(trainer.folder.root)
    rows = [r for r in read_metrics(trainer.folder.metrics) if "d_loss" in r]
    logged = [(e.step, e.value) for e in reader.Scalars("loss/d_loss")]
    assert [s for s, _ in logged] == [r["step"] for r in rows]
    assert all(abs(v - r["d_loss"]) < 1e-6 for (_, v), r in zip(logged, rows, strict=True))
    key = "eval/modes" if data == "ring8" else "eval/fid"
    assert [e.step for e in reader.Scalars(key)] == [10, 20]
    assert [e.step for e in reader.Images("samples")] == [10, 20]


def test_a_resumed_run_purges_what_came_after_its_checkpoint(tmp_path):
    train(tmp_path, "ring8", 20)
    trainer = train(tmp_path, "ring8", 30, resume=True)
    steps = [e.step for e in events(trainer.folder.root).Scalars("loss/d_loss")]
    assert steps == sorted(set(steps)) and steps[-1] == 30


def test_without_tensorboard_it_says_so_once_and_training_goes_on(tmp_path, monkeypatch, capsys):
    import sys

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # as if tensorboard were missing
    trainer = train(tmp_path, "ring8", 10)
    assert trainer.step == 10 and not (trainer.folder.root / "tensorboard").exists()
    err = capsys.readouterr().err
    assert err.count("the tensorboard package is missing") == 1 and "pip install tensorboard" in err


def test_a_run_resumed_after_a_crash_continues_its_events_without_a_purge(tmp_path):
    """The first session dies at step 25 with its last checkpoint at 20: the resumed session cuts
    what came after step 20 from the event files (the plugin's state in the checkpoint) and
    continues them, so every logged step appears once, with the metrics log's value."""
    pm = get_plugin_manager(entry_points=False, extra=[ganforge_tensorboard.TensorBoardLogger()])
    config = RunConfig(data="ring8", steps=30, batch_size=16, out=str(tmp_path / "run"), threads=1, log_every=5,
                       sample_every=10, ckpt_every=10, options={"gen": {"hidden": (16,)}, "disc": {"hidden": (16,)}})
    first = Trainer(config, registry=build_registry(pm), plugin_manager=pm)
    first.start()
    first.train(25)  # checkpoints at 10 and 20, then a crash: no checkpoint of step 25
    first.stop()
    assert [e.step for e in events(first.folder.root).Scalars("loss/d_loss")] == [5, 10, 15, 20, 25]

    config.resume = True
    pm = get_plugin_manager(entry_points=False, extra=[ganforge_tensorboard.TensorBoardLogger()])
    resumed = Trainer(config, registry=build_registry(pm), plugin_manager=pm)
    resumed.fit()
    reader = events(resumed.folder.root)
    rows = [r for r in read_metrics(resumed.folder.metrics) if "d_loss" in r]
    logged = [(e.step, e.value) for e in reader.Scalars("loss/d_loss")]
    assert [s for s, _ in logged] == [5, 10, 15, 20, 25, 30] == [r["step"] for r in rows]
    assert all(abs(v - r["d_loss"]) < 1e-6 for (_, v), r in zip(logged, rows, strict=True))
