"""Discriminator rejection sampling: the accepted samples follow the rejection formula, a fitted
critic moves an unevenly drawn generator towards the data's shares, and ``--drs`` end to end."""

from __future__ import annotations

import json
import math
import random

import pytest
import torch
from torch import nn

from ganforge.cli.main import main
from ganforge.data.mixtures import GaussianMixture
from ganforge.metrics.evaluate import generate
from ganforge.models.rejection import RejectionSampled, fit_critic

LEFT, RIGHT = -1.0, 1.0


class TwoPoints(nn.Module):
    """A generator of 2-D points at (-1, 0) or (+1, 0) (plus a little noise), +1 with probability ``p_right``:
    it reads its choice off the noise's first value, so the share is exact in expectation."""

    def __init__(self, p_right: float) -> None:
        super().__init__()
        self.threshold = float(torch.distributions.Normal(0.0, 1.0).icdf(torch.tensor(1.0 - p_right)))
        self.scale = nn.Parameter(torch.ones(()))  # a parameter, so the device can be read off it

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        side = torch.where(z[:, 0] > self.threshold, RIGHT, LEFT)
        return torch.stack([side + 0.01 * z[:, 1], 0.01 * z[:, 2]], 1) * self.scale


class ExactRatio(nn.Module):
    """The critic a perfect fit gives: log p_data / p_g for data at -1 and +1 in equal shares."""

    def __init__(self, p_right: float) -> None:
        super().__init__()
        self.right, self.left = math.log(0.5 / p_right), math.log(0.5 / (1.0 - p_right))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.where(x[:, 0] > 0, self.right, self.left).unsqueeze(1)


def right_share(samples: torch.Tensor) -> float:
    return float((samples[:, 0] > 0).double().mean())


def test_accepted_samples_follow_the_rejection_formula():
    """Accepting x with min(1, exp(logit - cap)) draws p_g(x) * min(1, r(x) / e^cap), normalised
    (Azadi et al. 2019, eq. 2 with the cap for the maximum); with the cap at the ratio's largest value
    that is the data's own 50 / 50 split, with a lower cap a known partial correction."""
    seed = random.randrange(2**31)
    p_right = random.uniform(0.7, 0.9)
    g, critic = TwoPoints(p_right), ExactRatio(p_right)
    for quantile in (0.95, 0.5):  # the cap at the under-drawn side's logit, then at the over-drawn's
        sampler = RejectionSampled(g, critic, z_dim=3, quantile=quantile, seed=seed)
        kept = generate(sampler, 3, 20_000, seed)
        cap = sampler.cap
        keep_right = p_right * min(1.0, math.exp(critic.right - cap))
        keep_left = (1.0 - p_right) * min(1.0, math.exp(critic.left - cap))
        expected = keep_right / (keep_right + keep_left)
        assert len(kept) == 20_000
        assert right_share(kept) == pytest.approx(expected, abs=0.015), (seed, p_right, quantile)
        assert sampler.acceptance == pytest.approx(keep_right + keep_left, abs=0.02)
    assert expected == pytest.approx(p_right)  # cap at the over-drawn side's logit: everything kept


