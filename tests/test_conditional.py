"""Class-conditional training: labelled batches, fakes drawn with the real batch's classes, and a
projection discriminator (``gen.classes=K`` with ``disc.classes=K``)."""

from __future__ import annotations

import math

import pytest
import torch
from scipy import stats

from ganforge import RunConfig
from ganforge.cli.main import main
from ganforge.data.base import GanDataset, TensorDataset
from ganforge.data.mnist import IMAGE_INFO
from ganforge.errors import ConfigError
from ganforge.losses.regularizers import r1_r2_penalty
from ganforge.models import MLPGenerator
from ganforge.models.mlp import DiscreteCode, MLPDiscriminator
from ganforge.train.conditioning import WithLabels, check_labels, conditional_classes


@pytest.mark.parametrize("classes", [2, 10, 37])
def test_noise_of_class_draws_the_asked_class_and_changes_nothing_else(classes):
    code = DiscreteCode(classes)
    z = torch.randn(5000, 4)
    labels = torch.randint(classes, (5000,))
    uniform = torch.rand(5000)
    uniform[:3] = torch.tensor([0.0, 1.0 - 2**-24, 0.5])  # the slice's edges
    out = code.noise_of_class(z, labels, uniform)
    assert torch.equal(code.class_of(out).long(), labels)
    assert torch.equal(out[:, 1:], z[:, 1:])
    assert torch.isfinite(out).all()


def test_noise_of_balanced_classes_is_still_a_standard_normal():
    """Sampling needs no labels because conditioned noise has the same law as plain noise:
    checked against the normal distribution with scipy's Kolmogorov-Smirnov test."""
    classes, n = 10, 40_000
    z0 = DiscreteCode(classes).noise_of_class(torch.randn(n, 2), torch.randint(classes, (n,)), torch.rand(n))[:, 0]
    assert stats.kstest(z0.double().numpy(), "norm").pvalue > 1e-4


def _disc(**options) -> MLPDiscriminator:
    return MLPDiscriminator((1, 6, 6), hidden=(16, 8), **options)


@pytest.mark.parametrize("options", [{}, {"maxout": 3}, {"mbstd": False}, {"spectral_norm": True}],
                         ids=["default", "maxout", "no-mbstd", "spectral-norm"])
def test_projection_adds_the_class_embedding_dotted_with_the_last_hidden_features(options):
    torch.manual_seed(0)
    d = _disc(classes=5, dropout=0.0, **options).eval()
    x, y = torch.randn(12, 1, 6, 6), torch.randint(5, (12,))
    head = 1 if options.get("mbstd") is False else 2  # the output layer, after the minibatch feature
    h = x.flatten(1)
    for layer in d.net[:-head]:  # the hidden layers
        h = layer(h)
    expected = d.net[-head:](h).squeeze(1) + (d.embed.weight[y] * h).sum(1)
    torch.testing.assert_close(d(x, y), expected)
    other = (y + 1) % 5
    assert not torch.allclose(d(x, other), d(x, y))  # the label matters


def test_pair_pass_equals_two_calls_with_the_labels():
    torch.manual_seed(1)
    d = _disc(classes=3, dropout=0.0)
    real, fake, y = torch.randn(8, 1, 6, 6), torch.randn(8, 1, 6, 6), torch.randint(3, (8,))
    pair = d.forward_pair(real, fake, y)
    torch.testing.assert_close(pair[0], d(real, y))
    torch.testing.assert_close(pair[1], d(fake, y))


def test_an_unconditional_discriminator_is_unchanged_by_the_option():
    torch.manual_seed(2)
    plain = _disc()
    assert not hasattr(plain, "embed") and plain.classes == 0
    x = torch.randn(4, 1, 6, 6)
    torch.manual_seed(3)
    a = plain(x)
    torch.manual_seed(3)
    b = plain.net(x.flatten(1)).squeeze(1)
    torch.testing.assert_close(a, b)


def test_conditional_discriminator_errors_name_the_fix():
    with pytest.raises(ConfigError, match="needs each sample's label"):
        _disc(classes=4)(torch.randn(2, 1, 6, 6))
    with pytest.raises(ConfigError, match="cannot be combined"):
        _disc(classes=4, pack=2)
    with pytest.raises(ConfigError, match="disc.classes must be 0"):
        _disc(classes=1)


