"""Data sets: IDX files (made here), the embedded MNIST subset, the 2-D mixtures."""

from __future__ import annotations

import hashlib
import lzma
import math

import numpy as np
import pytest
import torch

from ganforge.data.idx import read_idx, write_idx
from ganforge.data.mixtures import grid25, ring8
from ganforge.data.mnist import MNIST, SHIPPED_DIR, load_bundled
from ganforge.errors import ConfigError, DataError


def make_idx_dir(root, n_train=50, n_test=20, gz=True, layout="flat"):
    rng = np.random.default_rng()
    folder = root / "MNIST" / "raw" if layout == "torchvision" else root
    folder.mkdir(parents=True, exist_ok=True)
    ext = gz if isinstance(gz, str) else ".gz" if gz else ""
    arrays = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, n, dtype=np.uint8)
        write_idx(folder / f"{prefix}-images-idx3-ubyte{ext}", images)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte{ext}", labels)
        arrays[prefix] = (images, labels)
    return arrays


@pytest.mark.parametrize("gz, layout", [(True, "flat"), (False, "torchvision"), (".xz", "flat")])
def test_mnist_reads_idx_files(tmp_path, gz, layout):
    arrays = make_idx_dir(tmp_path, gz=gz, layout=layout)
    data = MNIST(root=str(tmp_path))
    assert data.train.shape == (50, 1, 28, 28) and data.test.shape == (20, 1, 28, 28)
    expected = torch.from_numpy(arrays["train"][0].astype(np.float32)) / 127.5 - 1
    assert torch.allclose(data.train[:, 0], expected)
    assert data.train_labels.tolist() == arrays["train"][1].tolist()


def test_mnist_root_from_environment(tmp_path, monkeypatch):
    make_idx_dir(tmp_path, n_train=10)
    monkeypatch.setenv("GANFORGE_DATA", str(tmp_path))
    assert len(MNIST().train) == 10


def test_missing_root_and_missing_files_are_clear(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        MNIST(root=str(tmp_path / "nope"))
    with pytest.raises(DataError, match="no train-images-idx3-ubyte"):
        MNIST(root=str(tmp_path))


def test_corrupt_idx_file_is_clear(tmp_path):
    (tmp_path / "train-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03" + b"\x00\x00\x00\x05" * 3 + b"xx")
    with pytest.raises(DataError, match="truncated"):
        MNIST(root=str(tmp_path))
    (tmp_path / "train-images-idx3-ubyte").write_bytes(b"hello world")
    with pytest.raises(DataError, match="not an IDX file"):
        read_idx(tmp_path / "train-images-idx3-ubyte")


def test_a_corrupt_xz_file_is_clear(tmp_path):
    write_idx(tmp_path / "a.xz", np.zeros((4, 2), np.uint8))
    raw = bytearray((tmp_path / "a.xz").read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    (tmp_path / "a.xz").write_bytes(bytes(raw))
    with pytest.raises(DataError, match="cannot read IDX file"):
        read_idx(tmp_path / "a.xz")


# MNIST's published class counts (LeCun et al.) and the SHA-256 of its four uncompressed IDX files,
# as ganforge/data/mnist_digits/README.md records them
MNIST_COUNTS = {"train": [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949],
                "t10k": [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]}


def test_the_shipped_digits_are_mnist_byte_for_byte():
    """The files decompress to exactly the checksums their README states, and hold MNIST's splits."""
    readme = (SHIPPED_DIR / "README.md").read_text()
    for path in sorted(SHIPPED_DIR.glob("*.xz")):
        digest = hashlib.sha256(lzma.decompress(path.read_bytes())).hexdigest()
        assert f"{digest}  {path.name[:-3]}" in readme, path.name
    for split, counts in MNIST_COUNTS.items():
        labels = read_idx(SHIPPED_DIR / f"{split}-labels-idx1-ubyte.xz")
        assert np.bincount(labels).tolist() == counts


def test_digits_70000_reads_all_of_mnist(monkeypatch, tmp_path):
    """digits=70000 is MNIST's own split (60,000 / 10,000), whatever $GANFORGE_DATA says."""
    make_idx_dir(tmp_path, n_train=10)
    monkeypatch.setenv("GANFORGE_DATA", str(tmp_path))
    data = MNIST(digits=70000)
    assert data.train.shape == (60000, 1, 28, 28) and data.test.shape == (10000, 1, 28, 28)
    assert data.source == "shipped" and data.train.min() == -1 and data.train.max() == 1
    assert np.bincount(data.train_labels.numpy()).tolist() == MNIST_COUNTS["train"]
    assert len(MNIST().train) == 10  # the default still follows $GANFORGE_DATA


def test_digits_70000_and_a_root_conflict(tmp_path):
    with pytest.raises(ConfigError, match="pass one of them"):
        MNIST(root=str(tmp_path), digits=70000)
    with pytest.raises(ConfigError, match="5000 .* or 70000"):
        MNIST(digits=60000)  # type: ignore[arg-type]


def test_bundled_subset_is_5000_real_digits(monkeypatch):
    monkeypatch.delenv("GANFORGE_DATA", raising=False)
    images, labels = load_bundled()
    assert images.shape == (5000, 28, 28) and images.dtype == np.uint8
    assert np.bincount(labels).tolist() == [500] * 10
    data = MNIST()
    assert data.train.shape == (4000, 1, 28, 28) and data.test.shape == (1000, 1, 28, 28)
    assert data.train.min() == -1 and data.train.max() == 1
    assert data.info.value_range == (-1.0, 1.0)


def nearest_mode_distance(samples, modes):
    return torch.cdist(samples, modes).min(dim=1).values


@pytest.mark.parametrize("make, n_modes, std, spread", [(ring8, 8, 0.01, 1.0), (grid25, 25, 0.05, 4.0)])
def test_mixtures_match_pacgan(make, n_modes, std, spread):
    data = make()
    assert len(data.modes) == n_modes and data.std == std
    assert data.modes.abs().max().item() == pytest.approx(spread)
    rng = torch.Generator().manual_seed(int(torch.randint(1 << 30, ())))
    samples = data.sample(20000, rng)
    dist = nearest_mode_distance(samples, data.modes)
    # 2-D isotropic Gaussian: P(r <= 3 sigma) = 1 - exp(-9/2) = 0.9889
    assert (dist <= 3 * std).float().mean().item() == pytest.approx(1 - math.exp(-4.5), abs=0.005)
    counts = torch.bincount(torch.cdist(samples, data.modes).argmin(1), minlength=n_modes)
    assert counts.min() > 0.7 * 20000 / n_modes


def test_ring8_modes_are_on_the_unit_circle():
    modes = ring8().modes
    assert torch.allclose(modes.norm(dim=1), torch.ones(8))
    assert torch.allclose(modes[2], torch.tensor([0.0, 1.0]), atol=1e-6)


def test_mixtures_are_seeded():
    a = grid25().sample(10, torch.Generator().manual_seed(3))
    b = grid25().sample(10, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
