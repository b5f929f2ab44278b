"""R1 and R2 (Mescheder et al. 2018) against analytic gradients and a plain-PyTorch network.

Every test draws fresh random inputs, so a pass is not tied to one lucky seed.
"""

from __future__ import annotations

import math
import os

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ganforge import RunConfig, Trainer
from ganforge.config import apply_set
from ganforge.errors import ConfigError
from ganforge.losses import (
    MinimaxLoss,
    NonSaturatingLoss,
    RelativisticPairingLoss,
    WassersteinGPLoss,
    WassersteinLoss,
    discriminator_penalty,
    gradient_norm_penalty,
    r1_r2_penalty,
)
from ganforge.models import MLPDiscriminator
from ganforge.run.folder import read_metrics

DIM = 5


@pytest.fixture(autouse=True)
def fresh_seed():
    """A new seed every run, printed so that a failure can be replayed."""
    seed = int.from_bytes(os.urandom(4), "little")
    print(f"torch seed {seed}")
    torch.manual_seed(seed)


def batch(n: int = 17) -> torch.Tensor:
    return torch.randn(n, DIM, dtype=torch.float64) * 3


class Linear(nn.Module):
    """D(x) = x @ w + b: grad_x D = w for every sample, so E||grad D||^2 = ||w||^2."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(DIM, dtype=torch.float64))
        self.b = nn.Parameter(torch.randn((), dtype=torch.float64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.w + self.b


class Quadratic(nn.Module):
    """D(x) = sum_j x_j^2: grad_x D = 2x, so E||grad D||^2 = 4 E||x||^2."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x**2).sum(dim=1)


