"""The mlp discriminator's options: spectral_norm, pack (PacGAN) and maxout.

Every check compares with a reference written independently of ganforge's code path (plain
``nn.Linear``/``F.linear``, explicit loops), on fresh random inputs.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ganforge import RunConfig, Trainer
from ganforge.errors import ConfigError
from ganforge.models import MLPDiscriminator
from ganforge.nn import FusedDense
from ganforge.run.folder import read_metrics
from ganforge.testing import check_discriminator

# Recorded from the network before these options existed: checkpoints depend on them.
DEFAULT_KEYS = {
    (784,): ["net.0.weight", "net.0.bias", "net.2.weight", "net.2.bias", "net.5.weight", "net.5.bias"],
    (1, 8, 8): ["net.0.weight", "net.0.bias", "net.2.weight", "net.2.bias", "net.5.weight", "net.5.bias"],
    (2,): ["net.0.weight", "net.0.bias", "net.1.weight", "net.1.bias", "net.2.weight", "net.2.bias",
           "net.3.weight", "net.3.bias"],
}


def dense_layers(disc: nn.Module) -> list[FusedDense]:
    return [m for m in disc.modules() if isinstance(m, FusedDense)]


def spectral_parts(layer: FusedDense) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The raw weight and the power-iteration vectors (u, v) of a spectrally normalised layer."""
    sn = layer.parametrizations.weight
    return sn.original, sn[0]._u, sn[0]._v


# -- state_dict ---------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", list(DEFAULT_KEYS))
def test_default_state_dict_keys_are_unchanged(shape):
    assert list(MLPDiscriminator(shape).state_dict()) == DEFAULT_KEYS[shape]
    explicit_off = MLPDiscriminator(shape, spectral_norm=False, pack=1, maxout=0)
    assert list(explicit_off.state_dict()) == DEFAULT_KEYS[shape]
    none_is_off = MLPDiscriminator(shape, spectral_norm=None, pack=None, maxout=None)
    assert list(none_is_off.state_dict()) == DEFAULT_KEYS[shape]


@pytest.mark.parametrize("options, fragment", [
    ({"pack": 0}, "disc.pack"), ({"pack": 1.5}, "disc.pack"), ({"pack": True}, "disc.pack"),
    ({"pack": "2"}, "disc.pack"), ({"maxout": 1}, "disc.maxout"), ({"maxout": -3}, "disc.maxout"),
    ({"maxout": 2.0}, "disc.maxout"), ({"spectral_norm": "yes"}, "disc.spectral_norm"),
    ({"spectral_norm": 1}, "disc.spectral_norm"),
])
def test_bad_option_values_name_the_option_and_an_example(options, fragment):
    with pytest.raises(ConfigError, match=f"{fragment}.*such as --set {fragment}="):
        MLPDiscriminator((2,), **options)


@pytest.mark.parametrize("options", [
    {"spectral_norm": True}, {"pack": 3}, {"maxout": 4},
    {"spectral_norm": True, "pack": 2, "maxout": 3, "mbstd": True, "dropout": 0.2},
])
def test_options_conform_to_the_discriminator_contract(options, registry):
    check_discriminator(registry.get("discriminator", "mlp").factory, hidden=(16,), **options)


# -- spectral_norm ------------------------------------------------------------------------------

@pytest.mark.parametrize("maxout", [0, 3])
def test_spectral_norm_gives_every_layer_a_largest_singular_value_of_one(maxout):
    torch.manual_seed(0)
    disc = MLPDiscriminator((1, 6, 6), hidden=(48, 24), spectral_norm=True, maxout=maxout).train()
    layers = dense_layers(disc)
    assert len(layers) == 3  # the output layer is normalised too
    for _ in range(5):
        disc(torch.randn(16, 1, 6, 6))
    disc.eval()
    for layer in layers:
        raw, _, _ = spectral_parts(layer)
        assert abs(torch.linalg.matrix_norm(raw.detach(), ord=2).item() - 1) > 0.05  # there is work to do
        assert torch.linalg.matrix_norm(layer.weight.detach(), ord=2).item() == pytest.approx(1.0, abs=1e-3)


