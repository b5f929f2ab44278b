"""The legible metric: against a plain loop on fresh random probabilities, at its bounds, on real
digits through the shipped classifier, and through `ganforge eval`."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ganforge.cli.main import main
from ganforge.errors import ConfigError
from ganforge.metrics.builtin_metrics import Legible
from ganforge.metrics.legibility import legibility


def loop_reference(probs: np.ndarray, confidence: float, min_share: float) -> dict[str, float]:
    counts = [0] * probs.shape[1]
    legible = 0
    for row in probs:
        best = max(range(len(row)), key=lambda k: row[k])
        if row[best] >= confidence:
            legible += 1
            counts[best] += 1
    shares = [c / legible if legible else 0.0 for c in counts]
    return {"legible": legible / len(probs), "classes": sum(s >= min_share for s in shares),
            "rarest_class": min(shares)}


def test_matches_a_plain_loop_on_fresh_probabilities():
    rng = np.random.default_rng()
    for _ in range(5):
        n, k = rng.integers(50, 2000), rng.integers(2, 12)
        probs = rng.dirichlet(np.full(k, rng.uniform(0.05, 1.0)), size=n)
        confidence, min_share = rng.uniform(0.3, 0.99), rng.uniform(0, 0.3)
        ours = legibility(probs, confidence, min_share)
        reference = loop_reference(probs, confidence, min_share)
        assert ours == pytest.approx(reference, abs=1e-12)


def test_bounds():
    confident_uniform = np.eye(10).repeat(100, axis=0)
    assert legibility(confident_uniform) == {"legible": 1.0, "classes": 10.0, "rarest_class": 0.1}
    one_class = np.zeros((1000, 10))
    one_class[:, 3] = 1
    assert legibility(one_class) == {"legible": 1.0, "classes": 1.0, "rarest_class": 0.0}
    unsure = np.full((1000, 10), 0.1)
    assert legibility(unsure) == {"legible": 0.0, "classes": 0.0, "rarest_class": 0.0}


def test_real_digits_through_the_shipped_classifier_are_legible_in_every_class():
    from ganforge.data.mnist import MNIST
    from ganforge.metrics.lenet import LeNetExtractor

    out = legibility(LeNetExtractor().probabilities(MNIST(root=None).test))
    assert out["legible"] > 0.9 and out["classes"] == 10 and out["rarest_class"] > 0.05


@pytest.mark.parametrize("option, value", [("confidence", 0), ("confidence", 1.5), ("min_share", -0.1),
                                           ("min_share", "a"), ("confidence", True)])
def test_bad_options_name_the_option(option, value):
    with pytest.raises(ConfigError,
                       match=rf"metric\.legible\.{option} must be a probability.*--set metric\.legible\.{option}="):
        Legible(**{option: value})


def test_eval_reports_it_with_the_real_digits_ceiling(tmp_path):
    run = str(tmp_path / "run")
    small = ["--set", "gen.hidden=32,32", "--set", "disc.hidden=32,32", "--z-dim", "4"]
    assert main(["run", "--data", "mnist", "--steps", "2", "--batch-size", "16", "--out", run, *small]) == 0
    out = tmp_path / "eval.json"
    assert main(["eval", run, "-n", "200", "--metric", "legible", "--set", "metric.legible.confidence=0.5",
                 "--json", str(out)]) == 0
    record = json.loads(out.read_text())
    assert set(record["metrics"]) == {"legible", "classes", "rarest_class"}
    assert record["real_vs_real"]["legible"] > 0.9 and record["real_vs_real"]["classes"] == 10
