"""Files a run leaves behind for people to look at: sample grids, scatter plots, loss curves."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from ganforge.data import DataInfo
from ganforge.run.folder import read_metrics


def to_uint8_images(samples: torch.Tensor, value_range: tuple[float, float] | None) -> np.ndarray:
    """(N, C, H, W) samples in ``value_range`` -> (N, H, W, C) uint8."""
    lo, hi = value_range if value_range is not None else (float(samples.min()), float(samples.max()))
    x = ((samples.detach().float().cpu() - lo) / max(hi - lo, 1e-12)).clamp(0, 1)
    return (x.mul(255).round().to(torch.uint8).permute(0, 2, 3, 1)).numpy()


def save_image_grid(samples: torch.Tensor, info: DataInfo, path: Path, pad: int = 2, scale: int = 2) -> None:
    """A near-square grid of images, white gaps between them, upscaled ``scale`` times."""
    from PIL import Image

    images = to_uint8_images(samples, info.value_range)
    n, h, w, c = images.shape
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    grid = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, c), 255, dtype=np.uint8)
    for i, img in enumerate(images):
        r, q = divmod(i, cols)
        grid[pad + r * (h + pad): pad + r * (h + pad) + h, pad + q * (w + pad): pad + q * (w + pad) + w] = img
    picture = Image.fromarray(grid[..., 0] if c == 1 else grid)
    picture.resize((picture.width * scale, picture.height * scale), Image.Resampling.NEAREST).save(path)


def save_scatter(fake: torch.Tensor, real: torch.Tensor, path: Path, title: str = "") -> None:
    """Generated 2-D points over the real data's."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
    real_x, real_y = real.cpu().numpy().T
    fake_x, fake_y = fake.detach().cpu().numpy().T
    ax.scatter(real_x, real_y, s=2, c="tab:blue", alpha=0.4, label="real")
    ax.scatter(fake_x, fake_y, s=2, c="tab:orange", alpha=0.6, label="generated")
    ax.set_aspect("equal")
    # Below the axes: inside, any corner can hide a mode (grid25 has one in each corner).
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.06), ncol=2, markerscale=4, frameon=False)
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def save_samples(samples: torch.Tensor, info: DataInfo, path: Path, real: torch.Tensor | None = None,
                 title: str = "") -> None:
    """The right picture for the data: an image grid, or a scatter plot over real points."""
    if info.modality == "image":
        save_image_grid(samples, info, path)
    elif samples.shape[1:] == (2,) and real is not None:
        save_scatter(samples, real, path, title)
    else:
        raise ValueError(f"cannot draw samples of shape {tuple(samples.shape[1:])}")


def plot_losses(metrics_path: Path, path: Path) -> None:
    """Both losses over the steps, from the run's metrics file."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    all_rows = read_metrics(metrics_path)
    rows = [r for r in all_rows if "d_loss" in r]
    evals = [r for r in all_rows if any(k.startswith("eval/") for k in r)]
    keys = sorted({k for r in evals for k in r if k.startswith("eval/") and not k.endswith("_std")})
    fig, axes = plt.subplots(1, 2 if keys else 1, figsize=(12 if keys else 7, 4), dpi=100, squeeze=False)
    ax = axes[0][0]
    steps = [r["step"] for r in rows]
    ax.plot(steps, [r["d_loss"] for r in rows], label="discriminator")
    ax.plot(steps, [r["g_loss"] for r in rows], label="generator")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.legend()
    ax.grid(alpha=0.3)
    if keys:  # the run's quality curve next to its losses
        qa = axes[0][1]
        for key in keys:
            points = [(r["step"], r[key]) for r in evals if key in r]
            qa.plot(*zip(*points, strict=True), marker="o", label=key[5:])
        qa.set_xlabel("step")
        qa.set_yscale("symlog")
        qa.set_title("quality (--eval-every)")
        qa.legend()
        qa.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
