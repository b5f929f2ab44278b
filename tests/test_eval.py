"""ganforge eval end to end, the shipped extractor, and --eval-every during training."""

from __future__ import annotations

import json

import pytest
import torch

from ganforge.cli.main import main
from ganforge.errors import ConfigError
from ganforge.metrics.lenet import DIGIT_READER, FEATURES, RECORD, WEIGHTS_DIR, LeNetExtractor

SMALL = ["--set", "gen.hidden=32,32", "--set", "disc.hidden=32,32", "--z-dim", "4"]


def test_shipped_extractor_is_accurate_on_held_out_digits():
    from ganforge.data.mnist import MNIST

    record = json.loads(RECORD.read_text())
    assert record["test_accuracy"] >= 0.96
    data = MNIST(root=None)
    probs = LeNetExtractor().probabilities(data.test)
    accuracy = (probs.argmax(1) == data.test_labels).float().mean().item()
    assert accuracy == pytest.approx(record["test_accuracy"], abs=1e-6)


def test_stacked_modes_digit_reader_is_accurate_on_the_bundled_held_out_digits():
    """The reader was trained on all of MNIST but those 1,000 digits: its recorded accuracy on them
    must be what it scores now, and better than the extractor trained on 4,000 digits."""
    from ganforge.data.mnist import MNIST

    record = json.loads((WEIGHTS_DIR / f"{DIGIT_READER}.json").read_text())
    assert record["test_accuracy"] >= 0.99 and record["n_train"] == 59_000
    data = MNIST(root=None)
    probs = LeNetExtractor(shipped=DIGIT_READER).probabilities(data.test)
    accuracy = (probs.argmax(1) == data.test_labels).float().mean().item()
    assert accuracy == pytest.approx(record["bundled_held_out_accuracy"], abs=1e-6)
    assert accuracy > json.loads(RECORD.read_text())["test_accuracy"]


@pytest.mark.parametrize("shipped", [FEATURES, DIGIT_READER])
def test_damaged_extractor_weights_are_refused(tmp_path, monkeypatch, shipped):
    import shutil

    import ganforge.metrics.lenet as lenet

    data = bytearray((WEIGHTS_DIR / f"{shipped}.safetensors").read_bytes())
    data[-1] ^= 1
    (tmp_path / f"{shipped}.safetensors").write_bytes(bytes(data))
    shutil.copy(WEIGHTS_DIR / f"{shipped}.json", tmp_path)
    monkeypatch.setattr(lenet, "WEIGHTS_DIR", tmp_path)
    with pytest.raises(ConfigError, match="SHA-256"):
        LeNetExtractor(shipped=shipped)
    with pytest.raises(ConfigError, match="not found"):
        LeNetExtractor(weights=str(tmp_path / "absent.safetensors"))


def test_eval_on_a_grid25_run_prints_modes(tmp_path, capsys):
    out = tmp_path / "g"
    assert main(["run", "--data", "grid25", "--steps", "30", "--out", str(out), *SMALL]) == 0
    assert main(["eval", str(out), "--json", str(tmp_path / "m.json")]) == 0
    printed = capsys.readouterr().out
    assert "modes captured" in printed and "high-quality %" in printed and "reverse KL" in printed
    assert "  modes: PacGAN's 2-D tables (Lin et al. 2018)" in printed and "features:" not in printed
    numbers = json.loads((tmp_path / "m.json").read_text())
    assert numbers["n_fake"] == 2500 and 0 <= numbers["metrics"]["modes"] <= 25
    assert numbers["real_vs_real"]["coverage"] > 0.9


def test_eval_on_an_mnist_run_prints_every_image_metric(tmp_path, capsys):
    out = tmp_path / "m"
    assert main(["run", "--steps", "5", "--out", str(out), *SMALL]) == 0
    assert main(["eval", str(out), "-n", "600", "--json", str(tmp_path / "m.json")]) == 0
    printed = capsys.readouterr().out
    for label in ("FID", "KID", "IS", "precision", "recall", "density", "coverage", "real vs real"):
        assert label in printed
    numbers = json.loads((tmp_path / "m.json").read_text())
    assert numbers["real_vs_real"]["fid"] < numbers["metrics"]["fid"]


def test_eval_is_deterministic_given_a_seed(tmp_path):
    out = tmp_path / "r"
    assert main(["run", "--data", "ring8", "--steps", "10", "--out", str(out), *SMALL]) == 0
    for name in ("a", "b"):
        assert main(["eval", str(out), "--seed", "4", "--json", str(tmp_path / f"{name}.json")]) == 0
    assert json.loads((tmp_path / "a.json").read_text()) == json.loads((tmp_path / "b.json").read_text())


