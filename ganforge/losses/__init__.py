"""Built-in adversarial losses."""

from ganforge.losses.base import GanLoss
from ganforge.losses.regularizers import gradient_norm_penalty, r1_r2_penalty
from ganforge.losses.relativistic import RelativisticPairingLoss
from ganforge.losses.standard import MinimaxLoss, NonSaturatingLoss
from ganforge.losses.wasserstein import WassersteinGPLoss, WassersteinLoss

__all__ = [
    "GanLoss",
    "MinimaxLoss",
    "NonSaturatingLoss",
    "RelativisticPairingLoss",
    "WassersteinGPLoss",
    "WassersteinLoss",
    "gradient_norm_penalty",
    "r1_r2_penalty",
]