def power_step(raw: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One step of Miyato et al.'s power iteration, written out."""
    u = raw @ v
    u = u / u.norm()
    v = raw.T @ u
    return u, v / v.norm()


def scramble_power_vectors(disc: nn.Module, seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Replace each layer's (u, v) by random unit vectors, so one step and two steps differ."""
    rng = torch.Generator().manual_seed(seed)
    start = []
    for layer in dense_layers(disc):
        _, u, v = spectral_parts(layer)
        with torch.no_grad():
            u.copy_(F.normalize(torch.randn(u.shape, generator=rng), dim=0))
            v.copy_(F.normalize(torch.randn(v.shape, generator=rng), dim=0))
        start.append((u.clone(), v.clone()))
    return start


@pytest.mark.parametrize("pair", [False, True])
def test_power_iteration_runs_once_per_forward_in_training_and_never_in_eval(pair):
    torch.manual_seed(1)
    disc = MLPDiscriminator((5,), hidden=(12, 7), spectral_norm=True, mbstd=True).train()
    start = scramble_power_vectors(disc, seed=2)
    real, fake = torch.randn(8, 5), torch.randn(6, 5)
    disc.forward_pair(real, fake) if pair else disc(real)
    for layer, (u0, v0) in zip(dense_layers(disc), start, strict=True):
        raw, u, v = spectral_parts(layer)
        one_u, one_v = power_step(raw.detach(), u0, v0)
        two_u, _ = power_step(raw.detach(), one_u, one_v)
        assert torch.allclose(u, one_u, atol=1e-6) and torch.allclose(v, one_v, atol=1e-6)
        if min(raw.shape) > 1:  # (for a single output row every step gives the same u)
            assert not torch.allclose(u, two_u, atol=1e-3)
    disc.eval()
    before = [tuple(t.clone() for t in spectral_parts(layer)[1:]) for layer in dense_layers(disc)]
    disc.forward_pair(real, fake) if pair else disc(real)
    after = [spectral_parts(layer)[1:] for layer in dense_layers(disc)]
    assert all(torch.equal(a, b) for pa, pb in zip(before, after, strict=True) for a, b in zip(pa, pb, strict=True))


def reference_sn_logits(disc: MLPDiscriminator, x: torch.Tensor, slope: float = 0.2) -> torch.Tensor:
    """The LeakyReLU network with every weight divided by u^T W v, from F.linear."""
    layers = dense_layers(disc)
    h = x.flatten(1)
    for i, layer in enumerate(layers):
        raw, u, v = spectral_parts(layer)
        h = F.linear(h, raw / torch.dot(u, raw @ v), layer.bias)
        if i < len(layers) - 1:
            h = F.leaky_relu(h, slope)
    return h.squeeze(1)


def test_spectral_norm_matches_a_reference_and_its_r1_double_backward_reaches_the_parameters():
    torch.manual_seed(3)
    disc = MLPDiscriminator((3, 2), hidden=(10, 9), spectral_norm=True)
    for _ in range(2):
        disc(torch.randn(4, 3, 2))  # training-mode steps move u, v away from their start
    disc.eval()
    x = torch.randn(7, 3, 2)

    def r1(score) -> torch.Tensor:
        xr = x.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(score(xr).sum(), xr, create_graph=True)
        return grad.pow(2).sum()

    assert torch.allclose(disc(x), reference_sn_logits(disc, x), atol=1e-5)
    params = list(disc.parameters())
    got = torch.autograd.grad(r1(disc), params, materialize_grads=True)
    want = torch.autograd.grad(r1(lambda t: reference_sn_logits(disc, t)), params, materialize_grads=True)
    for p, g, w in zip(params, got, want, strict=True):
        assert torch.allclose(g, w, atol=1e-5, rtol=1e-4)
        assert p.dim() == 1 or g.abs().sum() > 0  # (biases only move LeakyReLU's kinks: no R1 gradient)


def test_spectral_norm_double_backward_in_training_mode_reaches_every_weight():
    disc = MLPDiscriminator((4,), hidden=(8, 8), spectral_norm=True, maxout=2, pack=2).train()
    x = torch.randn(6, 4, requires_grad=True)
    (grad,) = torch.autograd.grad(disc(x).sum(), x, create_graph=True)
    grad.pow(2).sum().backward()
    raw = [spectral_parts(layer)[0] for layer in dense_layers(disc)]
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in raw)


@pytest.mark.parametrize("mbstd", [False, True])
def test_spectral_norm_forward_pair_equals_two_calls_in_eval(mbstd):
    disc = MLPDiscriminator((1, 4, 4), hidden=(20, 10), spectral_norm=True, mbstd=mbstd, dropout=0.3)
    disc(torch.randn(5, 1, 4, 4))
    disc.eval()
    real, fake = torch.randn(9, 1, 4, 4), torch.randn(5, 1, 4, 4)
    r, f = disc.forward_pair(real, fake)
    assert torch.allclose(r, disc(real), atol=1e-6) and torch.allclose(f, disc(fake), atol=1e-6)


def test_a_spectrally_normalised_state_dict_round_trips():
    disc = MLPDiscriminator((2,), hidden=(8,), spectral_norm=True)
    disc(torch.randn(4, 2))
    copy = MLPDiscriminator((2,), hidden=(8,), spectral_norm=True)
    copy.load_state_dict(disc.state_dict())
    x = torch.randn(5, 2)
    assert torch.equal(copy.eval()(x), disc.eval()(x))


# -- pack ---------------------------------------------------------------------------------------

def manual_packs(x: torch.Tensor, pack: int) -> torch.Tensor:
    """Pack i = samples i*pack .. i*pack+pack-1, each flattened, side by side."""
    rows = [torch.cat([x[i * pack + j].reshape(-1) for j in range(pack)]) for i in range(len(x) // pack)]
    return torch.stack(rows)


@pytest.mark.parametrize("pack, shape", [(2, (2,)), (3, (1, 3, 2)), (4, (5,))])
def test_a_packed_discriminator_scores_the_concatenated_packs(pack, shape):
    disc = MLPDiscriminator(shape, hidden=(11, 6), pack=pack, mbstd=True, dropout=0.2).eval()
    assert disc.net[0].in_features == pack * math.prod(shape)
    x = torch.randn(6 * pack, *shape)
    logits = disc(x)
    assert logits.shape == (6,)
    assert torch.allclose(logits, disc.net(manual_packs(x, pack)).squeeze(1), atol=1e-6)
    # and an unpacked network of the same weights, fed the packs as single samples, agrees
    plain = MLPDiscriminator((pack * math.prod(shape),), hidden=(11, 6), mbstd=True, dropout=0.2).eval()
    plain.load_state_dict(disc.state_dict())
    assert torch.allclose(logits, plain(manual_packs(x, pack)), atol=1e-6)


@pytest.mark.parametrize("mbstd", [False, True])
def test_packed_forward_pair_equals_two_calls(mbstd):
    disc = MLPDiscriminator((2,), hidden=(16, 16), pack=3, maxout=2, mbstd=mbstd, dropout=0.0)
    real, fake = torch.randn(12, 2), torch.randn(9, 2)
    r, f = disc.forward_pair(real, fake)
    assert r.shape == (4,) and f.shape == (3,)
    assert torch.allclose(r, disc(real), atol=1e-6) and torch.allclose(f, disc(fake), atol=1e-6)


def test_forward_pair_never_packs_real_with_fake():
    disc = MLPDiscriminator((2,), hidden=(16,), pack=2, mbstd=True, dropout=0.0)
    real, fake = torch.randn(6, 2), torch.randn(6, 2, requires_grad=True)
    r, f = disc.forward_pair(real, fake)
    changed = fake.detach().clone()
    changed[0] += 3.0
    r2, f2 = disc.forward_pair(real, changed)
    assert torch.equal(r, r2) and not torch.equal(f, f2)
    (grad,) = torch.autograd.grad(r.sum(), fake, allow_unused=True)
    assert grad is None or not grad.any()
    # an odd number of real samples would put the last real next to the first fake: refused
    with pytest.raises(ConfigError, match="divisible by disc.pack"):
        disc.forward_pair(torch.randn(5, 2), torch.randn(7, 2))


@pytest.mark.parametrize("n", [1, 7, 33])
def test_a_batch_not_divisible_by_pack_is_a_config_error(n):
    disc = MLPDiscriminator((2,), hidden=(8,), pack=2)
    hint = r"choose a batch size divisible by disc\.pack \(e\.g\. --batch-size \d+\)"
    with pytest.raises(ConfigError, match=hint):
        disc(torch.randn(n, 2))
    with pytest.raises(ConfigError, match="disc.pack"):
        disc.forward_pair(torch.randn(8, 2), torch.randn(n, 2))


def test_gradient_penalties_differentiate_each_pack_logit_with_respect_to_its_samples():
    disc = MLPDiscriminator((3,), hidden=(9, 9), pack=2, maxout=3, dropout=0.0).eval()
    x = torch.randn(8, 3, requires_grad=True)
    (grad,) = torch.autograd.grad(disc(x).sum(), x, create_graph=True)
    packs = manual_packs(x.detach(), 2).requires_grad_(True)
    (want,) = torch.autograd.grad(disc.net(packs).sum(), packs)
    assert torch.allclose(grad, want.reshape(8, 3), atol=1e-6)  # d(pack logit)/d(sample), not scaled
    grad.pow(2).sum().backward()
    assert all(m.weight.grad is not None and m.weight.grad.abs().sum() > 0 for m in dense_layers(disc))


# -- maxout -------------------------------------------------------------------------------------

def reference_maxout_logits(disc: MLPDiscriminator, x: torch.Tensor, pieces: int) -> torch.Tensor:
    """``pieces`` separate nn.Linear layers per hidden layer with the weights copied over, then an
    explicit maximum over their outputs; a plain nn.Linear output layer."""
    *hidden, out = dense_layers(disc)
    h = x.flatten(1)
    for layer in hidden:
        width = layer.out_features // pieces
        outputs = []
        for k in range(pieces):  # unit j's piece k is output row j * pieces + k
            lin = nn.Linear(layer.in_features, width)
            with torch.no_grad():
                lin.weight.copy_(layer.weight[k::pieces])
                lin.bias.copy_(layer.bias[k::pieces])
            outputs.append(lin(h))
        best = outputs[0]
        for o in outputs[1:]:
            best = torch.maximum(best, o)
        h = best
    lin = nn.Linear(out.in_features, 1)
    with torch.no_grad():
        lin.weight.copy_(out.weight)
        lin.bias.copy_(out.bias)
    return lin(h).squeeze(1)


@pytest.mark.parametrize("pieces, hidden", [(2, (8,)), (5, (20, 20, 20))])
def test_maxout_matches_linear_pieces_and_an_explicit_max(pieces, hidden):
    disc = MLPDiscriminator((2,), hidden=hidden, maxout=pieces, mbstd=False, dropout=0.5).eval()
    assert [m.out_features for m in dense_layers(disc)] == [h * pieces for h in hidden] + [1]
    assert all(m.act == "none" for m in dense_layers(disc))
    x = torch.randn(32, 2)
    assert torch.allclose(disc(x), reference_maxout_logits(disc, x, pieces), atol=1e-5)


def test_maxout_gradients_flow_to_every_parameter_and_the_input():
    disc = MLPDiscriminator((1, 4, 4), hidden=(16, 8), maxout=3, mbstd=True, dropout=0.0)
    x = torch.randn(10, 1, 4, 4, requires_grad=True)
    disc(x).square().mean().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    for name, p in disc.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_maxout_with_the_default_image_network_keeps_its_layer_sizes():
    disc = MLPDiscriminator((784,), maxout=2)
    assert [m.out_features for m in dense_layers(disc)] == [1024, 512, 1]
    assert disc(torch.randn(3, 784)).shape == (3,)


# -- training -----------------------------------------------------------------------------------

@pytest.mark.parametrize("loss, extra", [
    ("nonsat", {}),
    ("nonsat", {"maxout": 3, "spectral_norm": True}),
    ("wgan-gp", {"maxout": 2, "spectral_norm": True}),
])
def test_a_short_packed_training_run_works(loss, extra, tmp_path, registry, plugin_manager):
    disc_options = {"hidden": (16,), "pack": 2, **extra}
    config = RunConfig(data="ring8", loss=loss, steps=10, batch_size=32, out=str(tmp_path / "r"), log_every=5,
                       sample_every=0, ckpt_every=0,
                       options={"gen": {"hidden": (16,)}, "disc": disc_options})
    trainer = Trainer(config, registry=registry, plugin_manager=plugin_manager)
    root = trainer.fit()
    rows = read_metrics(root / "metrics.jsonl")
    assert [r["step"] for r in rows] == [5, 10]
    assert all(math.isfinite(r["d_loss"]) and math.isfinite(r["g_loss"]) for r in rows)
    assert trainer.discriminator.pack == 2
    assert (root / "checkpoints" / "latest").read_text().strip() == "step_0000010"


def test_a_packed_run_with_an_indivisible_batch_size_fails_with_a_config_error(tmp_path, registry,
                                                                                plugin_manager):
    config = RunConfig(data="ring8", steps=2, batch_size=33, out=str(tmp_path / "r"), sample_every=0,
                       ckpt_every=0, options={"gen": {"hidden": (8,)}, "disc": {"hidden": (8,), "pack": 2}})
    with pytest.raises(ConfigError, match="divisible by disc.pack"):
        Trainer(config, registry=registry, plugin_manager=plugin_manager).fit()


def test_set_gen_norm_none_turns_batchnorm_off_on_2d_data(tmp_path):
    """``--set gen.norm=none`` once parsed as Python None and silently kept the default BatchNorm."""
    import argparse

    from ganforge.cli.run import add_parser, config_from_args

    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    args = parser.parse_args(["run", "--data", "ring8", "--set", "gen.norm=none"])
    assert config_from_args(args).options["gen"]["norm"] == "none"
