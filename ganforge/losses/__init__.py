"""Built-in adversarial losses."""

from ganforge.losses.base import GanLoss
from ganforge.losses.standard import MinimaxLoss, NonSaturatingLoss
from ganforge.losses.wasserstein import WassersteinGPLoss, WassersteinLoss

__all__ = ["GanLoss", "MinimaxLoss", "NonSaturatingLoss", "WassersteinGPLoss", "WassersteinLoss"]
