"""Each core loss on the bundled MNIST subset: the last picture, LeNet-FID, precision/recall and
coverage of each, for docs/experiments.md.

    python scripts/mnist_losses.py --out runs/mnist-losses                  # 5,000 steps each
    python scripts/mnist_losses.py --losses nonsat rpgan --steps 2000 --seed 1

Each run is a real ``ganforge run --data mnist --loss L --set gen.norm=batch`` (the mlp networks
with BatchNorm in G, which keeps them from collapsing; every loss keeps its own optimiser settings,
e.g. RMSprop 5e-5 and 5 critic steps for ``wasserstein``), then ``ganforge eval RUN --metric fid
--metric prdc`` on 10,000 samples of the EMA generator. Prints one row per loss and leaves each
run's folder (its last picture is ``samples/step_*.png``) under ``--out``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

LOSSES = ["minimax", "nonsat", "wasserstein", "wgan-gp", "rpgan"]


def ganforge(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "ganforge", *args], check=True, stdout=subprocess.DEVNULL)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--losses", nargs="*", default=LOSSES)
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/mnist-losses")
    parser.add_argument("--run-args", default="", help="extra `ganforge run` flags, one string")
    args = parser.parse_args(argv)
    rows = []
    for loss in args.losses:
        run = Path(args.out) / loss
        start = time.perf_counter()
        ganforge("run", "--data", "mnist", "--loss", loss, "--set", "gen.norm=batch", "--steps", str(args.steps),
                 "--seed", str(args.seed), "--log-every", "1000", "--out", str(run), *args.run_args.split())
        seconds = time.perf_counter() - start
        ganforge("eval", str(run), "--metric", "fid", "--metric", "prdc", "--json", str(run / "eval.json"))
        results = json.loads((run / "eval.json").read_text())
        values = results.get("metrics", results)
        row = {"loss": loss, "seconds": round(seconds, 1),
               **{k: values[k] for k in ("fid", "precision", "recall", "coverage") if k in values}}
        rows.append(row)
        print(json.dumps(row), flush=True)
    print(f"\n{'loss':12s} {'FID':>7s} {'precision':>9s} {'recall':>7s} {'coverage':>8s} {'minutes':>7s}")
    for r in rows:
        print(f"{r['loss']:12s} {r.get('fid', float('nan')):7.1f} {r.get('precision', float('nan')):9.3f} "
              f"{r.get('recall', float('nan')):7.3f} {r.get('coverage', float('nan')):8.3f} {r['seconds'] / 60:7.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
