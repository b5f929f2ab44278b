"""The plugin system: built-ins through hooks, third-party plugins, duplicates, broken plugins."""

from __future__ import annotations

import importlib.metadata as md
import sys
import types

import pytest
import torch

from ganforge import Trainer, hookimpl
from ganforge.errors import DuplicateComponentError, PluginError
from ganforge.losses import GanLoss
from ganforge.plugins import (
    DISABLE_ENV,
    STRICT_ENV,
    PluginLoadWarning,
    build_registry,
    get_plugin_manager,
    load_entry_points,
    new_plugin_manager,
)

BUILTINS = {
    "generator": {"mlp"}, "discriminator": {"mlp"},
    "loss": {"minimax", "nonsat", "wasserstein", "wgan-gp"},
    "dataset": {"mnist", "ring8", "grid25", "digits"},
}


def test_builtins_register_through_the_public_hooks(registry):
    for kind, names in BUILTINS.items():
        assert names <= set(registry.names(kind)), kind
    comp = registry.get("loss", "nonsat")
    assert comp.provider.plugin == "ganforge.builtin"
    assert comp.provider.distribution == "ganforge"
    assert comp.description


class HingeLossPlugin:
    """An in-test third-party plugin adding a loss, as a user's package would."""

    class Hinge(GanLoss):
        """Hinge loss (Lim & Ye 2017)."""

        def d_loss(self, real_logits, fake_logits):
            return torch.relu(1 - real_logits).mean() + torch.relu(1 + fake_logits).mean()

        def g_loss(self, fake_logits):
            return -fake_logits.mean()

    @hookimpl
    def ganforge_register_losses(self, register):
        register("hinge", self.Hinge)


def test_in_test_plugin_adds_a_loss_that_a_run_uses(tiny_points_config):
    pm = new_plugin_manager()
    pm.register(sys.modules["ganforge.builtin"])
    pm.register(HingeLossPlugin(), name="hinge-plugin")
    registry = build_registry(pm)
    assert registry.get("loss", "hinge").provider.plugin == "hinge-plugin"
    tiny_points_config.loss = "hinge"
    trainer = Trainer(tiny_points_config, registry=registry, plugin_manager=pm)
    run_dir = trainer.fit()
    assert trainer.step == tiny_points_config.steps
    assert (run_dir / "metrics.jsonl").read_text().count("\n") >= 1


def test_a_name_two_plugins_register_breaks_only_its_own_use(tmp_path):
    """Both are kept and listed; other components work; the bare name asks the user to choose
    naming both providers; ``name@provider`` picks one."""
    class Again:
        @hookimpl
        def ganforge_register_losses(self, register):
            register("nonsat", GanLoss, "a copy")

    pm = get_plugin_manager(entry_points=False)
    pm.register(Again(), name="copycat")
    registry = build_registry(pm)
    assert [c.provider.plugin for c in registry if c.kind == "loss" and c.name == "nonsat"] == \
        ["ganforge.builtin", "copycat"]
    assert registry.get("loss", "minimax").name == "minimax"
    with pytest.raises(DuplicateComponentError) as info:
        registry.get("loss", "nonsat")
    assert "nonsat@ganforge," in str(info.value) and "nonsat@copycat" in str(info.value)
    assert registry.get("loss", "nonsat@copycat").description == "a copy"
    assert registry.get("loss", "nonsat@ganforge.builtin").provider.plugin == "ganforge.builtin"
    assert ("loss", "nonsat@copycat") in registry and ("loss", "nonsat@nobody") not in registry


def test_a_clash_is_a_usage_error_only_for_the_command_that_uses_it(tmp_path, monkeypatch, capsys):
    import ganforge.plugins as plugins
    from ganforge.cli.main import main

    class Again:
        @hookimpl
        def ganforge_register_losses(self, register):
            register("nonsat", GanLoss, "a copy")

    real = plugins.get_plugin_manager
    monkeypatch.setattr(plugins, "get_plugin_manager", lambda **kw: real(**{**kw, "extra": [Again()]}))
    assert main(["list", "--kind", "loss"]) == 0
    assert main(["run", "--data", "ring8", "--loss", "minimax", "--steps", "2", "--out", str(tmp_path / "a"),
                 "--set", "gen.hidden=4", "--set", "disc.hidden=4", "--sample-every", "0"]) == 0
    capsys.readouterr()
    assert main(["run", "--data", "ring8", "--loss", "nonsat", "--steps", "2", "--out", str(tmp_path / "b")]) == 2
    assert "choose one" in capsys.readouterr().err
    assert main(["run", "--data", "ring8", "--loss", "nonsat@ganforge.builtin", "--steps", "2",
                 "--out", str(tmp_path / "c"), "--set", "gen.hidden=4", "--set", "disc.hidden=4",
                 "--sample-every", "0"]) == 0


