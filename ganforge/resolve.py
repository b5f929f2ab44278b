"""From the settings a user gave to the settings a run uses: one function for the CLI and Python.

:func:`resolve_settings` checks every component name, continues a recorded run on ``resume``
(its recorded settings, with only what was given now on top), fills what is still unset
from the components' declared defaults and then from the settings table, and checks the result
once. ``ganforge run`` and ``Trainer(RunConfig(...))`` both come through here, so a run resumed
from Python is the run ``ganforge run --resume`` would continue.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from ganforge.config import ResolvedConfig, RunConfig, merge_settings
from ganforge.errors import ConfigError, PluginError
from ganforge.registry import Component, Registry
from ganforge.settings import COMPONENT_SETTINGS, SETTING, check_type

# What defines the networks and the data: a resumed run cannot change them.
FIXED_ON_RESUME = ("data", "gen", "disc", "loss", "z_dim")
FIXED_OPTION_SECTIONS = ("gen", "disc", "data")


def given_settings(config: RunConfig | dict[str, Any]) -> dict[str, Any]:
    """What was chosen: a mapping's keys as they are; of a :class:`RunConfig`, the fields that
    differ from its defaults (a field left at its default keeps a resumed run's recorded value)."""
    if isinstance(config, dict):
        return dict(config)
    defaults = RunConfig().to_dict()
    return {k: v for k, v in config.to_dict().items() if v != defaults[k]}


def resolve_settings(given: RunConfig | ResolvedConfig | dict[str, Any], registry: Registry) -> ResolvedConfig:
    """The run's complete, checked settings.

    Precedence, lowest first: the settings table's defaults, the data set's and then the loss's
    declared defaults, and what ``given`` holds (a recipe, ``--config``, flags and ``--set``,
    already merged in that order by the caller; a ``recipe`` named in ``given`` is merged below
    the rest here, so Python and the CLI read it alike). With ``resume`` and an ``out`` folder that
    holds a record, the recorded settings sit just below ``given`` and above every default."""
    if isinstance(given, ResolvedConfig):
        return given
    values = given_settings(given)
    if values.get("recipe"):  # the recipe is the base of what was given (the CLI merged it already)
        values = merge_settings(registry.get("recipe", values["recipe"]).build(), values)
    RunConfig.from_dict(values)  # unknown keys and wrong types, named
    if values.get("from_step") is not None and not values.get("resume"):
        raise ConfigError("--from-step N continues a run from an earlier checkpoint: add --resume (and --out RUN)")
    if values.get("resume") and values.get("out"):
        values = resumed_settings(Path(values["out"]), values)
    config = RunConfig.from_dict(values)
    registry.get("generator", config.gen)
    disc = config.disc if config.disc is not None else default_discriminator(config.gen, registry)
    config = dataclasses.replace(config, disc=disc)
    registry.get("discriminator", disc)
    data = checked_defaults(registry.get("dataset", config.data))
    loss = checked_defaults(registry.get("loss", config.loss))
    return config.resolved(data, loss)


def default_discriminator(gen: str, registry: Registry) -> str:
    """``disc`` left out: the generator's family when it has a discriminator (``dcgan`` ->
    ``dcgan``), else the settings table's fallback (``disc``'s default), which fits any data
    shape. A plugin that adds only a generator is usable without naming a discriminator."""
    return gen if ("discriminator", gen) in registry else str(SETTING["disc"].default)


def _same(value: Any) -> Any:
    """JSON turns tuples into lists: compare them alike."""
    return list(value) if isinstance(value, (tuple, list)) else value


def resumed_settings(out: Path, given: dict[str, Any]) -> dict[str, Any]:
    """``resume``: the run's recorded settings, with only what was given now on top.

    Without this, every setting left out would silently fall back to its default (a batch of 64
    instead of the run's 100) and a missing ``data`` would rebuild the wrong networks. A folder
    with no record yet starts a new run there."""
    from ganforge.run.folder import RunFolder

    recorded = RunFolder(out).recorded_config()
    if recorded is None:
        return given
    recorded.pop("from_step", None)  # where an earlier resume started is no setting of this one
    changed = [k for k in FIXED_ON_RESUME if k in given and _same(given[k]) != _same(recorded.get(k))]
    recorded_options = recorded.get("options") or {}
    for section, options in (given.get("options") or {}).items():
        if section in FIXED_OPTION_SECTIONS:
            changed += [f"{section}.{key}" for key, value in options.items()
                        if _same(value) != _same(recorded_options.get(section, {}).get(key))]
    if changed:
        raise ConfigError(f"--resume continues the run in {out} as it was built; it cannot change "
                          f"{', '.join(changed)}. Leave them out, or start a new run with another --out")
    return {**merge_settings(recorded, given), "resume": True, "out": str(out)}


def checked_defaults(component: Component) -> dict[str, Any]:
    """A component's declared run defaults, each key a setting a component may default and of
    the right type; a mistake is the plugin's, so the :class:`PluginError` names the plugin."""
    defaults = component.run_defaults()
    for key, value in defaults.items():
        if key not in COMPONENT_SETTINGS:
            raise PluginError(f"{component.kind} {component.name!r} from {component.provider} declares a default "
                              f"for {key!r}, which is not a run setting a component may set (valid: "
                              f"{', '.join(COMPONENT_SETTINGS)}); the plugin needs fixing")
        try:
            check_type(key, value)
        except ConfigError as exc:
            raise PluginError(f"{component.kind} {component.name!r} from {component.provider} declares a bad "
                              f"default: {exc}; the plugin needs fixing") from None
    return defaults