def test_eval_gives_the_same_numbers_at_one_and_two_threads_and_gives_torch_its_count_back(tmp_path):
    out = tmp_path / "r"
    assert main(["run", "--data", "ring8", "--steps", "10", "--out", str(out), *SMALL]) == 0
    before = torch.get_num_threads()
    for n in (1, 2):
        assert main(["eval", str(out), "--threads", str(n), "--json", str(tmp_path / f"{n}.json")]) == 0
        assert torch.get_num_threads() == before
    assert json.loads((tmp_path / "1.json").read_text()) == json.loads((tmp_path / "2.json").read_text())


@pytest.mark.parametrize("value", ["many", "0.5", "-2"])
def test_eval_threads_nonsense_exits_2_naming_the_option(value, tmp_path, capsys):
    assert main(["eval", str(tmp_path), "--threads", value]) == 2
    err = capsys.readouterr().err
    assert "argument --threads: must be 'auto' or a number of threads" in err and "Traceback" not in err


def test_unknown_metric_exits_2(tmp_path, capsys):
    assert main(["eval", str(tmp_path), "--metric", "fdi"]) == 2
    assert "Did you mean 'fid'" in capsys.readouterr().err


def test_eval_every_appends_quality_to_metrics_jsonl(tmp_path):
    out = tmp_path / "e"
    assert main(["run", "--data", "ring8", "--steps", "20", "--eval-every", "10", "--eval-metric", "modes",
                 "--eval-samples", "500", "--out", str(out), *SMALL]) == 0
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in rows if "eval/modes" in r]
    assert [r["step"] for r in evals] == [10, 20]
    assert (out / "losses.png").is_file()


def test_metric_options_reach_their_metric_and_typos_are_named(tmp_path, capsys):
    """``--set metric.NAME.KEY=VALUE`` changes that metric's result; an unknown key names the
    metric and its parameters; an option without a metric name says how to write it."""
    import json

    from ganforge.cli.main import main

    out = tmp_path / "r"
    assert main(["run", "--data", "ring8", "--steps", "20", "--out", str(out), "--threads", "1",
                 "--set", "gen.hidden=16", "--set", "disc.hidden=16", "--sample-every", "0"]) == 0
    results = {}
    for sigma in ("3", "30"):
        assert main(["eval", str(out), "--metric", "modes", "--set", f"metric.modes.n_sigma={sigma}",
                     "--json", str(tmp_path / f"{sigma}.json")]) == 0
        results[sigma] = json.loads((tmp_path / f"{sigma}.json").read_text())["metrics"]["high_quality"]
    assert results["30"] > results["3"]
    capsys.readouterr()
    assert main(["eval", str(out), "--metric", "modes", "--set", "metric.modes.bogus=1"]) == 2
    assert "'modes' does not accept" in capsys.readouterr().err
    assert main(["eval", str(out), "--metric", "modes", "--set", "metric.n_sigma=1"]) == 2
    assert "metric.modes.n_sigma" in capsys.readouterr().err


def _train_with_plugin_metric(metric, tmp_path, monkeypatch, capsys):
    """A tiny ring8 run with ``metric`` registered by a plugin as ``spread``; its folder."""
    import ganforge.plugins as plugins
    from ganforge import hookimpl
    from ganforge.cli.main import main

    real_get = plugins.get_plugin_manager

    class SpreadPlugin:
        @hookimpl
        def ganforge_register_metrics(self, register):
            register("spread", metric, "std of fakes over std of reals")

    monkeypatch.setattr(plugins, "get_plugin_manager", lambda **kw: real_get(**{**kw, "extra": [SpreadPlugin()]}))
    out = tmp_path / "r"
    assert main(["run", "--data", "ring8", "--steps", "5", "--out", str(out), "--threads", "1",
                 "--set", "gen.hidden=8", "--set", "disc.hidden=8", "--sample-every", "0"]) == 0
    capsys.readouterr()
    return out


def test_a_plugin_metric_runs_by_default_and_shows_in_eval(tmp_path, capsys, monkeypatch):
    """Whether a metric runs by default is the metric's property, whoever registered it."""
    from ganforge.cli.main import main
    from ganforge.metrics.base import Metric

    class Spread(Metric):
        modalities = ("points",)
        needs_features = False

        def compute(self, data):
            return {"spread_ratio": float(data.fake.std() / data.real.std())}

    out = _train_with_plugin_metric(Spread, tmp_path, monkeypatch, capsys)
    assert main(["eval", str(out)]) == 0
    shown = capsys.readouterr().out
    assert "spread_ratio" in shown and "modes captured" in shown


