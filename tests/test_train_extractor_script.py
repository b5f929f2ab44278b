"""scripts/train_extractor.py's ``--all-mnist`` mode, which trains stacked-modes' shipped digit
reader: both source formats give the same digits, the pickle reader refuses anything but arrays,
and the bundled held-out digits never reach the reader's training set."""

from __future__ import annotations

import gzip
import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from ganforge.data.idx import write_idx
from ganforge.data.mnist import MNIST
from ganforge.metrics.lenet import DIGIT_READER, LeNetExtractor, sha256


@pytest.fixture
def script(load_script):
    return load_script("train_extractor")


def _bundled_held_out() -> np.ndarray:
    return np.round((MNIST(root=None).test.numpy()[:, 0] + 1) * 127.5).astype(np.uint8)


def _fake_mnist(seed: int, n_train: int = 60, n_test: int = 20, planted: int = 5):
    """Random digits, with ``planted`` of the bundled held-out digits among the training ones."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8)
    where = rng.choice(n_train, planted, replace=False)
    x[where] = _bundled_held_out()[rng.choice(1000, planted, replace=False)]
    return (x, rng.integers(0, 10, n_train), rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
            rng.integers(0, 10, n_test))


def _as_idx(folder: Path, x, y, xt, yt) -> Path:
    folder.mkdir()
    for prefix, images, labels in (("train", x, y), ("t10k", xt, yt)):
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte", labels.astype(np.uint8))
    return folder


def _as_pickle(path: Path, x, y, xt, yt) -> Path:
    """deeplearning.net's layout: (train, valid, test), float32 pixels = byte / 256."""
    flat = lambda a: (a.reshape(len(a), -1) / 256).astype(np.float32)  # noqa: E731
    half = len(x) // 2
    parts = ((flat(x[:half]), y[:half]), (flat(x[half:]), y[half:]), (flat(xt), yt))
    with gzip.open(path, "wb") as fh:
        pickle.dump(parts, fh)
    return path


def test_idx_folder_and_pickle_give_the_same_digits(tmp_path, script):
    digits = _fake_mnist(int(np.random.default_rng().integers(2**31)))
    from_idx = script.load_all_mnist(_as_idx(tmp_path / "idx", *digits))
    from_pickle = script.load_all_mnist(_as_pickle(tmp_path / "mnist.pkl.gz", *digits))
    for a, b, original in zip(from_idx, from_pickle, digits, strict=True):
        np.testing.assert_array_equal(a, original)
        np.testing.assert_array_equal(b, original)


def test_the_pickle_reader_refuses_what_is_not_an_array(tmp_path, script):
    path = tmp_path / "evil.pkl.gz"
    with gzip.open(path, "wb") as fh:
        pickle.dump((os.getcwd, ()), fh)
    with pytest.raises(pickle.UnpicklingError, match="not a numpy array"):
        script.load_all_mnist(path)


def test_the_bundled_held_out_digits_are_left_out_of_training(tmp_path, script):
    digits = _fake_mnist(int(np.random.default_rng().integers(2**31)), planted=7)
    x, y, xt, yt, left_out = script.all_mnist_split(_as_idx(tmp_path / "idx", *digits))
    assert left_out == 7 and len(x) == 53 and len(xt) == 20
    held_out = {row.tobytes() for row in _bundled_held_out().reshape(1000, -1)}
    kept = np.round((x.numpy()[:, 0] + 1) * 127.5).astype(np.uint8).reshape(len(x), -1)
    assert not any(row.tobytes() in held_out for row in kept)


def test_all_mnist_mode_writes_the_reader_and_a_record_that_loads(tmp_path, script):
    src = _as_pickle(tmp_path / "mnist.pkl.gz", *_fake_mnist(0))
    out = tmp_path / "weights"
    assert script.main(["--all-mnist", str(src), "--epochs", "1", "--out", str(out)]) == 0
    weights = out / f"{DIGIT_READER}.safetensors"
    record = json.loads((out / f"{DIGIT_READER}.json").read_text())
    assert record["sha256"] == sha256(weights)
    assert record["n_train"] == 55 and record["n_test"] == 20 and "bundled_held_out_accuracy" in record
    assert LeNetExtractor(weights=str(weights)).probabilities(MNIST(root=None).test[:4]).shape == (4, 10)


def test_a_missing_source_is_a_usage_error(tmp_path, capsys, script):
    with pytest.raises(SystemExit) as exit_info:
        script.main(["--all-mnist", str(tmp_path / "absent"), "--out", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "does not exist" in capsys.readouterr().err


def test_write_idx_gives_a_folder_that_data_root_reads(tmp_path, script, capsys):
    """The pickle's digits written as IDX files read back bit for bit, and as ``data.root`` they are
    the training and held-out digits of the mnist data set."""
    from ganforge.data.mnist import load_idx_dir

    digits = _fake_mnist(int(np.random.default_rng().integers(2**31)))
    src = _as_pickle(tmp_path / "mnist.pkl.gz", *digits)
    assert script.main(["--all-mnist", str(src), "--write-idx", str(tmp_path / "idx")]) == 0
    assert "wrote 60 training and 20 test digits" in capsys.readouterr().out
    for a, original in zip(script.load_all_mnist(tmp_path / "idx"), digits, strict=True):
        np.testing.assert_array_equal(a, original)
    splits = load_idx_dir(tmp_path / "idx")
    assert splits["train"][0].shape == (60, 28, 28) and splits["test"][0].shape == (20, 28, 28)


def test_write_idx_without_a_source_is_a_usage_error(tmp_path, script, capsys):
    with pytest.raises(SystemExit) as exit_info:
        script.main(["--write-idx", str(tmp_path / "idx")])
    assert exit_info.value.code == 2 and "--write-idx needs --all-mnist" in capsys.readouterr().err
