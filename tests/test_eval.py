"""ganforge eval end to end, the shipped extractor, and --eval-every during training."""

from __future__ import annotations

import json

import pytest

from ganforge.cli.main import main
from ganforge.errors import ConfigError
from ganforge.metrics.lenet import RECORD, LeNetExtractor

SMALL = ["--set", "gen.hidden=32,32", "--set", "disc.hidden=32,32", "--z-dim", "4"]


def test_shipped_extractor_is_accurate_on_held_out_digits():
    from ganforge.data.mnist import MNIST

    record = json.loads(RECORD.read_text())
    assert record["test_accuracy"] >= 0.96
    data = MNIST(root=None)
    probs = LeNetExtractor().probabilities(data.test)
    accuracy = (probs.argmax(1) == data.test_labels).float().mean().item()
    assert accuracy == pytest.approx(record["test_accuracy"], abs=1e-6)


def test_damaged_extractor_weights_are_refused(tmp_path, monkeypatch):
    import ganforge.metrics.lenet as lenet

    bad = tmp_path / "lenet_mnist.safetensors"
    data = bytearray(lenet.WEIGHTS.read_bytes())
    data[-1] ^= 1
    bad.write_bytes(bytes(data))
    monkeypatch.setattr(lenet, "WEIGHTS", bad)
    with pytest.raises(ConfigError, match="SHA-256"):
        LeNetExtractor()
    with pytest.raises(ConfigError, match="not found"):
        LeNetExtractor(weights=str(tmp_path / "absent.safetensors"))


def test_eval_on_a_grid25_run_prints_modes(tmp_path, capsys):
    out = tmp_path / "g"
    assert main(["run", "--data", "grid25", "--steps", "30", "--out", str(out), *SMALL]) == 0
    assert main(["eval", str(out), "--json", str(tmp_path / "m.json")]) == 0
    printed = capsys.readouterr().out
    assert "modes captured" in printed and "high-quality %" in printed and "reverse KL" in printed
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
