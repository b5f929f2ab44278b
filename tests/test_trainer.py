"""The training loop: run folder contents, determinism, loss defaults, resume, interruption."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from ganforge import RunConfig, Trainer
from ganforge.errors import ConfigError
from ganforge.run.folder import read_metrics
from ganforge.train import artifacts


def fit(trainer: Trainer) -> Trainer:
    trainer.fit()
    return trainer


def test_run_folder_holds_everything_documented(tiny_points_config, make_trainer):
    trainer = fit(make_trainer(tiny_points_config))
    root = trainer.folder.root
    record = json.loads((root / "config.json").read_text())
    assert record["config"]["loss"] == "nonsat" and record["config"]["n_critic"] == 1
    assert record["versions"]["torch"] == torch.__version__
    assert record["versions"]["components"]["loss"]["distribution"] == "ganforge"
    rows = read_metrics(root / "metrics.jsonl")
    assert [r["step"] for r in rows] == [5, 10, 15, 20, 25, 30]
    assert all({"d_loss", "g_loss", "time"} <= set(r) for r in rows)
    assert sorted(p.name for p in (root / "samples").iterdir()) == [
        "step_0000010.png", "step_0000020.png", "step_0000030.png"]
    assert (root / "checkpoints" / "latest").read_text().strip() == "step_0000030"
    assert (root / "losses.png").is_file()


def test_same_command_twice_gives_identical_losses(tiny_points_config, make_trainer, tmp_path):
    first = fit(make_trainer(tiny_points_config))
    tiny_points_config.out = str(tmp_path / "again")
    second = fit(make_trainer(tiny_points_config))
    a = [(r["d_loss"], r["g_loss"]) for r in read_metrics(first.folder.metrics)]
    b = [(r["d_loss"], r["g_loss"]) for r in read_metrics(second.folder.metrics)]
    assert a == b


def test_image_run_writes_an_image_grid(tmp_path, make_trainer):
    config = RunConfig(data="digits", steps=4, batch_size=16, out=str(tmp_path / "img"), log_every=2,
                       options={"gen": {"hidden": (16,)}, "disc": {"hidden": (16,)}})
    trainer = fit(make_trainer(config))
    image = Image.open(trainer.folder.last_samples())
    assert image.mode == "L" and image.width > 8 * 8


@pytest.mark.parametrize("loss, n_critic, optimizer, lr", [
    ("wasserstein", 5, "rmsprop", 5e-5), ("wgan-gp", 5, "adam", 1e-4), ("minimax", 1, "adam", 2e-4)])
def test_loss_declares_its_training_defaults(loss, n_critic, optimizer, lr, tiny_points_config, make_trainer):
    tiny_points_config.loss, tiny_points_config.steps = loss, 3
    trainer = fit(make_trainer(tiny_points_config))
    c = trainer.config
    assert (c.n_critic, c.optimizer, c.lr_g, c.lr_d) == (n_critic, optimizer, lr, lr)
    if loss == "wasserstein":
        assert isinstance(trainer.opt_d, torch.optim.RMSprop)
        assert max(p.abs().max().item() for p in trainer.discriminator.parameters()) <= 0.01 + 1e-7
    if loss == "wgan-gp":
        assert c.betas == (0.0, 0.9)


def test_user_flags_override_loss_defaults(tiny_points_config, make_trainer):
    tiny_points_config.loss, tiny_points_config.n_critic, tiny_points_config.lr_d = "wasserstein", 2, 1e-3
    tiny_points_config.steps = 2
    c = fit(make_trainer(tiny_points_config)).config
    assert (c.n_critic, c.lr_d, c.lr_g) == (2, 1e-3, 5e-5)


def test_existing_run_is_protected_and_resume_continues(tiny_points_config, make_trainer):
    fit(make_trainer(tiny_points_config))
    with pytest.raises(ConfigError, match="--resume"):
        make_trainer(tiny_points_config).fit()
    tiny_points_config.resume, tiny_points_config.steps = True, 40
    trainer = fit(make_trainer(tiny_points_config))
    assert trainer.step == 40
    steps = [r["step"] for r in read_metrics(trainer.folder.metrics)]
    assert steps == sorted(set(steps)) and steps[-1] == 40


def test_ctrl_c_leaves_a_complete_checkpoint(tiny_points_config, make_trainer, plugin_manager):
    from ganforge import hookimpl
    from ganforge.run.checkpoint import latest_checkpoint, load_checkpoint

    class InterruptAt17:
        @hookimpl
        def ganforge_on_step_end(self, run, step, logs):
            if step == 17:
                raise KeyboardInterrupt

    plugin_manager.register(InterruptAt17())
    with pytest.raises(KeyboardInterrupt):
        make_trainer(tiny_points_config).fit()
    ckpt = load_checkpoint(latest_checkpoint(tiny_points_config.out))
    assert ckpt.step == 17


def test_generator_output_matches_the_data_range(registry):
    from ganforge.data import DataInfo
    from ganforge.train.build import build_models

    config = RunConfig().resolved({})
    gen, _ = build_models(config, registry, DataInfo((1, 4, 4), (0.0, 255.0), "image"))
    with torch.no_grad():
        out = gen(torch.randn(256, 100) * 50)
    assert out.min() >= 0.0 and out.max() <= 255.0 and out.max() > 128
    gen, _ = build_models(config, registry, DataInfo((2,), None, "points"))
    assert np.isfinite(gen(torch.randn(3, 100)).detach().numpy()).all()


def test_data_set_declares_run_defaults_and_flags_override(tmp_path, registry, plugin_manager):
    from ganforge.resolve import resolve_settings as resolve_config

    c = resolve_config(RunConfig(data="grid25"), registry)
    assert (c.z_dim, c.batch_size, c.steps) == (2, 100, 12000)
    c = resolve_config(RunConfig(data="grid25", z_dim=7), registry)
    assert (c.z_dim, c.batch_size) == (7, 100)
    c = resolve_config(RunConfig(data="mnist", loss="wasserstein"), registry)
    assert (c.z_dim, c.batch_size, c.n_critic) == (100, 64, 5)


def test_mlp_sizes_follow_the_data(registry):
    from ganforge.models import MLPDiscriminator, MLPGenerator

    def widths(module):
        return [m.out_features for m in module.modules() if isinstance(m, torch.nn.Linear)]

    assert widths(MLPGenerator(100, (1, 28, 28), (-1.0, 1.0))) == [256, 512, 1024, 784]
    assert widths(MLPDiscriminator((1, 28, 28))) == [512, 256, 1]
    points_gen = MLPGenerator(2, (2,))
    assert widths(points_gen) == [400, 400, 400, 400, 2]
    assert any(isinstance(m, torch.nn.BatchNorm1d) for m in points_gen.modules())
    points_disc = MLPDiscriminator((2,))
    assert widths(points_disc) == [200, 200, 200, 1]
    assert not any(isinstance(m, torch.nn.Dropout) for m in points_disc.modules())


def test_image_runs_save_the_real_digits_beside_their_pictures(tmp_path, make_trainer):
    """samples/real.png: the real training images drawn the same way as the pictures (read back
    with Pillow), so a picture is judged against the data; drawn again by a resumed session, so a
    file left from another run in the folder, or cut short, does not stay."""
    config = RunConfig(data="mnist", steps=4, batch_size=8, z_dim=8, out=str(tmp_path / "run"), threads=1,
                       sample_every=2, ckpt_every=2, options={"gen": {"hidden": (16,)}, "disc": {"hidden": (16,)}})
    trainer = fit(make_trainer(config))
    real_path = trainer.folder.samples / "real.png"
    picture = np.asarray(Image.open(real_path))
    expected = artifacts.to_uint8_images(trainer.real_preview, trainer.info.value_range)
    # the first cell, inside the 2-pixel white border, upscaled twice
    assert np.array_equal(picture[4:60:2, 4:60:2], expected[0, ..., 0])
    assert picture.shape == np.asarray(Image.open(trainer.folder.last_samples())).shape
    before = real_path.read_bytes()
    real_path.write_bytes(before[: len(before) // 2])  # a write cut short
    config.steps, config.resume = 6, True
    fit(make_trainer(config))
    assert real_path.read_bytes() == before
    assert sorted(p.name for p in trainer.folder.samples.iterdir())[-1] == "step_0000006.png"
