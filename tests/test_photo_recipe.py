"""The photo recipes (``photos64``, ``photos32``): listed, resolved on top of ``--data folder``,
a clear message without a folder, a few training steps on a tiny folder of PNGs, evaluation
against a held-out folder, and the crop script of benchmarks/photo_crops.py."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ganforge.cli.main import main

ROOT = Path(__file__).resolve().parents[1]
RECIPES = {"photos64": 64, "photos32": 32}


def _args(*argv):
    from ganforge.cli.main import build_parser

    return build_parser().parse_args(["run", *argv])


def write_pngs(root: Path, n: int = 24, seed: int = 0) -> Path:
    """``n`` small colour PNGs of assorted sizes: smooth gradients plus noise."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True)
    for i in range(n):
        h, w = int(rng.integers(40, 90)), int(rng.integers(40, 90))
        ramp = np.linspace(0, 1, w)[None, :, None] * rng.uniform(0, 255, (1, 1, 3))
        array = np.clip(ramp + rng.normal(0, 20, (h, w, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(array).save(root / f"{i:03d}.png")
    return root


@pytest.mark.parametrize("name", list(RECIPES))
def test_photo_recipes_are_listed_and_resolve_on_the_folder_data(name, registry, capsys):
    from ganforge.cli.run import config_from_args

    comp = registry.get("recipe", name)
    assert comp.provider.plugin == "ganforge.recipes" and "photos" in comp.description
    config = config_from_args(_args("--recipe", name, "--set", "data.root=DIR"), registry)
    assert (config.data, config.gen, config.disc, config.loss) == ("folder", "dcgan", "dcgan", "nonsat")
    assert config.options["data"] == {"size": RECIPES[name], "channels": 3, "root": "DIR"}
    assert config.options["loss"]["r1"] > 0 and config.ema > 0 and config.augment_p == "ada"
    assert set(config.augment) == {"translation", "color", "cutout"}
    # --data folder on top, as the README writes it, changes nothing
    on_top = config_from_args(_args("--recipe", name, "--data", "folder", "--set", "data.root=DIR"), registry)
    assert on_top == config
    assert main(["list", "--kind", "recipe"]) == 0
    assert name in capsys.readouterr().out


def test_a_photo_recipe_without_a_folder_says_how_to_give_one(tmp_path, capsys):
    assert main(["run", "--recipe", "photos64", "--steps", "1", "--out", str(tmp_path / "run")]) == 2
    assert "--set data.root=DIR" in capsys.readouterr().err


@pytest.mark.parametrize("name", list(RECIPES))
def test_photo_recipes_train_a_few_steps_on_a_tiny_folder(name, tmp_path):
    data = write_pngs(tmp_path / "photos")
    out = tmp_path / "run"
    assert main(["run", "--recipe", name, "--set", f"data.root={data}", "--steps", "2", "--batch-size", "4",
                 "--threads", "1", "--out", str(out)]) == 0
    size = RECIPES[name]
    config = json.loads((out / "config.json").read_text())
    assert config["data_info"]["sample_shape"] == [3, size, size]
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert lines[-1]["step"] == 2 and "augment_p" in lines[-1]
    with Image.open(out / "samples" / "step_0000002.png") as picture:
        assert picture.mode == "RGB"


def test_eval_compares_with_a_held_out_folder(tmp_path, capsys):
    train, heldout = write_pngs(tmp_path / "train"), write_pngs(tmp_path / "heldout", n=20, seed=1)
    out = tmp_path / "run"
    assert main(["run", "--recipe", "photos32", "--set", f"data.root={train}", "--steps", "1", "--batch-size",
                 "4", "--threads", "1", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["eval", str(out), "-n", "40", "--metric", "swd", "--set", f"data.root={heldout}",
                 "--json", str(tmp_path / "m.json")]) == 0
    assert f"real data: 20 images from {heldout}" in capsys.readouterr().out
    result = json.loads((tmp_path / "m.json").read_text())
    assert result["n_real"] == 20 and result["metrics"]["swd"] > 0
    # the reference must have the run's shape
    assert main(["eval", str(out), "-n", "40", "--metric", "swd", "--set", f"data.root={heldout}",
                 "--set", "data.size=16"]) == 2
    assert "keep data.size" in capsys.readouterr().err
    assert main(["eval", str(out), "--set", "gen.width=3"]) == 2


def test_the_crop_script_writes_what_it_says(tmp_path):
    pytest.importorskip("skimage")
    spec = importlib.util.spec_from_file_location("photo_crops", ROOT / "benchmarks" / "photo_crops.py")
    assert spec is not None and spec.loader is not None
    crops = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(crops)

    photos = crops.load_photos()
    assert set(photos) == set(crops.PHOTOS)
    for photo in photos.values():
        assert photo.ndim == 3 and photo.shape[2] == 3 and photo.dtype == np.uint8
        parts = crops.regions(photo)
        # the two regions split the width: no pixel is in both
        assert parts["train"].shape[1] + parts["heldout"].shape[1] == photo.shape[1]
        assert parts["heldout"].shape[1] >= crops.MAX_SIDE
    n_photos = len(crops.PHOTOS)
    assert crops.main([str(tmp_path), "--train", str(2 * n_photos + 1), "--heldout", str(n_photos),
                       "--sizes", "32,16"]) == 0
    for size in (32, 16):
        train = sorted((tmp_path / str(size) / "train").glob("*.png"))
        heldout = sorted((tmp_path / str(size) / "heldout").glob("*.png"))
        assert (len(train), len(heldout)) == (2 * n_photos + 1, n_photos)
        with Image.open(train[0]) as image:
            assert image.size == (size, size) and image.mode == "RGB"
        assert {p.name.rsplit("_", 1)[0] for p in heldout} == set(crops.PHOTOS)  # one from each photo