class FakeDist:
    name, version = "ganforge-broken", "9.9"


def fake_entry_point(name: str, value: str) -> md.EntryPoint:
    ep = md.EntryPoint(name=name, value=value, group="ganforge")
    object.__setattr__(ep, "dist", FakeDist())  # EntryPoint is frozen; tests attach a distribution
    return ep


def test_entry_point_that_fails_to_import_warns_once_and_the_rest_works(monkeypatch):
    monkeypatch.delenv(STRICT_ENV, raising=False)
    good = types.ModuleType("ganforge_test_good_plugin")
    good.ganforge_register_losses = hookimpl(lambda register: register("good", GanLoss))
    monkeypatch.setitem(sys.modules, good.__name__, good)
    pm = get_plugin_manager(entry_points=False)
    eps = [fake_entry_point("broken", "ganforge_no_such_module_xyz"), fake_entry_point("good", good.__name__)]
    with pytest.warns(PluginLoadWarning) as record:
        load_entry_points(pm, eps)
    assert len(record) == 1
    text = str(record[0].message)
    assert "broken" in text and "ganforge-broken 9.9" in text and "ModuleNotFoundError" in text
    registry = build_registry(pm)
    assert "good" in registry.names("loss")
    assert registry.get("loss", "good").provider.distribution == "ganforge-broken"
    assert "nonsat" in registry.names("loss")


def test_strict_mode_turns_a_broken_plugin_into_an_error(monkeypatch):
    monkeypatch.setenv(STRICT_ENV, "1")
    pm = get_plugin_manager(entry_points=False)
    with pytest.raises(PluginError, match="broken"):
        load_entry_points(pm, [fake_entry_point("broken", "ganforge_no_such_module_xyz")])


def test_disable_switch_blocks_a_plugin(monkeypatch):
    monkeypatch.setenv(DISABLE_ENV, "broken")
    pm = get_plugin_manager(entry_points=False)
    load_entry_points(pm, [fake_entry_point("broken", "ganforge_no_such_module_xyz")])  # no warning: blocked
    assert not pm.has_plugin("broken")


def test_plugin_whose_registration_raises_is_isolated(monkeypatch):
    monkeypatch.delenv(STRICT_ENV, raising=False)

    class Exploding:
        @hookimpl
        def ganforge_register_losses(self, register):
            raise RuntimeError("boom")

    pm = get_plugin_manager(entry_points=False)
    pm.register(Exploding(), name="exploding")
    with pytest.warns(PluginLoadWarning, match="boom"):
        registry = build_registry(pm)
    assert "nonsat" in registry.names("loss")


def test_misspelled_hook_is_caught():
    class Typo:
        @hookimpl
        def ganforge_register_lossez(self, register):  # noqa: D401 - deliberately misspelled
            pass

    pm = new_plugin_manager()
    pm.register(Typo())
    with pytest.raises(Exception, match="lossez"):
        pm.check_pending()


def test_lifecycle_hooks_are_called_in_order(tiny_points_config):
    calls: list[str] = []

    class Recorder:
        @hookimpl
        def ganforge_on_train_start(self, run):
            calls.append("start")

        @hookimpl
        def ganforge_on_step_end(self, run, step, logs):
            calls.append(f"step{step}")

        @hookimpl
        def ganforge_on_checkpoint_saved(self, run, step, path):
            calls.append(f"ckpt{step}")
            assert (path / "manifest.json").is_file()

        @hookimpl
        def ganforge_on_train_end(self, run):
            calls.append("end")

    pm = get_plugin_manager(entry_points=False, extra=[Recorder()])
    Trainer(tiny_points_config, registry=build_registry(pm), plugin_manager=pm).fit()
    assert calls[0] == "start" and calls[1] == "step1"
    assert "ckpt10" in calls and calls.index("ckpt10") > calls.index("step10")
    assert calls[-2:] == ["ckpt30", "end"]


