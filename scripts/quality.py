"""Sample quality on PacGAN's 2-D mixtures, over seeds, next to PacGAN's published Table 1.

    python scripts/quality.py                          # the ring8 and grid25 recipes, seeds 0-4
    python scripts/quality.py --losses minimax nonsat wasserstein wgan-gp rpgan --seeds 0 1 2
    python scripts/quality.py --recipes grid25 --seeds 0 --set loss.r1=1 --run-args "--steps 5000"

Each run is a real ``ganforge run`` in its own process (``--recipe NAME --seed S``, or for
``--losses`` the plain ``mlp`` networks with that loss on both mixtures), followed by
``ganforge sample RUN -n 2500``; the modes metric (``ganforge.metrics.modes``: PacGAN's
definitions, a sample is high quality within 3 standard deviations of a mode) scores the samples.
Prints mean +- standard error over seeds and writes every number to ``--json``.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# PacGAN (Lin et al. 2018), Table 1: modes, high-quality samples (%), reverse KL; 2,500 samples.
PUBLISHED = {
    "ring8": {"GAN": (6.3, 98.2, 0.45), "PacGAN2": (7.9, 95.6, 0.07), "PacGAN4": (7.8, 95.9, 0.07)},
    "grid25": {"GAN": (17.3, 94.8, 0.70), "PacGAN2": (23.8, 91.3, 0.13), "PacGAN4": (24.8, 93.6, 0.04)},
}
TARGETS = {"ring8": (8, 97.0, 0.03), "grid25": (25, 95.0, 0.03)}
N_SAMPLES = 2500


def ganforge(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "ganforge", *args], check=True, stdout=subprocess.DEVNULL)


def score(data: str, samples: np.ndarray) -> dict[str, float]:
    """PacGAN's numbers for ``samples`` of the mixture ``data`` (its modes and std)."""
    import torch

    from ganforge.data.mixtures import grid25, ring8
    from ganforge.metrics.modes import mode_stats

    mixture = {"ring8": ring8, "grid25": grid25}[data]()
    stats = mode_stats(torch.from_numpy(samples), mixture.modes, mixture.std)
    return {"modes": int(stats["modes"]), "high_quality": stats["high_quality"], "reverse_kl": stats["reverse_kl"]}


def one_run(label: str, data: str, seed: int, run_args: list[str], workdir: Path) -> dict:
    out = workdir / f"{label.split(' ')[0]}-{data}-s{seed}"
    start = time.perf_counter()
    ganforge("run", *run_args, "--seed", str(seed), "--out", str(out), "--log-every", "1000")
    seconds = time.perf_counter() - start
    ganforge("sample", str(out), "-n", str(N_SAMPLES), "-o", str(out / "samples.npy"))
    pictures = sorted((out / "samples").glob("step_*.png"))
    if pictures:  # the last picture (samples over the true modes), next to the run folders
        shutil.copyfile(pictures[-1], workdir / f"{out.name}.png")
    stats = score(data, np.load(out / "samples.npy"))
    return {"label": label, "data": data, "seed": seed, "seconds": round(seconds, 1), **stats}


def summarise(rows: list[dict]) -> None:
    def mean_se(values: list[float]) -> str:
        mean = statistics.fmean(values)
        se = statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else 0.0
        return f"{mean:7.3f} +- {se:5.3f}"

    print(f"\n{'method':24s} {'data':7s} {'modes':>16s} {'high quality %':>16s} {'reverse KL':>16s} "
          f"{'min modes':>9s} {'s/run':>6s}")
    for key in sorted({(r["label"], r["data"]) for r in rows}):
        group = [r for r in rows if (r["label"], r["data"]) == key]
        print(f"{key[0]:24s} {key[1]:7s} {mean_se([r['modes'] for r in group]):>16s} "
              f"{mean_se([r['high_quality'] for r in group]):>16s} {mean_se([r['reverse_kl'] for r in group]):>16s} "
              f"{min(r['modes'] for r in group):9d} {statistics.fmean(r['seconds'] for r in group):6.0f}")
    for data in sorted({r["data"] for r in rows}):
        for name, (modes, hq, kl) in PUBLISHED[data].items():
            print(f"{'PacGAN table: ' + name:24s} {data:7s} {modes:16.1f} {hq:16.1f} {kl:16.2f}")
        modes, hq, kl = TARGETS[data]
        print(f"{'target':24s} {data:7s} {modes:>16d} {'>= ' + str(hq):>16s} {'<= ' + str(kl):>16s}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipes", nargs="*", default=["ring8", "grid25"])
    parser.add_argument("--losses", nargs="*", default=[], help="also each loss with the plain mlp networks")
    parser.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--set", dest="assignments", action="append", default=[], help="extra --set for every run")
    parser.add_argument("--run-args", default="", help="extra `ganforge run` flags for every run, one string")
    parser.add_argument("--json", help="write every run's numbers here")
    parser.add_argument("--keep", help="keep the run folders, and each run's last picture, under this directory")
    args = parser.parse_args(argv)
    extra = [a for s in args.assignments for a in ("--set", s)] + args.run_args.split()
    plan = [(recipe, recipe, ["--recipe", recipe, *extra]) for recipe in args.recipes]
    plan += [(f"{loss} (plain mlp)", data, ["--data", data, "--loss", loss, *extra])
             for loss in args.losses for data in ("ring8", "grid25")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(args.keep or tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        for label, data, run_args in plan:
            for seed in args.seeds:
                row = one_run(label.split(" ")[0] if label == data else label, data, seed, run_args, workdir)
                rows.append(row)
                print(json.dumps(row), flush=True)
    summarise(rows)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
