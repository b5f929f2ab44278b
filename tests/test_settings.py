"""The settings table is the one source: flags, checks, both configs and the docs agree with it."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

from ganforge.config import ResolvedConfig, RunConfig, load_toml
from ganforge.errors import ConfigError, PluginError
from ganforge.settings import SETTING, SETTINGS, configuration_page

ROOT = Path(__file__).resolve().parents[1]


def _help() -> str:
    import argparse

    from ganforge.cli.run import add_parser

    parser = argparse.ArgumentParser(prog="ganforge")
    add_parser(parser.add_subparsers())
    sub = parser._subparsers._group_actions[0].choices["run"]  # type: ignore[union-attr]
    return sub.format_help()


def test_run_config_and_resolved_config_have_exactly_the_tables_settings():
    names = [s.name for s in SETTINGS]
    assert [f.name for f in dataclasses.fields(RunConfig)] == [*names, "options"]
    assert [f.name for f in dataclasses.fields(ResolvedConfig)] == [*names, "options"]


def test_the_resolved_config_is_frozen_and_has_no_unset_values_that_always_have_one():
    config = RunConfig(data="ring8").resolved({"z_dim": 2})
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.steps = 3  # type: ignore[misc]
    unset_allowed = {"from_step", "recipe"}
    assert all(getattr(config, s.name) is not None for s in SETTINGS if s.name not in unset_allowed)
    assert config.z_dim == 2 and config.out.startswith("runs")


def test_the_docs_page_is_generated_from_the_table():
    page = (ROOT / "docs" / "configuration.md").read_text()
    assert page == configuration_page(), "regenerate: python -m ganforge.settings > docs/configuration.md"


def test_the_docs_table_and_run_help_name_the_same_flags():
    page = (ROOT / "docs" / "configuration.md").read_text()
    documented = set(re.findall(r"^\| `(--[a-z-]+)`", page, flags=re.MULTILINE))
    offered = set(re.findall(r"^  (--[a-z-]+)", _help(), flags=re.MULTILINE)) - {"--help"}
    assert documented == offered
    for setting in SETTINGS:  # every default the docs state is the one --help states
        if setting.option:
            row = next(line for line in page.splitlines() if line.startswith(f"| `{setting.option}`"))
            assert f"| {setting.describe_default()} |" in row


def test_the_precedence_is_stated_once_and_in_order():
    page = configuration_page()
    section = page[page.index("## Precedence"):page.index("## Settings")]
    layers = re.findall(r"^\d\. (.+?)(?: \(|;|:|,|$)", section, flags=re.MULTILINE)
    assert layers == ["ganforge's defaults", "the components' declared defaults", "a recipe",
                      "the `--config` TOML file", "command-line flags", "`--set SECTION.KEY=VALUE` options."]
    assert page.count("## Precedence") == 1


@pytest.mark.parametrize("value, expected", [("auto", 0), (0, 0), (2, 2), ("2", 2)])
def test_threads_follows_one_rule_in_toml_python_and_flags(value, expected, tmp_path, registry):
    from ganforge.cli.main import build_parser
    from ganforge.cli.run import config_from_args

    toml = tmp_path / "c.toml"
    toml.write_text(f"threads = {json.dumps(value)}\n")
    assert RunConfig.from_dict(load_toml(toml)).resolved({}).threads == expected
    assert RunConfig(threads=value).resolved({}).threads == expected
    args = build_parser().parse_args(["run", "--data", "ring8", "--threads", str(value)])
    assert config_from_args(args, registry).threads == expected


@pytest.mark.parametrize("value", ["many", -1, 10**6])
def test_threads_nonsense_is_refused_the_same_way_everywhere(value, tmp_path):
    toml = tmp_path / "c.toml"
    toml.write_text(f"threads = {json.dumps(value)}\n")
    for attempt in (lambda: load_toml(toml), lambda: RunConfig(threads=value).validate()):
        with pytest.raises(ConfigError, match="--threads must be 'auto' or a number of threads"):
            attempt()


def test_an_unknown_optimizer_is_refused_not_made_sgd():
    from torch import nn

    from ganforge.train.build import build_optimizer

    with pytest.raises(ConfigError, match="optimizer must be one of adam, rmsprop, sgd"):
        build_optimizer("adagrad", list(nn.Linear(2, 2).parameters()), 1e-3, (0.5, 0.999))
    with pytest.raises(ConfigError, match="optimizer"):
        RunConfig(optimizer="adagrad").resolved({})


def test_validate_runs_once_per_resolution(monkeypatch, registry):
    from ganforge import settings
    from ganforge.resolve import resolve_settings

    calls = []
    real = settings.validate
    monkeypatch.setattr(settings, "validate", lambda values: (calls.append(1), real(values)))
    config = resolve_settings({"data": "ring8"}, registry)
    assert len(calls) == 1
    assert resolve_settings(config, registry) is config and len(calls) == 1


def test_the_discriminator_fallback_is_the_tables_default(registry):
    from ganforge.resolve import resolve_settings

    assert SETTING["disc"].default == "mlp"
    registry.add("generator", "only-a-generator", lambda **kw: None)
    assert resolve_settings({"gen": "only-a-generator", "data": "ring8"}, registry).disc == "mlp"


def test_register_declares_run_defaults(plugin_manager):
    from ganforge import hookimpl
    from ganforge.data.mixtures import ring8
    from ganforge.plugins import build_registry
    from ganforge.resolve import resolve_settings

    class Tiny:
        @hookimpl
        def ganforge_register_datasets(self, register):
            register("tiny-ring", ring8, "ring8 in small batches", defaults={"batch_size": 8, "steps": 5})
            register("sloppy-ring", ring8, "a default no component may set", defaults={"seed": 3})

    plugin_manager.register(Tiny(), name="tiny")
    registry = build_registry(plugin_manager)
    config = resolve_settings({"data": "tiny-ring"}, registry)
    assert (config.batch_size, config.steps, config.z_dim) == (8, 5, 100)
    assert resolve_settings({"data": "tiny-ring", "steps": 7}, registry).steps == 7
    with pytest.raises(PluginError, match="tiny.*'seed'"):
        resolve_settings({"data": "sloppy-ring"}, registry)


def test_python_resumes_like_the_command_line(tmp_path, registry, plugin_manager):
    """A run started with a batch of 20 on ring8 and resumed from Python with only ``resume``,
    ``out`` and ``steps`` keeps its recorded settings, as ``ganforge run --resume`` does."""
    from ganforge.cli.main import main
    from ganforge.resolve import resolve_settings

    out = tmp_path / "r"
    assert main(["run", "--data", "ring8", "--steps", "2", "--batch-size", "20", "--threads", "1", "--out",
                 str(out), "--set", "gen.hidden=8", "--set", "disc.hidden=8", "--sample-every", "0"]) == 0
    config = resolve_settings(RunConfig(resume=True, out=str(out), steps=4), registry)
    assert (config.data, config.batch_size, config.steps, config.z_dim) == ("ring8", 20, 4, 2)
    assert config.options["gen"]["hidden"] == 8 and config.resume
    with pytest.raises(ConfigError, match="cannot change data"):
        resolve_settings(RunConfig(resume=True, out=str(out), data="grid25"), registry)
    from ganforge.resolve import resolve_settings as resolve_config

    assert resolve_config(RunConfig(resume=True, out=str(out), steps=4), registry) == config


def test_an_old_run_record_still_reads_and_resolves(registry):
    """Every key a run folder of the previous version recorded, as it recorded them."""
    old = {"gen": "mlp", "disc": "mlp", "loss": "nonsat", "data": "ring8", "steps": 4, "batch_size": 100,
           "z_dim": 2, "lr_g": 0.0002, "lr_d": 0.0002, "optimizer": "adam", "betas": [0.5, 0.999], "n_critic": 1,
           "ema": 0.999, "ema_rampup": 1.0, "lr_schedule": "constant", "warmup": 0, "on_nan": "stop",
           "precision": "fp32", "seed": 0, "device": "auto", "threads": 1, "out": "runs/x", "log_every": 100,
           "sample_every": 1000, "ckpt_every": 2000, "keep": 3, "eval_every": 0, "eval_metrics": [],
           "eval_samples": 2000, "resume": False, "from_step": None, "recipe": None,
           "options": {"gen": {"hidden": [8]}}}
    from ganforge.resolve import resolve_settings

    config = resolve_settings(RunConfig.from_dict(old), registry)
    assert config.betas == (0.5, 0.999) and config.options == {"gen": {"hidden": [8]}} and config.out == "runs/x"
    added = {"augment": [], "augment_p": 1.0, "augment_target": 0.6, "augment_ramp": 100_000,  # their defaults
             "thread_invariant": False}
    assert json.loads(json.dumps(config.to_dict())) == {**old, **added, "options": {"gen": {"hidden": [8]}}}