def test_the_same_seed_gives_the_same_samples_and_another_seed_others():
    g, critic = TwoPoints(0.8), ExactRatio(0.8)
    a = generate(RejectionSampled(g, critic, 3, 0.9, seed=3), 3, 500, 3)
    b = generate(RejectionSampled(g, critic, 3, 0.9, seed=3), 3, 500, 3)
    c = generate(RejectionSampled(g, critic, 3, 0.9, seed=4), 3, 500, 4)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_a_fitted_critic_moves_an_uneven_generator_towards_the_data():
    """Data at -1 and +1 in equal shares, a generator drawing +1 four times in five: the critic
    fitted on the two learns that +1 is over-drawn, and the accepted share of +1 falls towards 0.5."""
    torch.manual_seed(random.randrange(2**31))
    data = GaussianMixture(torch.tensor([[LEFT, 0.0], [RIGHT, 0.0]]), std=0.01)
    g = TwoPoints(0.8)
    critic = nn.Sequential(nn.Linear(2, 16), nn.LeakyReLU(0.2), nn.Linear(16, 1))
    fit_critic(critic, g, 3, data, steps=400, lr=1e-2, seed=random.randrange(2**31))
    with torch.no_grad():
        right, left = critic(torch.tensor([[RIGHT, 0.0], [LEFT, 0.0]])).view(-1).tolist()
    assert right < 0 < left  # log 0.5/0.8 = -0.47, log 0.5/0.2 = +0.92
    kept = generate(RejectionSampled(g, critic, 3, 0.95, seed=1), 3, 10_000, 1)
    assert 0.4 < right_share(kept) < 0.6
    assert 0.78 < right_share(generate(g, 3, 10_000, 1)) < 0.82


