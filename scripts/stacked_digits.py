"""What a Stacked MNIST generator's digits look like to the classifier that counts its modes.

    python scripts/stacked_digits.py runs/stacked-0 --out digits.png

Draws ``-n`` stacks from the run (EMA weights, as ``ganforge eval``), reads each channel with the
``stacked-modes`` metric's classifier, and prints each channel's digit shares in percent (10 each
for an even spread; ``ganforge eval`` reports the KL they make as ``kl_channels``). ``--out``
writes a picture: row d holds channels read as digit d, the last row the channels with the
highest probability of a 1 among those *not* read as 1 (the near misses of the rarest digit).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

COLUMNS = 16


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", help="a run folder of a stacked-mnist run")
    parser.add_argument("-n", type=int, default=3000, help="stacks to draw (default 3,000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--near", type=int, default=1, help="the digit whose near misses fill the last row")
    parser.add_argument("--out", help="write the picture of digits by reading to this PNG")
    args = parser.parse_args()

    from ganforge.metrics.stacked_modes import StackedModes, centre_digits
    from ganforge.plugins import load_registry
    from ganforge.train.restore import load_run

    torch.set_num_threads(1)
    stacks = load_run(args.run, load_registry()[1]).sample(args.n, seed=args.seed)
    digits = centre_digits(stacks)  # (3N, 1, 28, 28): R, G, B of each stack in turn
    probabilities = StackedModes().classifier().probabilities(digits)
    read = probabilities.argmax(1)
    for channel, name in enumerate("RGB"):
        shares = torch.bincount(read[channel::3], minlength=10).double() / args.n * 100
        print(f"channel {name}: " + "  ".join(f"{d}:{share:4.1f}" for d, share in enumerate(shares.tolist())))
    if args.out:
        write_picture(digits, probabilities, read, args.near, args.out)
        print(f"picture: {args.out}")


def write_picture(digits: torch.Tensor, probabilities: torch.Tensor, read: torch.Tensor, near: int,
                  out: str) -> None:
    from PIL import Image

    blank = torch.full((28, 28), -1.0)

    def row(indices: torch.Tensor) -> torch.Tensor:
        tiles = [digits[i, 0] for i in indices[:COLUMNS].tolist()]
        return torch.cat(tiles + [blank] * (COLUMNS - len(tiles)), 1)

    rows = [row((read == d).nonzero().squeeze(1)) for d in range(10)]
    chance = probabilities[:, near].masked_fill(read == near, -1.0)
    rows.append(row(chance.argsort(descending=True)))
    grid = ((torch.cat(rows, 0).clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()
    Image.fromarray(grid).resize((grid.shape[1] * 2, grid.shape[0] * 2), Image.NEAREST).save(out)


if __name__ == "__main__":
    main()
