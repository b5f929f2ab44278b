"""The run's pictures: the same noise drawn through the sampler at every picture step, so a
reader compares like with like from one picture to the next, and for image data the real training
images drawn the same way beside them (``samples/real.png``), the yardstick for the eye."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ganforge.data import GanDataset
from ganforge.models.sampling import draw
from ganforge.run.folder import RunFolder
from ganforge.train import artifacts

N_FIXED_IMAGES = 64
N_FIXED_POINTS = 2500  # a scatter plot needs many points to show where the mass is


class Pictures:
    def __init__(self, folder: RunFolder, data: GanDataset, z_dim: int, seed: int, device: torch.device) -> None:
        self.folder, self.info = folder, data.info
        n = N_FIXED_IMAGES if self.info.modality == "image" else N_FIXED_POINTS
        self.noise = torch.randn(n, z_dim, generator=self._rng(seed)).to(device)
        self.real = data.real_samples(n, self._rng(seed), split="train")
        self._real_saved = False

    @staticmethod
    def _rng(seed: int) -> torch.Generator:
        return torch.Generator().manual_seed(seed + 12345)

    def save(self, sampler: nn.Module, step: int) -> tuple[Path, torch.Tensor]:
        """Draw the noise through ``sampler``, save the picture of ``step``; return its path and
        the samples (float32 on the CPU). The session's first image picture also draws the real
        preview (once a session: a folder reused or a write cut short is redrawn)."""
        fake = draw(sampler, self.noise).cpu()
        path = self.folder.sample_picture(step)
        artifacts.save_samples(fake, self.info, path, self.real, title=f"step {step}")
        if self.info.modality == "image" and not self._real_saved:
            artifacts.save_image_grid(self.real, self.info, self.folder.real_preview)
            self._real_saved = True
        return path, fake
