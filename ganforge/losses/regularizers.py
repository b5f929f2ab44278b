"""Zero-centred gradient penalties on the discriminator: R1 and R2.

Mescheder, Geiger & Nowozin (2018), "Which Training Methods for GANs do actually Converge?",
show that unregularised GAN training need not converge locally even when the generator matches
the data, and that penalising the discriminator's input gradient on the real data,

    R1 = (gamma / 2) * E_{x ~ p_data} ||grad_x D(x)||^2,

restores local convergence. R2 is the same term on generated samples,
``(gamma / 2) * E_z ||grad_x D(G(z))||^2``; R3GAN (Huang et al. 2024) uses both together.

The penalty is differentiated with respect to D's parameters, so the input gradient is taken with
``create_graph=True`` (a double backward): the fused ``dense_act`` op supports it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from numbers import Real

import torch

from ganforge.errors import ConfigError

Scorer = Callable[[torch.Tensor], torch.Tensor]
"""What penalties call D as: a module, or for conditional training D with the batch's labels
(``ganforge.train.conditioning.WithLabels``); it may also offer ``forward_pair(real, fake)``."""


def _mean_squared_norm(grad: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """``E ||grad_input D||^2`` over D's outputs: the squared gradient summed over the batch, divided
    by the number of logits. That is the per-sample mean for a discriminator that scores each sample,
    and for a PacGAN discriminator (one logit per pack of M samples) the mean over packs of the norm
    over the whole packed input, which is what R1 of that discriminator's input means."""
    return grad.pow(2).sum() / logits.numel()


def gradient_norm_penalty(disc: Scorer, x: torch.Tensor) -> torch.Tensor:
    """``E_x ||grad_x D(x)||^2``: the mean squared norm of D's input gradient, one term per logit.

    ``x`` is detached first (for R2 it is the generator's output, whose graph must not be
    touched), and the result keeps its graph so it can be back-propagated into D's parameters.
    The gradient of ``D(x).sum()`` gives every sample's own gradient at once, since each logit
    depends only on its own input (up to batch-level features such as minibatch std).
    """
    x = x.detach().requires_grad_(True)
    logits = disc(x)
    (grad,) = torch.autograd.grad(logits.sum(), x, create_graph=True)
    return _mean_squared_norm(grad, logits)


def _paired_gradient_norm_penalties(forward_pair: Callable[..., tuple[torch.Tensor, torch.Tensor]],
                                    real: torch.Tensor, fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Both batches' ``E ||grad_x D(x)||^2`` from one ``forward_pair`` pass and one gradient call:
    one GEMM of 2B rows per layer is cheaper than two of B rows (see ganforge.train.step)."""
    real = real.detach().requires_grad_(True)
    fake = fake.detach().requires_grad_(True)
    real_logits, fake_logits = forward_pair(real, fake)
    real_grad, fake_grad = torch.autograd.grad(real_logits.sum() + fake_logits.sum(), (real, fake),
                                               create_graph=True)
    return _mean_squared_norm(real_grad, real_logits), _mean_squared_norm(fake_grad, fake_logits)


def r1_r2_penalty(disc: Scorer, real: torch.Tensor, fake: torch.Tensor,
                  r1: float = 0.0, r2: float = 0.0) -> torch.Tensor | None:
    """``(r1/2) E||grad D(real)||^2 + (r2/2) E||grad D(fake)||^2``, or ``None`` when both are 0.

    A zero weight skips its term entirely, so a loss with both off costs nothing extra.
    """
    if r1 == 0 and r2 == 0:
        return None
    if r1 > 0 and r2 > 0:
        forward_pair = getattr(disc, "forward_pair", None)
        if forward_pair is not None:
            real_term, fake_term = _paired_gradient_norm_penalties(forward_pair, real, fake)
        else:
            real_term, fake_term = gradient_norm_penalty(disc, real), gradient_norm_penalty(disc, fake)
        return 0.5 * r1 * real_term + 0.5 * r2 * fake_term
    if r1 > 0:
        return 0.5 * r1 * gradient_norm_penalty(disc, real)
    return 0.5 * r2 * gradient_norm_penalty(disc, fake)


def penalty_weight(option: str, value: object) -> float:
    """Validate a penalty weight given as ``--set loss.OPTION=VALUE``: a finite number >= 0."""
    if isinstance(value, Real) and not isinstance(value, bool):
        weight = float(value)
        if math.isfinite(weight) and weight >= 0:
            return weight
    raise ConfigError(f"loss.{option} must be a finite number >= 0 (0 turns it off), "
                      f"e.g. --set loss.{option}=10; got {value!r}")


PENALTY_OPTIONS: tuple[str, ...] = ("r1", "r2")
"""The loss options that are penalty weights: the training step's, accepted with any loss."""


@dataclass(frozen=True)
class Penalties:
    """The R1 and R2 weights of a run, each a finite number >= 0 (0: that term is off).

    A value rather than two loose floats, so that what the step applies is checked once, where it
    is made, with the same message as ``--set loss.r1=...``.
    """

    r1: float = 0.0
    r2: float = 0.0

    def __post_init__(self) -> None:
        for option in PENALTY_OPTIONS:
            object.__setattr__(self, option, penalty_weight(option, getattr(self, option)))

    @classmethod
    def from_mapping(cls, weights: Mapping[str, object]) -> Penalties:
        """From ``{"r1": ..., "r2": ...}`` (a loss's ``default_penalties``); a missing key is 0."""
        unknown = sorted(set(weights) - set(PENALTY_OPTIONS))
        if unknown:
            raise ConfigError(f"unknown penalty weight {', '.join(map(repr, unknown))}; "
                              f"the weights are {', '.join(PENALTY_OPTIONS)}")
        return cls(**weights)  # type: ignore[arg-type]  # checked in __post_init__

    def replace(self, **weights: float) -> Penalties:
        """A copy with some weights changed (and checked)."""
        return dataclasses.replace(self, **weights)

    @property
    def off(self) -> bool:
        """Both weights 0: the step then adds nothing and never calls D for a penalty."""
        return self.r1 == 0 and self.r2 == 0