def test_eval_says_which_metrics_do_not_apply_and_why(tmp_path, capsys):
    import numpy as np
    from PIL import Image

    from ganforge.cli.main import main

    (tmp_path / "img").mkdir()
    for i in range(20):
        Image.fromarray(np.random.default_rng(i).integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(
            tmp_path / "img" / f"{i}.png")
    out = tmp_path / "r"
    assert main(["run", "--data", "folder", "--set", f"data.root={tmp_path / 'img'}", "--set", "data.size=8",
                 "--steps", "2", "--batch-size", "4", "--out", str(out), "--set", "gen.hidden=8",
                 "--set", "disc.hidden=8"]) == 0
    capsys.readouterr()
    assert main(["eval", str(out), "-n", "20"]) == 0  # SWD reads any image
    captured = capsys.readouterr()
    assert "SWD" in captured.out
    assert "not computed:" in captured.out + captured.err and "legible" in captured.out + captured.err


def test_a_plugin_metric_chooses_its_label_and_format(tmp_path, capsys, monkeypatch):
    """A metric's display is its own: ganforge eval shows the plugin's label and text."""
    from ganforge.cli.main import main
    from ganforge.metrics.base import Metric

    class Spread(Metric):
        modalities = ("points",)
        needs_features = False
        labels = {"spread_ratio": "spread of fakes / reals"}

        def compute(self, data):
            return {"spread_ratio": float(data.fake.std() / data.real.std()), "spread_help": 1.0}

        def format(self, values, *, spread=True):
            return {"spread_ratio": f"{100 * values['spread_ratio']:.1f} per cent"}

    out = _train_with_plugin_metric(Spread, tmp_path, monkeypatch, capsys)
    assert main(["eval", str(out), "--metric", "spread", "--json", str(tmp_path / "m.json")]) == 0
    shown = capsys.readouterr().out
    assert "spread of fakes / reals" in shown and "per cent" in shown and "spread_help" not in shown
    assert json.loads((tmp_path / "m.json").read_text())["metrics"]["spread_help"] == 1.0  # the numbers stay whole


# -- the feature space each number is computed in ----------------------------------------------

def _colour_squares(folder, size: int, n: int = 40) -> None:
    """``n`` colour PNGs of ``size`` pixels: a square of one colour on a background of another."""
    import numpy as np
    from PIL import Image

    folder.mkdir()
    rng = np.random.default_rng(size)
    for i in range(n):
        image = np.empty((size, size, 3), np.uint8)
        image[:] = rng.integers(0, 120, 3)
        side = size // 3
        y, x = rng.integers(0, size - side, 2)
        image[y: y + side, x: x + side] = rng.integers(120, 256, 3)
        Image.fromarray(image).save(folder / f"{i}.png")


@pytest.mark.parametrize("size", [32, 64])
def test_eval_on_colour_images_computes_fid_kid_prdc_in_random_features(tmp_path, capsys, size):
    """A folder of colour images has no trained extractor: FID, KID and PRDC are computed in the
    random-conv space, with their real-vs-real floor and the line that says what they compare
    with; IS and the legible share, which need a classifier, are left out with the reason."""
    _colour_squares(tmp_path / "img", size)
    out = tmp_path / "r"
    assert main(["run", "--data", "folder", "--set", f"data.root={tmp_path / 'img'}", "--set", f"data.size={size}",
                 "--steps", "3", "--batch-size", "8", "--out", str(out), "--threads", "1", "--sample-every", "0",
                 "--set", "gen.hidden=16", "--set", "disc.hidden=16"]) == 0
    capsys.readouterr()
    assert main(["eval", str(out), "-n", "100", "--json", str(tmp_path / "m.json")]) == 0
    printed = capsys.readouterr().out
    for label in ("FID", "KID", "precision", "recall", "density", "coverage", "real vs real", "SWD (x1e3"):
        assert label in printed
    assert "features: random-conv (Untrained conv net" in printed
    assert "comparable with\n  fid, kid, prdc: ganforge runs only (same data, -n 100, extractor random-conv)" in printed
    assert "not computed: is, legible: needs class probabilities; extractor random-conv gives features only" in printed
    numbers = json.loads((tmp_path / "m.json").read_text())
    assert numbers["extractor"] == "random-conv" and "Naeem" in numbers["extractor_description"]
    assert numbers["comparable"]["prdc"] == "ganforge runs only (same data, -n 100, extractor random-conv)"
    assert numbers["metric_keys"]["prdc"] == ["precision", "recall", "density", "coverage"]
    assert "class probabilities" in numbers["skipped"]["is"] and "is" not in numbers["metrics"]
    assert numbers["real_vs_real"]["fid"] < numbers["metrics"]["fid"]
    assert numbers["real_vs_real"]["coverage"] > numbers["metrics"]["coverage"]
    levels = [key for key in numbers["metrics"] if key.startswith("swd_")]  # 32 and 16 px, or 64, 32, 16
    assert len(levels) == {32: 2, 64: 3}[size] and 0 < numbers["real_vs_real"]["swd"] < numbers["metrics"]["swd"]
    assert main(["eval", str(out), "-n", "100", "--set", "metric.extractor=lenet-mnist"]) == 2
    assert "expects samples of shape (1, 28, 28), the data has (3, " in capsys.readouterr().err


def test_mnist_keeps_lenet_and_metric_extractor_picks_random_features(tmp_path, capsys):
    """LeNet stays the default for (1, 28, 28) digits (the numbers do not move); --set
    metric.extractor=random-conv computes in random features, where IS cannot be computed."""
    out = tmp_path / "m"
    assert main(["run", "--steps", "3", "--out", str(out), "--threads", "1", "--sample-every", "0", *SMALL]) == 0
    results = {}
    for name, extra in (("default", []), ("lenet", ["--set", "metric.extractor=lenet-mnist"]),
                        ("random", ["--set", "metric.extractor=random-conv"])):
        capsys.readouterr()
        assert main(["eval", str(out), "-n", "300", "--metric", "fid", "--metric", "prdc", "--metric", "is", *extra,
                     "--json", str(tmp_path / f"{name}.json")]) == (2 if name == "random" else 0)
        if name == "random":
            assert "class probabilities" in capsys.readouterr().err
            continue
        assert "features: lenet-mnist" in capsys.readouterr().out
        results[name] = json.loads((tmp_path / f"{name}.json").read_text())
    assert results["default"]["metrics"] == results["lenet"]["metrics"]
    assert results["default"]["extractor"] == "lenet-mnist"
    assert results["default"]["comparable"]["is"] == "ganforge runs only (same data, -n 300, extractor lenet-mnist)"
    assert main(["eval", str(out), "-n", "300", "--metric", "fid", "--set", "metric.extractor=random-conv",
                 "--json", str(tmp_path / "random.json")]) == 0
    random = json.loads((tmp_path / "random.json").read_text())
    assert random["extractor"] == "random-conv" and random["metrics"]["fid"] != results["default"]["metrics"]["fid"]


def test_images_smaller_than_any_extractor_reads_say_so(tmp_path, registry):
    from ganforge.data.folder import ImageFolder
    from ganforge.metrics.evaluate import default_metrics

    _colour_squares(tmp_path / "img", 12, n=10)
    skipped: dict[str, str] = {}
    names = default_metrics(registry, ImageFolder(root=str(tmp_path / "img"), size=4), {}, skipped)
    assert "fid" not in names and "prdc" not in names
    assert skipped["fid"].startswith("needs a feature extractor for images of shape (3, 4, 4)")
    assert "at least 8x8 pixels (random-conv)" in skipped["fid"]


def test_eval_on_a_stacked_mnist_run_prints_modes_kl_and_their_floors(tmp_path, capsys, monkeypatch):
    """The mode count, KL and N beside their real-stack floor, the classifier's accuracy on real
    stacks as a row of its own, SWD beside them, and what the numbers compare with; asked alone,
    stacked-modes draws no real reference set (it reads only the fakes)."""
    from ganforge.data.stacked_mnist import StackedMNIST

    out = tmp_path / "s"
    assert main(["run", "--data", "stacked-mnist", "--steps", "3", "--out", str(out), *SMALL]) == 0
    assert main(["eval", str(out), "-n", "500", "--json", str(tmp_path / "s.json")]) == 0
    printed = capsys.readouterr().out
    for label in ("stacked-MNIST modes", "KL(modes || uniform)", "samples counted",
                  "classifier accuracy (real digits)", "SWD", "of it: the channels' digit shares",
                  "of it: dependence between channels", "rarest digit's share"):
        assert label in printed
    assert "stacked-modes: PacGAN's Table 2" in printed
    numbers = json.loads((tmp_path / "s.json").read_text())
    floor = numbers["real_vs_real"]
    assert 300 < floor["modes"] <= 500 and floor["kl"] < numbers["metrics"]["kl"]
    # three steps of training cover far fewer modes than 500 real stacks do
    assert numbers["metrics"]["modes"] < floor["modes"] and numbers["metrics"]["n"] == 500
    assert floor["classifier_accuracy"] > 0.95
    for values in (numbers["metrics"], floor):  # the KL's two parts, each beside its floor
        assert values["kl_channels"] + values["kl_dependence"] == pytest.approx(values["kl"], rel=1e-9)

    def no_reference(*args, **kwargs):
        raise AssertionError("stacked-modes reads no real reference set")

    monkeypatch.setattr(StackedMNIST, "real_samples", no_reference)
    assert main(["eval", str(out), "-n", "500", "--metric", "stacked-modes"]) == 0
    title = capsys.readouterr().out.split("┏")[0]  # the table's title, wrapped to the terminal
    assert "500 generated" in title and "real" not in title
