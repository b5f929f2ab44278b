"""Real colour photographs offline: square PNG crops of the photographs scikit-image ships.

    python benchmarks/photo_crops.py OUT_DIR [--train 4000] [--heldout 1000] [--sizes 64,32] [--seed 0]

writes, for each size S (64 and 32 by default)::

    OUT_DIR/S/train/<photo>_NNNNN.png     the training crops
    OUT_DIR/S/heldout/<photo>_NNNNN.png   crops for evaluation, from regions no training crop touches

The photographs are the colour photos in scikit-image's wheel that load without a download
(:data:`PHOTOS`). Each is split by width: training crops come from its left 75 %, held-out crops
from its right 25 % (a strip at least 112 px wide), so the held-out set shows the same photos,
light and textures, but not one pixel a training crop saw. Each crop is a square whose side is
drawn log-uniformly from 48 to 112 px of the photograph (random scale), at a uniformly random
place inside its region, with a coin-flip mirror, resized to S x S with Lanczos filtering. Every
photograph gives the same number of crops; the same seed writes the same files. The S-pixel
files of every size are the same crops (the 32 px files are the 64 px crops, drawn smaller).

Train on them with ``ganforge run --recipe photos64 --set data.root=OUT_DIR/64/train``
(docs/results.md, "Your own photos").
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry", "retina",
          "motorcycle")
"""skimage.data's colour photographs in the wheel (no download); ``motorcycle`` is the left view
of ``stereo_motorcycle``."""
HELDOUT_SHARE = 0.25  # the right quarter of each photo's width is held out
MIN_SIDE, MAX_SIDE = 48, 112  # crop sides in the photograph's pixels, drawn log-uniformly


def load_photos() -> dict[str, np.ndarray]:
    """name -> (H, W, 3) uint8 array of each photograph."""
    import skimage.data

    loaders: dict[str, Callable[[], np.ndarray]] = {name: getattr(skimage.data, name) for name in PHOTOS
                                                    if name != "motorcycle"}
    loaders["motorcycle"] = lambda: skimage.data.stereo_motorcycle()[0]
    return {name: np.ascontiguousarray(load()[..., :3]) for name, load in loaders.items()}


def regions(photo: np.ndarray) -> dict[str, np.ndarray]:
    """{"train": left part, "heldout": right part} of the photograph, split by width."""
    width = photo.shape[1]
    cut = width - max(math.ceil(width * HELDOUT_SHARE), MAX_SIDE)
    return {"train": photo[:, :cut], "heldout": photo[:, cut:]}


def crops(region: np.ndarray, count: int, rng: np.random.Generator) -> list[np.ndarray]:
    """``count`` square crops of random side (log-uniform in [MIN_SIDE, MAX_SIDE], at most the
    region's short side) and place, each mirrored with probability 1/2."""
    h, w = region.shape[:2]
    top = min(MAX_SIDE, h, w)
    out = []
    for _ in range(count):
        side = int(round(math.exp(rng.uniform(math.log(MIN_SIDE), math.log(top)))))
        y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        crop = region[y:y + side, x:x + side]
        out.append(crop[:, ::-1] if rng.random() < 0.5 else crop)
    return out


def write(out_dir: Path, n_train: int, n_heldout: int, sizes: list[int], seed: int = 0) -> dict[str, int]:
    """Write the crops; returns the number of files per split (per size)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    photos = load_photos()
    counts = {"train": n_train, "heldout": n_heldout}
    written = dict.fromkeys(counts, 0)
    for split, total in counts.items():
        for size in sizes:
            (out_dir / str(size) / split).mkdir(parents=True, exist_ok=True)
        for i, (name, photo) in enumerate(photos.items()):
            count = total // len(photos) + (1 if i < total % len(photos) else 0)
            for j, crop in enumerate(crops(regions(photo)[split], count, rng)):
                image = Image.fromarray(np.ascontiguousarray(crop))
                for size in sizes:
                    image.resize((size, size), Image.Resampling.LANCZOS).save(
                        out_dir / str(size) / split / f"{name}_{j:05d}.png")
            written[split] += count
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--train", type=int, default=4000, help="training crops (default 4000)")
    parser.add_argument("--heldout", type=int, default=1000, help="held-out crops (default 1000)")
    parser.add_argument("--sizes", default="64,32", help="sizes in px, comma-separated (default 64,32)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    written = write(args.out_dir, args.train, args.heldout, sizes, args.seed)
    for size in sizes:
        print(f"{args.out_dir / str(size)}: {written['train']} train, {written['heldout']} held-out crops "
              f"of {size}x{size} px")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
