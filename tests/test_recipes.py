"""Recipes: shipped, named run configurations that flags, --config and --set still override."""

from __future__ import annotations

import json

import pytest

from ganforge import hookimpl
from ganforge.cli.main import main as run_cli
from ganforge.config import merge_settings


def _args(*argv):
    from ganforge.cli.main import build_parser

    return build_parser().parse_args(["run", *argv])


@pytest.mark.parametrize("name", ["mnist", "ring8", "grid25"])
def test_shipped_recipes_are_listed_and_resolve(name, registry):
    from ganforge.cli.run import config_from_args

    comp = registry.get("recipe", name)
    assert comp.description and comp.provider.plugin == "ganforge.recipes"
    config = config_from_args(_args("--recipe", name), registry)
    assert config.recipe == name and config.data == name


def test_flags_config_and_set_override_a_recipe(tmp_path, registry):
    from ganforge.cli.run import config_from_args

    toml = tmp_path / "c.toml"
    toml.write_text("steps = 7\n[disc]\nhidden = [32]\n")
    base = config_from_args(_args("--recipe", "grid25"), registry)
    config = config_from_args(_args("--recipe", "grid25", "--config", str(toml), "--batch-size", "10",
                                    "--set", "gen.hidden=16"), registry)
    assert (config.steps, config.batch_size) == (7, 10)
    assert config.options["disc"]["hidden"] == [32] and config.options["gen"]["hidden"] == 16
    # what the override did not touch stays the recipe's
    for key in ("lr_g", "lr_d", "ema", "loss"):
        assert getattr(config, key) == getattr(base, key)
    for key, value in base.options.get("disc", {}).items():
        if key != "hidden":
            assert config.options["disc"][key] == value


def test_the_mnist_recipe_averages_longer_and_the_flag_overrides_it(registry):
    """The demo's average (decay 0.9997, ``ema_rampup`` 4) comes from the recipe file; the
    command-line flag wins, as every flag does."""
    from ganforge.cli.run import config_from_args

    recipe = config_from_args(_args("--recipe", "mnist"), registry)
    assert (recipe.ema, recipe.ema_rampup) == (0.9997, 4)
    plain = config_from_args(_args("--recipe", "mnist", "--ema-rampup", "1", "--ema", "0.9995"), registry)
    assert (plain.ema, plain.ema_rampup) == (0.9995, 1.0)
    assert config_from_args(_args("--data", "ring8"), registry).ema_rampup == 1.0


def test_merge_settings_merges_option_tables_key_by_key():
    merged = merge_settings({"steps": 1, "options": {"disc": {"a": 1, "b": 2}}},
                            {"steps": 2, "options": {"disc": {"b": 3}, "gen": {"c": 4}}})
    assert merged == {"steps": 2, "options": {"disc": {"a": 1, "b": 3}, "gen": {"c": 4}}}


def test_unknown_recipe_is_a_usage_error(capsys):
    assert run_cli(["run", "--recipe", "grid52"]) == 2
    err = capsys.readouterr().err
    assert "grid25" in err and "Traceback" not in err


def test_a_plugin_can_ship_a_recipe(plugin_manager):
    from ganforge.plugins import build_registry

    class MyRecipes:
        @hookimpl
        def ganforge_register_recipes(self, register):
            register("tiny-ring", lambda: {"data": "ring8", "steps": 3}, "three steps of ring8")

    plugin_manager.register(MyRecipes())
    registry = build_registry(plugin_manager)
    assert registry.get("recipe", "tiny-ring").build() == {"data": "ring8", "steps": 3}


def test_recipe_run_records_the_recipe(tmp_path):
    out = tmp_path / "r"
    assert run_cli(["run", "--recipe", "ring8", "--steps", "5", "--out", str(out)]) == 0
    record = json.loads((out / "config.json").read_text())
    assert record["config"]["recipe"] == "ring8" and record["config"]["data"] == "ring8"


def test_the_stacked_mnist_recipe_trains_dcgan_with_packs(tmp_path, registry, capsys):
    """The recipe names its networks in its tables ([gen] name = "dcgan"), and a short run of it
    trains: unconditional (no class code in G, no classes in D), D scoring packs."""
    from ganforge.cli.run import config_from_args

    config = config_from_args(_args("--recipe", "stacked-mnist"), registry)
    assert (config.data, config.gen, config.disc, config.loss) == ("stacked-mnist", "dcgan", "dcgan", "nonsat")
    assert "classes" not in config.options["gen"] and config.options["disc"]["pack"] == 2
    assert config.steps == 45_000 and config.options["disc"]["hidden"] == 1024
    assert config.options["data"]["digits"] == 70_000  # all of MNIST, as the published rows
    assert (config.options["gen"]["width"], config.options["disc"]["width"], config.precision) == (64, 32, "auto")
    assert "classes" not in config.options["disc"] and config.lr_schedule == "cosine"
    out = tmp_path / "run"
    assert run_cli(["run", "--recipe", "stacked-mnist", "--steps", "2", "--threads", "1", "--out", str(out)]) == 0
    saved = json.loads((out / "config.json").read_text())["config"]
    assert saved["recipe"] == "stacked-mnist" and saved["options"]["disc"]["pack"] == 2
    printed = " ".join(capsys.readouterr().err.split())  # the console wraps long lines
    assert "data: stacks of 3 digits from 60,000 digits of MNIST as shipped" in printed
