"""Learning-rate schedules: the formulas, and that the trainer applies them to both optimisers."""

from __future__ import annotations

import math

import pytest

from ganforge import RunConfig
from ganforge.errors import ConfigError
from ganforge.train.schedules import lr_factor


def test_factors_follow_the_published_formulas():
    assert [lr_factor("constant", s, 10) for s in (0, 5, 9)] == [1.0, 1.0, 1.0]
    assert [lr_factor("linear", s, 10) for s in (0, 5, 10)] == [1.0, 0.5, 0.0]
    assert lr_factor("cosine", 0, 10) == 1.0 and math.isclose(lr_factor("cosine", 5, 10), 0.5)
    assert math.isclose(lr_factor("cosine", 10, 10), 0.0, abs_tol=1e-12)
    # warm-up: linear rise over 4 steps, then the decay runs over the remaining 8
    assert [lr_factor("linear", s, 12, warmup=4) for s in (0, 1, 3)] == [0.25, 0.5, 1.0]
    assert lr_factor("linear", 8, 12, warmup=4) == 0.5


def test_trainer_sets_both_learning_rates_each_step(small_config, make_trainer):
    config = small_config(steps=10, batch_size=16, z_dim=2, lr_g=1e-3, lr_d=4e-3, lr_schedule="linear", warmup=2,
                          log_every=100, sample_every=0, ckpt_every=0, hidden=(8,))
    trainer = make_trainer(config)
    trainer.start()
    seen = []
    for _ in range(10):
        trainer.train(1)
        seen.append((trainer.opt_g.param_groups[0]["lr"], trainer.opt_d.param_groups[0]["lr"]))
    trainer.stop()
    for step, (g, d) in enumerate(seen):
        f = lr_factor("linear", step, 10, 2)
        assert math.isclose(g, 1e-3 * f) and math.isclose(d, 4e-3 * f)


@pytest.mark.parametrize("kwargs, message", [({"lr_schedule": "step"}, "--lr-schedule must be"),
                                             ({"warmup": -1}, "--warmup must be")])
def test_bad_schedule_settings_are_refused(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        RunConfig(**kwargs).validate()