def test_step_hook_gets_each_steps_values_and_eval_hook_gets_results(tiny_points_config, make_trainer,
                                                                       plugin_manager):
    """Every step's own losses (not the last logged line), a ``logged`` flag that matches
    metrics.jsonl, and the evaluation results through ``ganforge_on_eval``."""
    from ganforge import hookimpl
    from ganforge.run.folder import read_metrics

    seen, evals = [], []

    class Recorder:
        @hookimpl
        def ganforge_on_step_end(self, run, step, logs, logged):
            seen.append((step, logged, logs["d_loss"], logs["g_loss"], logs["step"]))

        @hookimpl
        def ganforge_on_eval(self, run, step, results):
            evals.append((step, dict(results)))

    plugin_manager.register(Recorder())
    tiny_points_config.eval_every, tiny_points_config.eval_metrics = 15, ("modes",)
    tiny_points_config.eval_samples = 200
    trainer = make_trainer(tiny_points_config)
    trainer.fit()
    rows = [r for r in read_metrics(trainer.folder.metrics) if "d_loss" in r]
    assert [s for s, logged, *_ in seen if logged] == [r["step"] for r in rows]
    assert [s for s, *_ in seen] == list(range(1, tiny_points_config.steps + 1))
    assert all(step == logged_step for step, _, _, _, logged_step in seen)
    unlogged = [d for _, logged, d, _, _ in seen if not logged]
    assert len(set(unlogged)) == len(unlogged)  # each step its own value, not a repeated line
    assert [s for s, _ in evals] == [15, 30] and all("eval/modes" in r for _, r in evals)


def test_a_plugin_with_only_a_generator_trains_against_the_mlp_discriminator(small_config, make_trainer, registry):
    from ganforge.models.mlp import MLPGenerator

    registry.add("generator", "resmlp", lambda **kw: MLPGenerator(**kw))
    config = small_config(gen="resmlp", steps=3, batch_size=16, z_dim=2, log_every=100, sample_every=0,
                          ckpt_every=2000, hidden=(8,))
    trainer = make_trainer(config)
    assert trainer.config.disc == "mlp"
    trainer.fit()


def test_a_plugin_keeps_its_state_across_a_resume(tiny_points_config):
    """A plugin object with ``state_dict``/``load_state_dict`` gets back, on ``--resume``, what it
    had at the checkpoint the run continues from (not what it had when the process died)."""

    class StepCounter:
        def __init__(self):
            self.seen, self.restored = 0, None

        def state_dict(self):
            return {"seen": self.seen, "curve": torch.arange(3.0) * self.seen}

        def load_state_dict(self, state):
            self.restored = state

        @hookimpl
        def ganforge_on_step_end(self, run, step):
            self.seen += 1

    pm = get_plugin_manager(entry_points=False, extra=[StepCounter()])
    first = Trainer(tiny_points_config, registry=build_registry(pm), plugin_manager=pm)
    first.start()
    first.train(25)  # checkpoints at 10 and 20; the process "dies" at 25
    first.stop()

    counter = StepCounter()
    pm = get_plugin_manager(entry_points=False, extra=[counter])
    tiny_points_config.resume = True
    resumed = Trainer(tiny_points_config, registry=build_registry(pm), plugin_manager=pm)
    resumed.fit()
    assert counter.restored["seen"] == 20
    assert torch.equal(counter.restored["curve"], torch.arange(3.0) * 20)
    assert resumed.step == 30 and counter.seen == 10


def test_plugins_get_the_pictures_samples_through_a_hook(tiny_points_config):
    """``ganforge_on_samples`` hands over what the pictures show, at the picture steps, so a
    plugin never re-derives the schedule or draws the generator itself."""
    got = []

    class Pictures:
        @hookimpl
        def ganforge_on_samples(self, run, step, samples):
            got.append((step, samples.shape, samples.device.type, torch.equal(samples, run.draw())))

    pm = get_plugin_manager(entry_points=False, extra=[Pictures()])
    trainer = Trainer(tiny_points_config, registry=build_registry(pm), plugin_manager=pm)
    trainer.fit()
    assert [s for s, *_ in got] == [10, 20, 30]
    assert all(shape == (len(trainer.fixed_noise), 2) and device == "cpu" and same for _, shape, device, same in got)
    assert sorted(p.name for p in trainer.folder.samples.glob("step_*.png")) == [
        "step_0000010.png", "step_0000020.png", "step_0000030.png"]
