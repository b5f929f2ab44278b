"""What a reader sees in an image run's pictures, counted: stray pixels and doubted digits.

    python scripts/picture_checks.py runs/demo [RUN ...]

LeNet-FID barely sees isolated bright pixels, yet a reader sees them first; this counts them, for
each run (its EMA generator, as `ganforge sample` draws) and for the real digits:

- *stray pixels per image*: bright pixels (above the middle of the value range) with at most one
  bright pixel among their eight neighbours, over 2,000 samples (``RestoredRun.sample(2000,
  seed=3)``; real digits: the first 2,000 of each split);
- *doubted cells per 64*: 64 times the share of 10,000 samples that the shipped classifier does
  not read, with p >= 0.9, as their digit (for a class-conditional generator, the digit asked
  for; real digits: their label; an unconditional generator: any digit), i.e. how many cells of a
  64-cell picture it would doubt on average.

docs/results.md quotes these numbers for the mnist recipe.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from ganforge.metrics.lenet import LeNetExtractor
from ganforge.plugins import load_registry
from ganforge.train.build import build_dataset
from ganforge.train.restore import load_run


def stray_pixels(images: torch.Tensor, value_range: tuple[float, float]) -> float:
    """Mean count per image of bright pixels with at most one bright 8-neighbour."""
    bright = (images.flatten(0, -3) > sum(value_range) / 2).numpy()  # (N, H, W)
    padded = np.pad(bright, ((0, 0), (1, 1), (1, 1))).astype(np.int32)
    h, w = bright.shape[1:]
    neighbours = sum(padded[:, 1 + dy: 1 + dy + h, 1 + dx: 1 + dx + w]
                     for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0))
    return float((bright & (neighbours <= 1)).sum(axis=(1, 2)).mean())


def doubted_per_64(classifier: LeNetExtractor, images: torch.Tensor, labels: torch.Tensor | None) -> float:
    confidence, read = classifier.probabilities(images).max(1)
    ok = confidence >= 0.9 if labels is None else (confidence >= 0.9) & (read == labels)
    return 64 * (1 - float(ok.float().mean()))


@torch.no_grad()
def generated(run, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor | None]:  # type: ignore[no-untyped-def]
    """``n`` samples of the run's generator and, for a class-conditional one, each one's digit."""
    z = torch.randn(n, run.config.z_dim, generator=torch.Generator().manual_seed(seed))
    images = torch.cat([run.generator(chunk) for chunk in z.split(1000)])
    if not getattr(run.generator, "classes", 0):
        return images, None
    return images, run.generator.net[0].class_of(z).long()  # the mlp generator's discrete code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", help="run folders of image runs")
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args(argv)
    _, registry = load_registry()
    classifier = LeNetExtractor()
    print(f"{'':<28} {'stray pixels per image':>24} {'doubted cells per 64':>22}")
    for i, path in enumerate(args.runs):
        run = load_run(path, registry)
        value_range = run.info.value_range or (-1.0, 1.0)
        if i == 0:
            data = build_dataset(run.config, registry)
            for name, images, labels in (("real digits (training)", data.train, getattr(data, "train_labels", None)),
                                         ("real digits (held out)", data.test, getattr(data, "test_labels", None))):
                if len(images):
                    print(f"{name:<28} {stray_pixels(images[:2000], value_range):>24.2f} "
                          f"{doubted_per_64(classifier, images, labels):>22.2f}")
        images, labels = generated(run, 10_000, args.seed)
        print(f"{path:<28} {stray_pixels(run.sample(2000, seed=3), value_range):>24.2f} "
              f"{doubted_per_64(classifier, images, labels):>22.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