def test_a_critic_that_rejects_nearly_everything_says_what_to_change():
    """The cap at the largest of 10,000 logits, one sample in 10,000 far above the rest: almost
    nothing is kept, and the sampler stops with the fix rather than looping."""

    class OneInMany(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.where(x[:, 0] > 0.035, 50.0, 0.0).unsqueeze(1)  # noise 0.01 * z > 3.5 sd

    g = TwoPoints(0.0 + 1e-9)  # every sample near -1 ... plus the noise
    g.forward = lambda z: 0.01 * z[:, 1:3]  # type: ignore[method-assign]
    sampler = RejectionSampled(g, OneInMany(), 3, quantile=1.0, seed=0)
    with pytest.raises(RuntimeError, match="lower the cap's quantile"):
        generate(sampler, 3, 1000, 0)


SMALL = ["--set", "gen.hidden=32,32", "--set", "disc.hidden=32,32", "--z-dim", "4"]


def train_small(out) -> None:  # type: ignore[no-untyped-def]
    assert main(["run", "--data", "ring8", "--steps", "60", "--out", str(out), *SMALL]) == 0


@pytest.mark.slow
def test_eval_and_sample_with_drs_report_what_they_kept(tmp_path, capsys, monkeypatch):
    out = tmp_path / "g"
    train_small(out)
    capsys.readouterr()
    report = tmp_path / "m.json"
    assert main(["eval", str(out), "-n", "400", "--drs", "--drs-steps", "50", "--json", str(report)]) == 0
    text = capsys.readouterr().out
    assert "critic fitted in 50 steps" in text and "rejection sampling kept" in text
    record = json.loads(report.read_text())["rejection"]
    assert record["critic_steps"] == 50 and record["quantile"] == 0.9 and 0 < record["acceptance"] <= 1
    assert record["candidates"] >= 400
    assert main(["sample", str(out), "-n", "32", "-o", str(tmp_path / "s.npy"), "--drs", "--drs-steps", "20"]) == 0
    text = capsys.readouterr().out
    assert "wrote 32 samples" in text and "tells nearly every generated sample" not in text

    class Sharp(nn.Module):  # a critic sure that every generated sample is fake: logit -10
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.full((len(x), 1), -10.0)

    import ganforge.models.rejection as rejection

    monkeypatch.setattr(rejection, "fit_critic", lambda *args, **kwargs: Sharp())
    assert main(["eval", str(out), "-n", "100", "--drs", "--drs-refit"]) == 0
    text = capsys.readouterr().out
    assert "capped at the 0.9 quantile: -10.00" in text and "tells nearly every generated sample" in text


def test_drs_usage_errors_exit_2(tmp_path, capsys):
    assert main(["eval", str(tmp_path), "--drs", "--drs-quantile", "0"]) == 2
    assert main(["sample", str(tmp_path), "-o", str(tmp_path / "s.npy"), "--drs", "--class", "3"]) == 2
    assert "--class and --drs" in capsys.readouterr().err


@pytest.mark.slow
def test_a_second_drs_loads_the_critic_the_first_fitted_and_draws_the_same(tmp_path, capsys):
    """The critic is saved in the run folder under the generator's weights and how it was fitted:
    the same call again loads it and reports the same numbers; another seed, --drs-refit, a damaged
    file or a checkpoint with other weights fit afresh."""
    out = tmp_path / "g"
    train_small(out)
    drs = ["-n", "300", "--drs", "--drs-steps", "40"]

    def evaluate(*extra: str) -> tuple[str, dict]:
        capsys.readouterr()
        report = tmp_path / "m.json"
        assert main(["eval", str(out), *drs, "--json", str(report), *extra]) == 0
        return capsys.readouterr().out, json.loads(report.read_text())

    first_text, first = evaluate()
    saved = list((out / "critics").glob("drs-*.safetensors"))
    assert "fitted in 40 steps" in first_text and len(saved) == 1 and f"saved as {saved[0]}" in first_text
    again_text, again = evaluate()
    assert f"loaded from {saved[0]}" in again_text and "fitted in 40 steps (" not in again_text
    assert again == first  # every metric and the rejection record, to the last digit

    assert "fitted in 40 steps (" in evaluate("--seed", "1")[0]
    assert len(list((out / "critics").glob("drs-*"))) == 2
    refit_text, refit = evaluate("--drs-refit")
    assert "fitted in 40 steps (" in refit_text and refit == first  # fitting is seeded: the same critic
    saved[0].write_bytes(b"not a critic")
    damaged_text, damaged = evaluate()
    assert "fitted in 40 steps (" in damaged_text and damaged == first
    assert f"loaded from {saved[0]}" in evaluate()[0]  # the damaged file was replaced

    assert main(["run", "--data", "ring8", "--steps", "80", "--out", str(out), "--resume", *SMALL]) == 0
    assert "fitted in 40 steps (" in evaluate()[0]  # new weights: a new critic


@pytest.mark.slow
def test_drs_on_a_run_folder_it_cannot_write_still_evaluates(tmp_path, capsys, mount_tmpfs):
    import shutil
    import subprocess

    disk = mount_tmpfs("16m")
    train_small(tmp_path / "g")
    shutil.copytree(tmp_path / "g", disk / "g")
    assert subprocess.run(["mount", "-o", "remount,ro", str(disk)]).returncode == 0
    capsys.readouterr()
    assert main(["eval", str(disk / "g"), "-n", "200", "--drs", "--drs-steps", "20"]) == 0
    text = capsys.readouterr().out
    assert "not saved (Read-only file system), so the next --drs fits it again" in text
    assert "rejection sampling kept" in text


@pytest.mark.parametrize(("disc", "mbstd"), [("mlp", True), ("dcgan", 4), ("resnet", 4)])
def test_the_critic_scores_each_sample_alone_where_the_run_s_d_sees_the_batch(registry, disc, mbstd):
    """A run's D with a minibatch-std feature scores a sample differently in another batch; the
    critic built from it must not, or a sample's chance of being kept would depend on its neighbours."""
    from ganforge import RunConfig
    from ganforge.train.build import build_critic, build_dataset, build_models

    config = RunConfig(gen=disc, data="mnist", z_dim=8, options={"disc": {"mbstd": mbstd, "pack": 1}})
    info = build_dataset(config, registry).info
    torch.manual_seed(random.randrange(2**31))
    x = torch.randn(8, *info.sample_shape)
    _, d = build_models(config, registry, info)
    critic = build_critic(config, registry, info)
    with torch.no_grad():
        assert not torch.allclose(d.eval()(x[:4]), d(torch.cat([x[:4], 3 * x[4:]]))[:4])
        alone, among = critic.eval()(x[:4]), critic(torch.cat([x[:4], 3 * x[4:]]))[:4]
    torch.testing.assert_close(alone, among, rtol=1e-5, atol=1e-5)
