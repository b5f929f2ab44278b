"""What a Stacked MNIST generator's digits look like to the classifier that counts its modes.

    python scripts/stacked_digits.py runs/stacked-0 --out digits.png

Draws ``-n`` stacks from the run (EMA weights, as ``ganforge eval``), reads each channel with the
``stacked-modes`` metric's classifier, and prints each channel's digit shares in percent (10 each
for an even spread; ``ganforge eval`` reports the KL they make as ``kl_channels``). ``--out``
writes a picture: row d holds channels read as digit d, the last row the channels with the
highest probability of a 1 among those *not* read as 1 (the near misses of the rarest digit).

``--doubt P`` also reads as many real stacks (the run's data) and prints, for both, the share of
channels the classifier reads with a probability below ``P``, and the digit shares of the
confident readings alone: whether a digit is over-drawn by G or only read into G's unclear strokes.
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
    parser.add_argument("--doubt", type=float, metavar="P",
                        help="compare doubtful readings (top probability below P, e.g. 0.9) with real stacks'")
    args = parser.parse_args()

    from ganforge.metrics.stacked_modes import StackedModes, centre_digits
    from ganforge.plugins import load_registry
    from ganforge.train.restore import load_run

    torch.set_num_threads(1)
    registry = load_registry()[1]
    run = load_run(args.run, registry)
    stacks = run.sample(args.n, seed=args.seed)
    digits = centre_digits(stacks)  # (3N, 1, 28, 28): R, G, B of each stack in turn
    reader = StackedModes().classifier()
    probabilities = reader.probabilities(digits)
    read = probabilities.argmax(1)
    for channel, name in enumerate("RGB"):
        shares = torch.bincount(read[channel::3], minlength=10).double() / args.n * 100
        print(f"channel {name}: " + "  ".join(f"{d}:{share:4.1f}" for d, share in enumerate(shares.tolist())))
    if args.doubt is not None:
        from ganforge.train.build import build_dataset

        real = build_dataset(run.config, registry).real_samples(args.n, torch.Generator().manual_seed(args.seed))
        for who, p in (("generated", probabilities), ("real", reader.probabilities(centre_digits(real)))):
            doubtful, shares = confident_shares(p, args.doubt)
            print(f"{who}: {doubtful:.1f} % of channels read below {args.doubt}; the others' digits: "
                  + "  ".join(f"{d}:{v:4.1f}" for d, v in enumerate(shares.tolist())))
    if args.out:
        write_picture(digits, probabilities, read, args.near, args.out)
        print(f"picture: {args.out}")


def confident_shares(probabilities: torch.Tensor, doubt: float) -> tuple[float, torch.Tensor]:
    """The percentage of readings whose top probability is below ``doubt``, and the digit shares
    (percent) of the others."""
    top, digit = probabilities.max(1)
    sure = top >= doubt
    shares = torch.bincount(digit[sure], minlength=10).double() / max(int(sure.sum()), 1) * 100
    return 100 * (1 - float(sure.double().mean())), shares


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
