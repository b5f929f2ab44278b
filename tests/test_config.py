"""RunConfig: precedence of defaults, loss defaults and user values; --set parsing."""

from __future__ import annotations

import pytest

from ganforge.config import RunConfig, apply_set, parse_value
from ganforge.errors import ConfigError


def test_loss_defaults_fill_only_unset_fields():
    c = RunConfig(lr_g=1e-3).resolved({"n_critic": 5, "lr_g": 5e-5, "lr_d": 5e-5, "optimizer": "rmsprop"})
    assert (c.n_critic, c.lr_g, c.lr_d, c.optimizer) == (5, 1e-3, 5e-5, "rmsprop")
    assert c.disc == c.gen == "mlp" and c.betas == (0.5, 0.999)


@pytest.mark.parametrize("text, value", [("256,512", (256, 512)), ("0.3", 0.3), ("7", 7), ("true", True),
                                         ("relu", "relu"), ("none", "none"), ("null", None),
                                         ("/data/mnist", "/data/mnist")])
def test_parse_value(text, value):
    assert parse_value(text) == value


def test_apply_set_nests_by_section():
    assert apply_set({}, ["gen.hidden=8,8", "data.root=/x"]) == {"gen": {"hidden": (8, 8)}, "data": {"root": "/x"}}


@pytest.mark.parametrize("kwargs, message", [({"steps": 0}, "--steps"), ({"batch_size": 0}, "--batch-size"),
                                             ({"optimizer": "adagrad"}, "optimizer"), ({"betas": (1.5, 0.9)}, "betas")])
def test_validation_names_the_flag(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        RunConfig(**kwargs).resolved({})


def test_unknown_keys_are_named():
    with pytest.raises(ConfigError, match="stepz"):
        RunConfig.from_dict({"stepz": 3})


def test_a_table_name_key_chooses_the_component(tmp_path):
    from ganforge.config import load_toml

    path = tmp_path / "c.toml"
    path.write_text('steps = 3\n[loss]\nname = "rpgan"\ngamma = 0.5\n[disc]\nhidden = [8]\n')
    raw = load_toml(path)
    assert raw["loss"] == "rpgan" and raw["steps"] == 3
    assert raw["options"] == {"loss": {"gamma": 0.5}, "disc": {"hidden": [8]}}


@pytest.mark.parametrize("values, message", [
    ({"steps": "abc"}, "config key 'steps' must be a number"),
    ({"betas": "ab"}, "config key 'betas' must be a list"),
    ({"betas": ["a", "b"]}, "two numbers"),
    ({"lr_g": "fast"}, "config key 'lr_g' must be a number"),
    ({"data": 3}, "config key 'data' must be a str"),
    ({"resume": "yes"}, "config key 'resume' must be a bool"),
    ({"steps": True}, "must be a number"),
])
def test_wrong_types_are_named(values, message):
    from ganforge.config import RunConfig

    with pytest.raises(ConfigError, match=message):
        RunConfig.from_dict(values)
