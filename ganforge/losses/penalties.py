"""R1 and R2 for every loss: the run's weights, and the discriminator term the training step adds.

The zero-centred penalties (ganforge.losses.regularizers) depend on D alone, not on the loss's
formula, so they belong to the training step and work the same with a built-in loss and a
plugin's. A loss only declares its default weights (``GanLoss.default_penalties``, e.g. rpgan's
0.01 each); ``--set loss.r1=...`` and ``--set loss.r2=...`` override them. Those two options are
taken out of the loss options before the loss's factory is called, so a factory written without
them (every plugin loss so far) accepts them all the same, and their messages are the same
whichever loss is chosen.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch

from ganforge.errors import ConfigError, PluginError
from ganforge.losses.base import GanLoss
from ganforge.losses.regularizers import PENALTY_OPTIONS, Penalties, Scorer, penalty_weight, r1_r2_penalty

if TYPE_CHECKING:
    from ganforge.registry import Component


def split_penalty_options(options: Mapping[str, Any]) -> tuple[dict[str, float], dict[str, Any]]:
    """``(penalty weights, factory options)`` from a run's loss options: ``r1`` and ``r2``
    (checked, as floats) apart from everything else, which is the loss factory's."""
    weights = {key: penalty_weight(key, value) for key, value in options.items() if key in PENALTY_OPTIONS}
    rest = {key: value for key, value in options.items() if key not in PENALTY_OPTIONS}
    return weights, rest


def build_with_penalties(component: Component, options: Mapping[str, Any]) -> GanLoss:
    """Build a registered loss from the run's loss options and set ``loss.penalties``: the weights
    the loss declares (or its constructor set, e.g. rpgan's ``gamma``), with the run's ``r1`` /
    ``r2`` over them. A bad declared weight is the plugin's mistake, and the message says so."""
    weights, factory_options = split_penalty_options(options)
    loss = component.build(**factory_options)
    try:
        # A factory that returns some other object with the loss's methods has always worked: it
        # declares no weights.
        declared = loss.penalties if isinstance(loss, GanLoss) else Penalties()
    except ConfigError as exc:
        raise PluginError(f"loss {component.name!r} from {component.provider} declares bad default_penalties: "
                          f"{exc}; the plugin needs fixing") from None
    loss.penalties = declared.replace(**weights)
    return loss


def discriminator_penalty(loss: GanLoss, disc: Scorer, real: torch.Tensor,
                          fake: torch.Tensor) -> torch.Tensor | None:
    """Everything the training step adds to D's loss beyond ``loss.d_loss``: the loss's own term
    (``loss.penalty``, e.g. WGAN-GP's) plus R1 and R2 with ``loss.penalties``; ``None`` when there
    is nothing, and then D is not called again. R1 + R2 together use D's ``forward_pair`` when it
    has one (:func:`r1_r2_penalty`)."""
    own = loss.penalty(disc, real, fake)
    weights = loss.penalties
    zero_centred = None if weights.off else r1_r2_penalty(disc, real, fake, r1=weights.r1, r2=weights.r2)
    if zero_centred is None:
        return own
    return zero_centred if own is None else own + zero_centred