def test_the_pair_must_agree_on_the_classes():
    d = _disc(classes=4)
    assert conditional_classes(MLPGenerator(3, (1, 6, 6), classes=4), d) == 4
    assert conditional_classes(MLPGenerator(3, (1, 6, 6)), _disc()) == 0
    with pytest.raises(ConfigError, match=r"--set gen.classes=4"):
        conditional_classes(MLPGenerator(3, (1, 6, 6)), d)
    with pytest.raises(ConfigError, match=r"has 3 classes"):
        conditional_classes(MLPGenerator(3, (1, 6, 6), classes=3), d)


def test_labels_are_checked_against_the_classes():
    with pytest.raises(ConfigError, match="needs labelled data"):
        check_labels(None, 10, "ring8")
    with pytest.raises(ConfigError, match="unlabelled samples"):
        check_labels(torch.tensor([0, -1, 2]), 10, "folder")
    with pytest.raises(ConfigError, match=r"disc.classes=12 --set gen.classes=12"):
        check_labels(torch.tensor([0, 11]), 10, "folder")
    check_labels(torch.tensor([0, 9]), 10, "mnist")


def test_a_plugin_data_set_with_labels_but_no_labelled_stream_gets_a_message():
    """A third-party data set that reports labels without streaming them: a ConfigError naming the
    method to implement (a usage error at the command line), not a NotImplementedError traceback."""

    class LabelsOnly(GanDataset):
        info = IMAGE_INFO

        def batches(self, batch_size, generator):
            while True:
                yield torch.zeros(batch_size, *IMAGE_INFO.sample_shape)

        def real_samples(self, n, generator, split="test"):
            return torch.zeros(n, *IMAGE_INFO.sample_shape)

        @property
        def labels(self):
            return torch.arange(40) % 10

    with pytest.raises(ConfigError, match=r"LabelsOnly has labels but no labelled_batches\(\)"):
        LabelsOnly().labelled_batches(8, torch.Generator())
    x = torch.rand(40, *IMAGE_INFO.sample_shape) * 2 - 1
    with pytest.raises(ConfigError, match="has no labels"):
        TensorDataset(x, x[:8], IMAGE_INFO).labelled_batches(8, torch.Generator())


def test_labelled_batches_are_the_plain_batches_with_their_labels():
    x = torch.randn(50, 1, 2, 2)
    labels = torch.arange(50) % 7
    data = TensorDataset(x, x[:0], IMAGE_INFO, labels)
    plain = data.batches(8, torch.Generator().manual_seed(4))
    labelled = data.labelled_batches(8, torch.Generator().manual_seed(4))
    for _ in range(15):  # across two epoch boundaries
        batch, (same, y) = next(plain), next(labelled)
        assert torch.equal(batch, same)
        rows = [int((x.flatten(1) == row).all(1).nonzero()) for row in batch.flatten(1)]
        assert torch.equal(y, labels[rows])


def test_the_penalty_sees_the_labelled_discriminator():
    """R1 and R2 through the wrapper equal the penalties computed with the labels by hand."""
    torch.manual_seed(5)
    d = _disc(classes=3, dropout=0.0)
    real, fake, y = torch.randn(6, 1, 6, 6), torch.randn(6, 1, 6, 6), torch.randint(3, (6,))
    got = r1_r2_penalty(WithLabels(d, y), real, fake, r1=2.0, r2=3.0)
    terms = []
    for x in (real, fake):
        x = x.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(d(x, y).sum(), x)
        terms.append(grad.pow(2).sum() / len(x))
    torch.testing.assert_close(got, 0.5 * 2.0 * terms[0] + 0.5 * 3.0 * terms[1])


def _mnist_config(out, steps=6, **extra) -> RunConfig:
    options = {"gen": {"hidden": (16, 16), "norm": "batch", "classes": 10},
               "disc": {"hidden": (16,), "classes": 10}}
    settings = dict(batch_size=16, z_dim=8, threads=1, sample_every=0, ckpt_every=0, seed=2, ema=0.9, options=options)
    return RunConfig(data="mnist", steps=steps, out=str(out), **{**settings, **extra})


