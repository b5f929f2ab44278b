"""``--augment``: DiffAugment's operations on every input of D, and ADA's adaptive probability.

Pinned here: each operation's statistics and differentiability, where the step applies the
augmentation (reals and fakes in the D step, fakes in the G step), seeding, ADA's direction and
its checkpointed state, exact resume and thread invariance with it on, and the usage errors."""

from __future__ import annotations

import pytest
import torch

from ganforge import RunConfig
from ganforge.cli.main import main
from ganforge.errors import UsageError
from ganforge.train.augment import ADA_INTERVAL, DiffAugment, color, cutout, policy_names, translation


def _rand(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return lambda shape: torch.rand(shape, generator=g)


def _images(n: int = 16, c: int = 3, size: int = 16, seed: int = 1) -> torch.Tensor:
    return torch.rand(n, c, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


# -- each operation ---------------------------------------------------------------------------------


@pytest.mark.parametrize("op", [translation, cutout, color])
def test_gradients_flow_through_each_operation(op):
    x = _images().requires_grad_(True)
    op(x, _rand()).square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_translation_shifts_by_at_most_an_eighth_and_pads_with_zeros():
    size, shift = 16, 2  # 16 / 8
    x = torch.arange(1.0, size * size + 1).view(1, 1, size, size).repeat(64, 1, 1, 1)  # no zero inside
    out = translation(x, _rand())
    seen = set()
    for sample in out[:, 0]:
        inside = sample != 0
        rows, cols = inside.any(1).nonzero().flatten(), inside.any(0).nonzero().flatten()
        # the image's top-left pixel (value 1) lands at (dy, dx) when the shift is within range
        kept = sample[inside]
        assert len(kept) >= (size - shift) ** 2  # at most `shift` rows and columns lost
        assert set(kept.tolist()) <= set(x[0, 0].flatten().tolist())
        dy = int(rows[0]) if rows[0] > 0 else -(size - 1 - int(rows[-1]))
        dx = int(cols[0]) if cols[0] > 0 else -(size - 1 - int(cols[-1]))
        assert abs(dy) <= shift and abs(dx) <= shift
        assert (sample[~inside] == 0).all()  # the padding is zero
        seen.add((dy, dx))
    assert len(seen) > 5  # per sample, not one shift for the batch


def test_cutout_zeros_one_square_of_half_the_size():
    size = 16
    x = torch.ones(200, 1, size, size)
    out = cutout(x, _rand())
    for sample in out[:, 0]:
        zero = sample == 0
        rows, cols = zero.any(1).nonzero().flatten(), zero.any(0).nonzero().flatten()
        assert len(rows) <= size // 2 and len(cols) <= size // 2
        assert int(zero.sum()) == len(rows) * len(cols)  # one rectangle (a square clipped at a border)
    full = [(out[i, 0] == 0).sum() for i in range(len(out))]
    assert max(full) == (size // 2) ** 2 and min(full) > 0


def test_color_stays_within_the_papers_ranges():
    # brightness + U(-0.5, 0.5) on a constant image: saturation and contrast leave a flat image flat
    flat = torch.zeros(500, 3, 4, 4)
    shift = color(flat, _rand())[:, 0, 0, 0]
    assert shift.min() >= -0.5 and shift.max() <= 0.5 and shift.max() - shift.min() > 0.9
    # contrast x U(0.5, 1.5) (and saturation x U(0, 2)) on a grey image with a bright pixel
    grey = torch.zeros(500, 1, 4, 4)
    grey[:, :, 0, 0] = 1.0
    out = color(grey, _rand(3))
    spread = (out[:, 0, 0, 0] - out[:, 0, 1, 1])  # brightness cancels; one channel: saturation is identity
    assert spread.min() >= 0.5 - 1e-6 and spread.max() <= 1.5 + 1e-6 and spread.max() - spread.min() > 0.9
    rgb = torch.zeros(500, 3, 1, 1)
    rgb[:, 0] = 1.0  # red: channel spread around the pixel's mean grows by U(0, 2) (then the contrast)
    out = color(rgb, _rand(4))
    ratio = (out[:, 0] - out[:, 1]).flatten()
    assert ratio.min() >= 0 and ratio.max() <= 2 * 1.5 + 1e-5


def test_p_zero_is_the_identity_and_p_one_always_applies():
    x = _images()
    assert DiffAugment(["translation,cutout,color"], 0, p=0.0)(x) is x
    always = DiffAugment(["cutout"], 0, p=1.0)(torch.ones(64, 1, 16, 16))
    assert all((sample == 0).any() for sample in always)
    half = DiffAugment(["cutout"], 0, p=0.5)(torch.ones(400, 1, 16, 16))
    share = sum(bool((s == 0).any()) for s in half) / 400
    assert 0.4 < share < 0.6


def test_policy_names_accept_comma_lists_and_refuse_unknown_names():
    assert policy_names(["translation,cutout", "color"]) == ("color", "translation", "cutout")
    with pytest.raises(UsageError, match="unknown augmentation rotate"):
        policy_names(["translation,rotate"])


# -- seeding ----------------------------------------------------------------------------------------


def test_same_seed_same_batch_different_seed_different():
    x = _images()
    a = DiffAugment(["translation,cutout,color"], 7)(x)
    b = DiffAugment(["translation,cutout,color"], 7)(x)
    c = DiffAugment(["translation,cutout,color"], 8)(x)
    assert torch.equal(a, b) and not torch.equal(a, c)


# -- ADA ------------------------------------------------------------------------------------------


def _feed(aug: DiffAugment, sign: float, steps: int, batch: int = 64) -> None:
    for _ in range(steps):
        aug.observe(torch.full((batch, 1), sign))


def test_ada_raises_p_when_d_overfits_and_lowers_it_otherwise():
    aug = DiffAugment(["translation"], 0, p="ada", target=0.6, ramp_images=64 * ADA_INTERVAL * 10)
    assert aug.p == 0.0
    _feed(aug, +1.0, ADA_INTERVAL * 3)  # every real scored positive: r_t = 1 > 0.6
    assert aug.r_t == 1.0 and aug.p == pytest.approx(0.3)
    _feed(aug, -1.0, ADA_INTERVAL)  # r_t = -1 < 0.6
    assert aug.p == pytest.approx(0.2)
    _feed(aug, +1.0, ADA_INTERVAL * 100)
    assert aug.p == 1.0  # clamped
    _feed(aug, -1.0, ADA_INTERVAL * 100)
    assert aug.p == 0.0
    _feed(aug, +1.0, ADA_INTERVAL - 1)  # no change before the interval is complete
    assert aug.p == 0.0


def test_ada_state_is_saved_and_restored():
    aug = DiffAugment(["translation,color"], 0, p="ada", ramp_images=1000)
    _feed(aug, 1.0, ADA_INTERVAL * 2 + 1)  # mid interval
    aug(_images())  # the generator moved
    state = aug.state_dict()
    other = DiffAugment(["translation,color"], 0, p="ada", ramp_images=1000)
    other.load_state_dict(state)
    assert other.p == aug.p > 0
    x = _images(seed=5)
    assert torch.equal(aug(x), other(x))
    _feed(aug, 1.0, ADA_INTERVAL - 1)
    _feed(other, 1.0, ADA_INTERVAL - 1)
    assert aug.p == other.p


# -- in the step ------------------------------------------------------------------------------------


def _image_config(out, **extra) -> RunConfig:
    options = {"gen": {"hidden": (16, 16), "norm": "batch"}, "disc": {"hidden": (16,)}}
    settings = dict(data="digits", steps=24, batch_size=32, z_dim=8, threads=1, log_every=7, sample_every=0,
                    ckpt_every=0, seed=3, ema=0.9, augment=("translation,cutout,color",), options=options)
    return RunConfig(out=str(out), **{**settings, **extra})


def test_the_step_augments_reals_and_fakes_for_d_and_fakes_for_g(tmp_path, make_trainer):
    """A spy on the augmentation records what D sees: the D step augments the real batch and the
    fake batch (detached), the G step the fake batch with its graph to G."""
    trainer = make_trainer(_image_config(tmp_path / "run", steps=1, n_critic=2))
    trainer.start()
    seen: list[tuple[bool, bool]] = []  # (is the real batch, carries G's graph)
    reals: list[torch.Tensor] = []
    real_batch, augment = trainer.step_fn.real_batch, trainer.step_fn.augment

    def spy_real_batch():
        x, labels = real_batch()
        reals.append(x)
        return x, labels

    class Spy:
        def __call__(self, x):
            seen.append((any(x is r for r in reals), x.requires_grad))
            return augment(x)

        def observe(self, logits):
            augment.observe(logits)

    trainer.step_fn.augment = Spy()
    trainer.step_fn.real_batch = spy_real_batch  # type: ignore[method-assign]
    trainer.train(1)
    trainer.stop()
    # two critic updates (real, fake each), then the generator update (fake with G's graph)
    assert seen == [(True, False), (False, False), (True, False), (False, False), (False, True)]


def test_gradients_reach_g_through_the_augmentation(tmp_path, make_trainer):
    trainer = make_trainer(_image_config(tmp_path / "run", steps=1))
    trainer.start()
    before = [p.detach().clone() for p in trainer.generator.parameters()]
    trainer.train(1)
    trainer.stop()
    grads = [p.grad for p in trainer.generator.parameters()]
    assert all(g is not None for g in grads) and sum(float(g.abs().sum()) for g in grads) > 0
    assert any(not torch.equal(a, p) for a, p in zip(before, trainer.generator.parameters(), strict=True))


def test_p_and_r_t_are_logged(tmp_path, make_trainer):
    from ganforge.run.folder import read_metrics

    trainer = make_trainer(_image_config(tmp_path / "run", augment_p="ada", augment_ramp=500))
    trainer.fit()
    rows = [r for r in read_metrics(trainer.folder.metrics) if "d_loss" in r]
    assert all("augment_p" in r for r in rows) and all(0 <= r["augment_p"] <= 1 for r in rows)
    assert "augment_rt" in rows[-1] and -1 <= rows[-1]["augment_rt"] <= 1


@pytest.mark.slow
def test_resume_with_ada_is_bit_identical(tmp_path, make_trainer, plugin_manager, monkeypatch):
    """Follows tests/test_exact_resume.py: a run that dies after its checkpoint at step 10 (mid
    ADA interval, p already moved) ends exactly where the uninterrupted run ends."""
    from test_exact_resume import Crash, assert_identical

    from ganforge import hookimpl
    from ganforge.run.checkpoint import latest_checkpoint, load_checkpoint
    from ganforge.train import augment

    # This small D scores reals at r_t from -0.75 to -0.2 in 24 steps: seen 1.5 higher, p rises
    adjust = augment.DiffAugment.adjust
    monkeypatch.setattr(augment.DiffAugment, "adjust", lambda self, r_t, images: adjust(self, r_t + 1.5, images))

    extra = dict(augment_p="ada", augment_ramp=1000)
    make_trainer(_image_config(tmp_path / "straight", **extra)).fit()

    class DieAt13:
        @hookimpl
        def ganforge_on_step_end(self, run, step, logs):
            if step == 13:
                raise Crash

    dying = DieAt13()
    plugin_manager.register(dying)
    with pytest.raises(Crash):
        make_trainer(_image_config(tmp_path / "cut", ckpt_every=10, **extra)).fit()
    plugin_manager.unregister(dying)
    saved = load_checkpoint(latest_checkpoint(tmp_path / "cut"))
    assert saved.step == 10 and 0 < saved.state["augment"]["p"] < 1
    make_trainer(_image_config(tmp_path / "cut", ckpt_every=10, resume=True, **extra)).fit()
    assert_identical(tmp_path / "straight", tmp_path / "cut")


@pytest.mark.slow
def test_one_and_two_threads_augment_alike(tmp_path, make_trainer):
    def weights(threads: int, out) -> list[torch.Tensor]:
        options = {"gen": {"hidden": (512, 512), "norm": "batch"}, "disc": {"hidden": (512, 512)}}
        trainer = make_trainer(_image_config(out, steps=8, batch_size=128, threads=threads, options=options,
                                             augment_p="ada", augment_ramp=1000))
        trainer.fit()
        return [t.detach().clone() for m in (trainer.generator, trainer.discriminator) for t in m.state_dict().values()]

    one, two = weights(1, tmp_path / "one"), weights(2, tmp_path / "two")
    assert all(torch.equal(a, b) for a, b in zip(one, two, strict=True))


# -- usage errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("args", "message"), [
    (["--data", "mnist", "--augment", "rotate"], "--augment must be some of translation, cutout, color"),
    (["--data", "ring8", "--augment", "translation"], "--augment transforms images"),
    (["--data", "mnist", "--augment", "translation", "--augment-p", "ada", "--augment-target", "1.5"],
     "--augment-target must be a number in (0, 1)"),
    (["--data", "mnist", "--augment", "translation", "--augment-p", "1.5"], "--augment-p must be a probability"),
    (["--data", "mnist", "--augment-p", "ada"], "add --augment"),
])
def test_usage_errors_are_one_line_with_exit_2(args, message, tmp_path, capsys):
    code = main(["run", *args, "--steps", "1", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert message in err and len(err.splitlines()) == 1, err
