"""The ``folder`` data set on real files written by Pillow: mixed sizes and modes, classes from
subfolders, an unreadable file skipped and counted, and the errors a user meets first."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from ganforge.cli.main import main
from ganforge.data.folder import ImageFolder
from ganforge.errors import DataError


def write_images(root, n_per_class=6):
    rng = np.random.default_rng(0)
    modes = ["RGB", "L", "RGBA", "P"]
    for c, name in enumerate(["cats", "dogs"]):
        (root / name).mkdir(parents=True)
        for i in range(n_per_class):
            w, h = int(rng.integers(20, 90)), int(rng.integers(20, 90))
            array = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            image = Image.fromarray(array).convert(modes[(i + c) % len(modes)])
            image.save(root / name / f"{i}.{'png' if i % 2 else 'jpg'}" if image.mode in ("RGB", "L")
                       else root / name / f"{i}.png")
    Image.fromarray(np.full((40, 30), 200, np.uint8)).save(root / "loose.png")


def test_mixed_sizes_and_modes_become_one_tensor_in_range(tmp_path):
    write_images(tmp_path)
    data = ImageFolder(root=str(tmp_path), size=16, channels=3, holdout=2)
    assert data.info.sample_shape == (3, 16, 16) and data.info.value_range == (-1.0, 1.0)
    assert len(data.train) + len(data.test) == 13 and len(data.test) == 2
    assert data.train.dtype == torch.float32 and data.train.min() >= -1 and data.train.max() <= 1
    assert data.classes == ["cats", "dogs"]
    labels = torch.cat([data.train_labels, data.test_labels]).tolist()
    assert sorted(labels) == [-1] + [0] * 6 + [1] * 6
    grey = ImageFolder(root=str(tmp_path), size=8, channels=1, holdout=0)
    assert grey.info.sample_shape == (1, 8, 8)


def test_a_white_image_maps_to_one_and_is_centre_cropped(tmp_path):
    Image.fromarray(np.full((10, 30), 255, np.uint8)).save(tmp_path / "wide.png")
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(tmp_path / "black.png")
    data = ImageFolder(root=str(tmp_path), size=10, channels=1, holdout=0)
    values = sorted(float(x.mean()) for x in data.train)
    assert values == [-1.0, 1.0]


def test_unreadable_files_are_skipped_and_counted(tmp_path):
    write_images(tmp_path)
    (tmp_path / "cats" / "broken.png").write_bytes(b"not a png at all")
    data = ImageFolder(root=str(tmp_path), size=16)
    assert len(data.skipped) == 1 and "broken.png" in data.skipped[0]
    assert "skipped 1 unreadable" in data.describe()


@pytest.mark.parametrize("case, message", [
    ("empty", "no images in"),
    ("all_broken", "could be read"),
    ("bad_size", "data.size"),
    ("bad_channels", "data.channels"),
    ("no_root", "data.root"),
])
def test_clear_errors_with_exit_2(case, message, tmp_path, capsys):
    root = tmp_path / "images"
    root.mkdir()
    args = ["--set", f"data.root={root}"]
    if case == "all_broken":
        (root / "a.png").write_bytes(b"\x89PNG garbage")
        (root / "b.jpg").write_bytes(b"")
    if case in ("bad_size", "bad_channels"):
        write_images(root)
        args += ["--set", "data.size=2" if case == "bad_size" else "data.channels=2"]
    if case == "no_root":
        args = []
    code = main(["run", "--data", "folder", *args, "--steps", "1", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err, err
    with pytest.raises(DataError):
        ImageFolder(**({"root": str(root)} if case != "no_root" else {}),
                    **({"size": 2} if case == "bad_size" else {}),
                    **({"channels": 2} if case == "bad_channels" else {}))


def test_train_and_sample_from_a_folder_through_the_command(tmp_path, capsys):
    write_images(tmp_path / "images", n_per_class=20)
    out = tmp_path / "run"
    code = main(["run", "--data", "folder", "--set", f"data.root={tmp_path / 'images'}", "--set", "data.size=16",
                 "--steps", "6", "--batch-size", "8", "--out", str(out), "--threads", "1",
                 "--set", "gen.hidden=32", "--set", "disc.hidden=32"])
    assert code == 0
    assert "41 images from" in capsys.readouterr().err
    assert main(["sample", str(out), "-n", "4", "-o", str(tmp_path / "x.png")]) == 0
    with Image.open(tmp_path / "x.png") as picture:
        assert picture.size[0] > 16
