"""Built-in adversarial losses, and the R1/R2 penalties the training step applies for any loss."""

from ganforge.losses.base import GanLoss
from ganforge.losses.penalties import build_with_penalties, discriminator_penalty, split_penalty_options
from ganforge.losses.regularizers import Penalties, gradient_norm_penalty, r1_r2_penalty
from ganforge.losses.relativistic import RelativisticPairingLoss
from ganforge.losses.standard import MinimaxLoss, NonSaturatingLoss
from ganforge.losses.wasserstein import WassersteinGPLoss, WassersteinLoss

__all__ = [
    "GanLoss",
    "MinimaxLoss",
    "NonSaturatingLoss",
    "Penalties",
    "RelativisticPairingLoss",
    "WassersteinGPLoss",
    "WassersteinLoss",
    "build_with_penalties",
    "discriminator_penalty",
    "gradient_norm_penalty",
    "r1_r2_penalty",
    "split_penalty_options",
]
