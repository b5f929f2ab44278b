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