class PairedQuadratic(Quadratic):
    """The same, offering ``forward_pair`` like MLPDiscriminator (one pass over both batches)."""

    calls = 0

    def forward_pair(self, real: torch.Tensor, fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        type(self).calls += 1
        out = self(torch.cat([real, fake]))
        return out[: len(real)], out[len(real):]


def quadratic_penalty(x: torch.Tensor) -> torch.Tensor:
    return 4 * (x**2).sum(dim=1).mean()


def gamma() -> float:
    return float(torch.rand(()) * 10 + 0.1)


def test_linear_discriminator_penalty_is_half_gamma_w_squared():
    disc, g1, g2 = Linear(), gamma(), gamma()
    w2 = disc.w.detach().pow(2).sum()
    real, fake = batch(), batch(9)
    assert torch.allclose(gradient_norm_penalty(disc, real), w2)
    assert torch.allclose(discriminator_penalty(NonSaturatingLoss(r1=g1), disc, real, fake), g1 / 2 * w2)
    assert torch.allclose(discriminator_penalty(MinimaxLoss(r2=g2), disc, real, fake), g2 / 2 * w2)
    assert torch.allclose(r1_r2_penalty(disc, real, fake, r1=g1, r2=g2), (g1 + g2) / 2 * w2)


def test_quadratic_discriminator_r1_uses_the_real_batch_and_r2_the_fake_one():
    disc, g1, g2 = Quadratic(), gamma(), gamma()
    real, fake = batch(), batch()
    assert torch.allclose(gradient_norm_penalty(disc, real), quadratic_penalty(real))
    r1 = discriminator_penalty(NonSaturatingLoss(r1=g1), disc, real, fake)
    r2 = discriminator_penalty(NonSaturatingLoss(r2=g2), disc, real, fake)
    assert torch.allclose(r1, g1 / 2 * quadratic_penalty(real))
    assert torch.allclose(r2, g2 / 2 * quadratic_penalty(fake))
    both = discriminator_penalty(NonSaturatingLoss(r1=g1, r2=g2), disc, real, fake)
    assert torch.allclose(both, g1 / 2 * quadratic_penalty(real) + g2 / 2 * quadratic_penalty(fake))


def test_paired_pass_gives_the_same_penalty_as_two_passes():
    real, fake, g1, g2 = batch(), batch(), gamma(), gamma()
    before = PairedQuadratic.calls
    paired = r1_r2_penalty(PairedQuadratic(), real, fake, r1=g1, r2=g2)
    assert PairedQuadratic.calls == before + 1
    assert torch.allclose(paired, r1_r2_penalty(Quadratic(), real, fake, r1=g1, r2=g2))


def test_packed_discriminator_is_penalised_per_logit_on_its_whole_packed_input():
    class PackedLinear(nn.Module):
        """PacGAN-style: one logit per pack of 2 samples, D(x_a, x_b) = [x_a, x_b] @ w."""

        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.randn(2 * DIM, dtype=torch.float64))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.reshape(len(x) // 2, 2 * DIM) @ self.w

    disc, g1 = PackedLinear(), gamma()
    assert torch.allclose(gradient_norm_penalty(disc, batch(16)), disc.w.detach().pow(2).sum())
    assert torch.allclose(discriminator_penalty(NonSaturatingLoss(r1=g1), disc, batch(16), batch(16)),
                          g1 / 2 * disc.w.detach().pow(2).sum())


@pytest.mark.parametrize("loss", [MinimaxLoss(), NonSaturatingLoss(), WassersteinLoss()])
def test_penalties_are_off_by_default_and_cost_nothing(loss):
    class Untouchable(nn.Module):
        def forward(self, x):
            raise AssertionError("the discriminator must not run when R1 and R2 are off")

    assert discriminator_penalty(loss, Untouchable(), batch(), batch()) is None


def test_wgan_gp_adds_r1_to_its_own_penalty():
    disc, g1 = Linear(), gamma()
    real, fake = batch(), batch()
    state = torch.get_rng_state()
    plain = discriminator_penalty(WassersteinGPLoss(), disc, real, fake)
    torch.set_rng_state(state)  # the same interpolates
    with_r1 = discriminator_penalty(WassersteinGPLoss(r1=g1), disc, real, fake)
    assert torch.allclose(with_r1 - plain, g1 / 2 * disc.w.detach().pow(2).sum())
    penalty = discriminator_penalty(WassersteinLoss(r2=g1), disc, real, fake)
    assert torch.allclose(penalty, g1 / 2 * disc.w.detach().pow(2).sum())


def test_penalty_leaves_its_inputs_and_the_generator_alone():
    gen = nn.Linear(3, DIM).double()
    real, fake = batch(8), gen(torch.randn(8, 3, dtype=torch.float64))
    disc = Linear()
    discriminator_penalty(NonSaturatingLoss(r1=1.0, r2=1.0), disc, real, fake).backward()
    assert not real.requires_grad and real.grad is None
    assert all(p.grad is None for p in gen.parameters()), "R2 must treat the fakes as constants"
    assert torch.allclose(disc.w.grad, 2 * disc.w.detach())  # d/dw of (1/2 + 1/2)||w||^2
    assert disc.b.grad is None or torch.all(disc.b.grad == 0)


# --- double backward through the fused dense+activation op --------------------------------------

def fused_and_plain_discriminators() -> tuple[nn.Module, nn.Module]:
    """MLPDiscriminator (FusedDense layers) and the same network from nn.Linear + F.leaky_relu."""
    fused = MLPDiscriminator((8,), hidden=(16, 16), dropout=0.0, mbstd=False).double()
    linears = [m for m in fused.modules() if isinstance(m, nn.Linear)]
    plain_layers = [nn.Linear(m.in_features, m.out_features).double() for m in linears]
    for src, dst in zip(linears, plain_layers, strict=True):
        dst.load_state_dict(nn.Linear.state_dict(src))  # FusedDense is an nn.Linear: same keys

    class Plain(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layers = nn.ModuleList(plain_layers)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = x.flatten(1)
            for layer in self.layers[:-1]:
                h = F.leaky_relu(layer(h), 0.2)
            return self.layers[-1](h).squeeze(1)

    return fused, Plain()


def parameter_gradient(value: torch.Tensor, module: nn.Module) -> list[torch.Tensor]:
    """d value / d parameters; zeros where a parameter does not enter (the hidden biases only move
    LeakyReLU's kinks, and its second derivative is 0 elsewhere)."""
    params = list(module.parameters())
    grads = torch.autograd.grad(value, params, allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads, strict=True)]


def test_r1_parameter_gradient_through_the_fused_op_matches_plain_pytorch():
    fused, plain = fused_and_plain_discriminators()
    real = torch.randn(32, 8, dtype=torch.float64)
    assert torch.allclose(fused(real), plain(real), rtol=0, atol=1e-12)
    penalties = [gradient_norm_penalty(d, real) for d in (fused, plain)]
    assert torch.allclose(penalties[0], penalties[1], rtol=0, atol=1e-10)
    grads = [parameter_gradient(p, d) for p, d in zip(penalties, (fused, plain), strict=True)]
    for g_fused, g_plain in zip(*grads, strict=True):
        assert torch.allclose(g_fused, g_plain, rtol=0, atol=1e-10)
    assert any(g.abs().max() > 0 for g in grads[0]), "the penalty must reach D's weights"


def test_mlp_forward_pair_gives_the_same_r1_and_r2_as_separate_passes():
    fused, _ = fused_and_plain_discriminators()
    real, fake = torch.randn(32, 8, dtype=torch.float64), torch.randn(32, 8, dtype=torch.float64)
    g1, g2 = gamma(), gamma()
    separate = g1 / 2 * gradient_norm_penalty(fused, real) + g2 / 2 * gradient_norm_penalty(fused, fake)
    paired = r1_r2_penalty(fused, real, fake, r1=g1, r2=g2)
    assert torch.allclose(paired, separate, rtol=0, atol=1e-12)
    for a, b in zip(parameter_gradient(paired, fused), parameter_gradient(separate, fused), strict=True):
        assert torch.allclose(a, b, rtol=0, atol=1e-12)


def test_r1_penalty_passes_gradcheck_in_the_fused_discriminators_parameters():
    fused, _ = fused_and_plain_discriminators()
    real = torch.randn(6, 8, dtype=torch.float64)
    names = [n for n, _ in fused.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_(True) for p in fused.parameters())

    def penalty(*values: torch.Tensor) -> torch.Tensor:
        def disc(x: torch.Tensor) -> torch.Tensor:
            return torch.func.functional_call(fused, dict(zip(names, values, strict=True)), (x,))

        return gradient_norm_penalty(disc, real)

    assert torch.autograd.gradcheck(penalty, params, eps=1e-6, atol=1e-6)


# --- options: validation and end to end -------------------------------------------------------

@pytest.mark.parametrize("value", [-1, -0.5, float("nan"), float("inf"), "ten", True])
@pytest.mark.parametrize("option", ["r1", "r2"])
def test_bad_penalty_weight_is_a_config_error_naming_the_option(registry, option, value):
    for name in ("minimax", "nonsat", "wasserstein", "wgan-gp"):
        with pytest.raises(ConfigError, match=rf"loss\.{option} must be .*>= 0.*e\.g\. --set loss\.{option}="):
            registry.get("loss", name).build(**{option: value})


def test_set_loss_r1_minus_one_from_the_command_line_is_refused(registry):
    options = apply_set({}, ["loss.r1=-1"])
    with pytest.raises(ConfigError, match=r"loss\.r1") as info:
        registry.get("loss", "nonsat").build(**options["loss"])
    assert "-1" in str(info.value)


def test_unknown_loss_option_names_the_valid_ones(registry):
    with pytest.raises(ConfigError, match=r"r1, r2"):
        registry.get("loss", "nonsat").build(r3=1.0)


def test_zero_weights_are_accepted_and_stored_as_floats():
    loss = NonSaturatingLoss(r1=0, r2=2)
    assert (loss.r1, loss.r2) == (0.0, 2.0) and isinstance(loss.r2, float)
    assert discriminator_penalty(RelativisticPairingLoss(gamma=0), Linear(), batch(), batch()) is None


def test_nonsat_with_r1_and_r2_trains_end_to_end(tmp_path, registry, plugin_manager):
    config = RunConfig(data="ring8", loss="nonsat", steps=20, batch_size=32, out=str(tmp_path / "r"),
                       sample_every=0, ckpt_every=0, log_every=5,
                       options={"loss": {"r1": 1.0, "r2": 1.0}, "gen": {"hidden": (16,)}, "disc": {"hidden": (16,)}})
    trainer = Trainer(config, registry=registry, plugin_manager=plugin_manager)
    trainer.fit()
    assert (trainer.loss.r1, trainer.loss.r2) == (1.0, 1.0)
    rows = read_metrics(trainer.folder.metrics)
    assert rows and rows[-1]["step"] == 20
    assert all(math.isfinite(r["d_loss"]) and math.isfinite(r["g_loss"]) for r in rows)
