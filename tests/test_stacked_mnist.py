"""Stacked MNIST: three digits as R, G, B; fresh seeded batches; pools, padding, resume, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ganforge.data.base import SampledDataset
from ganforge.data.idx import write_idx
from ganforge.data.stacked_mnist import EVAL_SAMPLES, StackedMNIST, mode_of
from ganforge.errors import ConfigError, DataError

TEST_MARK = 5  # held-out digits of the fake IDX pool are one grey level above the training ones


def write_pool(root, n_train=40, n_test=20, labels=True, size=28):
    """IDX files whose every digit is a flat image of grey level 20 * label (+5 in t10k), so a
    channel's value says which label and which split it was drawn from."""
    root.mkdir(parents=True, exist_ok=True)
    for prefix, n, mark in (("train", n_train, 0), ("t10k", n_test, TEST_MARK)):
        if not n:
            continue
        y = (np.arange(n) % 10).astype(np.uint8)
        x = np.broadcast_to((20 * y + mark)[:, None, None], (n, size, size)).astype(np.uint8)
        write_idx(root / f"{prefix}-images-idx3-ubyte", x)
        if labels:
            write_idx(root / f"{prefix}-labels-idx1-ubyte", y)
    return root


def grey_levels(stacks: torch.Tensor) -> torch.Tensor:
    """The (n, 3) grey level of each flat channel, back in bytes."""
    return ((stacks[:, :, 14, 14] + 1) * 127.5).round().long()


@pytest.fixture(scope="module")
def bundled() -> StackedMNIST:
    return StackedMNIST()


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_bundled_stacks_have_shape_range_and_info(bundled):
    x = bundled.sample(64, gen(0))
    assert issubclass(StackedMNIST, SampledDataset)
    assert x.shape == (64, 3, 28, 28) and x.dtype == torch.float32
    assert x.min() >= -1 and x.max() <= 1 and x.min() == -1 and x.max() == 1
    assert bundled.info.sample_shape == (3, 28, 28) and bundled.info.modality == "image"
    assert bundled.info.value_range == (-1.0, 1.0)
    assert bundled.source == "bundled" and "4,000" in bundled.description and "1,000 held out" in bundled.description
    assert bundled.eval_samples == EVAL_SAMPLES == 26_000 and bundled.stacked


def test_bundled_labels_are_those_of_the_stacked_digits(bundled):
    stacks, labels = bundled.sample_with_labels(10, gen(1))
    assert labels.shape == (10, 3) and labels.dtype == torch.int64
    pool = bundled.digits.float().div(127.5).sub(1.0)
    for stack, triple in zip(stacks, labels, strict=True):
        for channel, label in zip(stack, triple, strict=True):
            matches = (pool == channel).flatten(1).all(1)  # the pool digits this channel is
            assert matches.any() and label in bundled.digit_labels[matches]


def test_mode_of_is_the_label_triple():
    labels = torch.tensor([[0, 0, 0], [1, 2, 3], [9, 9, 9], [0, 4, 7]])
    assert mode_of(labels).tolist() == [0, 123, 999, 47]
    with pytest.raises(ValueError, match=r"\(n, 3\)"):
        mode_of(torch.zeros(4, dtype=torch.int64))


def test_seeded_reproducible_and_seeds_differ(bundled):
    a, la = bundled.sample_with_labels(32, gen(7))
    b, lb = bundled.sample_with_labels(32, gen(7))
    assert torch.equal(a, b) and torch.equal(la, lb)
    assert torch.equal(bundled.sample(32, gen(7)), a)  # sample() draws exactly what sample_with_labels does
    assert not torch.equal(bundled.sample(32, gen(8)), a)
    stream = bundled.batches(16, gen(3))
    assert not torch.equal(next(stream), next(stream))  # fresh stacks every batch


def test_size_32_pads_with_background(bundled):
    padded = StackedMNIST(size=32)
    x, labels = padded.sample_with_labels(16, gen(5))
    y, labels28 = bundled.sample_with_labels(16, gen(5))
    assert x.shape == (16, 3, 32, 32) and padded.info.sample_shape == (3, 32, 32)
    assert torch.equal(x[:, :, 2:30, 2:30], y) and torch.equal(labels, labels28)
    border = torch.ones(32, 32, dtype=torch.bool)
    border[2:30, 2:30] = False
    assert (x[:, :, border] == -1).all()


def test_idx_pool_trains_on_train_digits_and_evaluates_on_t10k(tmp_path):
    root = write_pool(tmp_path / "mnist")
    data = StackedMNIST(root=str(root))
    assert data.source == str(root) and "40 digits" in data.description and "20 held out" in data.description
    stacks, labels = data.sample_with_labels(200, gen(0))
    assert torch.equal(grey_levels(stacks), 20 * labels)  # labels match channels, training digits only
    held = data.real_samples(200, gen(0))
    assert (grey_levels(held) % 20 == TEST_MARK).all()
    both = grey_levels(data.real_samples(400, gen(0), split="all")) % 20
    assert set(both.unique().tolist()) == {0, TEST_MARK}


def test_idx_pool_all_trains_on_every_digit(tmp_path):
    data = StackedMNIST(root=str(write_pool(tmp_path)), pool="all")
    marks = grey_levels(data.sample(400, gen(1))) % 20
    assert set(marks.unique().tolist()) == {0, TEST_MARK} and "also trained on" in data.description


def test_idx_pool_without_t10k_evaluates_on_training_digits(tmp_path, monkeypatch):
    monkeypatch.setenv("GANFORGE_DATA", str(write_pool(tmp_path, n_test=0)))
    data = StackedMNIST()
    assert data.source == str(tmp_path) and "no holdout" in data.description
    assert (grey_levels(data.real_samples(50, gen(2))) % 20 == 0).all()


def test_the_stream_resumes_exactly(bundled):
    stream = bundled.batches(8, gen(11))
    for _ in range(3):
        next(stream)
    state = stream.state_dict()
    expected = [next(stream) for _ in range(2)]
    resumed = StackedMNIST().batches(8, gen(999))  # a fresh run, another seed: the state wins
    resumed.load_state_dict(state)
    assert all(torch.equal(next(resumed), e) for e in expected)


@pytest.mark.parametrize("option, value, words", [
    ("size", 30, "--set data.size=28"), ("size", "32", "--set data.size=28"),
    ("pool", "test", "--set data.pool=train"), ("holdout", 6000, "data.holdout"),
])
def test_bad_options_name_the_option_and_the_fix(option, value, words):
    with pytest.raises((ConfigError, DataError), match=words.replace(".", r"\.")):
        StackedMNIST(**{option: value})


def test_unusable_idx_pools_are_refused_with_the_fix(tmp_path):
    with pytest.raises(DataError, match=r"data\.root"):
        StackedMNIST(root=str(tmp_path / "missing"))
    with pytest.raises(DataError, match="train-labels-idx1-ubyte"):
        StackedMNIST(root=str(write_pool(tmp_path / "unlabelled", labels=False)))
    with pytest.raises(DataError, match=r"28x28 digits.*20x20"):
        StackedMNIST(root=str(write_pool(tmp_path / "small", size=20)))
    root = write_pool(tmp_path / "half")
    (root / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DataError, match="t10k-labels"):
        StackedMNIST(root=str(root))
    with pytest.raises(ConfigError, match="split"):
        StackedMNIST(root=str(write_pool(tmp_path / "ok"))).sample_with_labels(4, gen(0), split="valid")