def test_each_fake_is_drawn_with_the_class_of_its_real_partner(tmp_path, make_trainer):
    trainer = make_trainer(_mnist_config(tmp_path / "run"))
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []
    score = trainer.discriminator.forward_pair

    def spy(real, fake, labels=None):
        seen.append((real.detach().clone(), labels.clone()))
        assert torch.equal(trainer.generator.net[0].class_of(last_noise[-1]).long(), labels)
        return score(real, fake, labels)

    last_noise: list[torch.Tensor] = []
    make_noise = trainer.generator.noise_of_class

    def record(z, labels, uniform):
        last_noise.append(make_noise(z, labels, uniform))
        return last_noise[-1]

    trainer.discriminator.forward_pair = spy
    trainer.generator.noise_of_class = record
    trainer.fit()
    assert len(seen) == 6
    pixels, labels = trainer.data.train.flatten(1), trainer.data.train_labels
    for real, y in seen:
        rows = [int((pixels == row).all(1).nonzero()[0]) for row in real.flatten(1)]
        assert torch.equal(y, labels[rows])  # the labels are the real samples' own


@pytest.mark.parametrize("loss", ["nonsat", "wgan-gp", "rpgan"])
def test_conditional_training_runs_with_every_kind_of_loss(loss, tmp_path, make_trainer):
    """Gradient penalties (R1 here, WGAN-GP's interpolates, R3GAN's pairs) score with the labels."""
    config = _mnist_config(tmp_path / loss, loss=loss)
    if loss == "nonsat":
        config.options["loss"] = {"r1": 1.0}
    trainer = make_trainer(config)
    trainer.fit()
    assert math.isfinite(trainer.logs["d_loss"]) and math.isfinite(trainer.logs["g_loss"])


def test_conditional_training_on_unlabelled_data_is_a_usage_error(tmp_path, capsys):
    code = main(["run", "--data", "ring8", "--steps", "2", "--out", str(tmp_path / "r"),
                 "--set", "gen.classes=8", "--set", "disc.classes=8"])
    err = capsys.readouterr().err
    assert code == 2 and "needs labelled data" in err and "Traceback" not in err


def test_a_conditional_run_samples_and_evaluates_from_plain_noise(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", "--data", "mnist", "--steps", "4", "--batch-size", "16", "--out", str(out), "--threads", "1",
                 "--set", "gen.classes=10", "--set", "disc.classes=10", "--set", "gen.hidden=16,16",
                 "--set", "disc.hidden=16"]) == 0
    assert main(["sample", str(out), "-n", "20", "-o", str(tmp_path / "s.npy")]) == 0


def test_sample_draws_a_chosen_class(tmp_path, capsys, registry):
    from ganforge.train.restore import load_run

    out = tmp_path / "run"
    assert main(["run", "--data", "digits", "--steps", "2", "--batch-size", "16", "--out", str(out), "--threads", "1",
                 "--set", "gen.classes=10", "--set", "disc.classes=10", "--set", "gen.hidden=16,16",
                 "--set", "disc.hidden=16"]) == 0
    run = load_run(out, registry)
    codes: list[torch.Tensor] = []
    run.generator.net[0].register_forward_hook(lambda module, inputs, output: codes.append(module.class_of(inputs[0])))
    run.sample(2500, label=7, batch_size=1000)
    assert torch.cat(codes).eq(7).all() and len(torch.cat(codes)) == 2500
    assert main(["sample", str(out), "-n", "8", "--class", "3", "-o", str(tmp_path / "three.npy")]) == 0
    assert main(["sample", str(out), "-n", "8", "--class", "10", "-o", str(tmp_path / "x.npy")]) == 2
    assert "numbered 0 to 9" in capsys.readouterr().err


def test_sample_class_of_a_run_without_classes_is_a_usage_error(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", "--data", "ring8", "--steps", "2", "--out", str(out), "--threads", "1"]) == 0
    assert main(["sample", str(out), "-n", "8", "--class", "0", "-o", str(tmp_path / "x.npy")]) == 2
    err = capsys.readouterr().err
    assert "has no classes" in err and "Traceback" not in err
