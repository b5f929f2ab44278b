"""The plugin manager: default plugins, entry points, fault isolation and user switches.

- Built-in components come from :data:`DEFAULT_PLUGINS`, registered through the same hooks as
  third-party plugins (pytest's ``default_plugins``).
- Third-party plugins come from the ``ganforge`` entry-point group and load one at a time: one that
  fails to import or register gives a single warning naming the distribution, the entry point and
  the error, and the rest keeps working. ``GANFORGE_STRICT_PLUGINS=1`` turns that into an error.
- ``GANFORGE_DISABLE_PLUGINS=a,b`` blocks plugins by entry-point (or plugin) name.
"""

from __future__ import annotations

import importlib
import importlib.metadata as md
import os
import sys
import warnings
from collections.abc import Iterable
from typing import Any

import pluggy

from ganforge import hookspecs
from ganforge.errors import DuplicateComponentError, PluginError
from ganforge.registry import HOOK_FOR_KIND, Provider, Registry

ENTRY_POINT_GROUP = "ganforge"
DEFAULT_PLUGINS: tuple[str, ...] = ("ganforge.builtin", "ganforge.recipes")
STRICT_ENV = "GANFORGE_STRICT_PLUGINS"
TRACE_ENV = "GANFORGE_TRACE_HOOKS"  # print every hook call and its implementations to stderr
DISABLE_ENV = "GANFORGE_DISABLE_PLUGINS"


class PluginLoadWarning(UserWarning):
    """A third-party plugin could not be loaded or registered; everything else still works."""


def _strict() -> bool:
    return os.environ.get(STRICT_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def _disabled() -> set[str]:
    return {p.strip() for p in os.environ.get(DISABLE_ENV, "").split(",") if p.strip()}


def _version() -> str:
    from ganforge import __version__

    return __version__


def _report(message: str, exc: BaseException) -> None:
    if _strict():
        raise PluginError(f"{message} ({STRICT_ENV} is set)") from exc
    warnings.warn(f"{message}. Set {DISABLE_ENV} to silence it.", PluginLoadWarning, stacklevel=3)


class PluginManager(pluggy.PluginManager):
    """pluggy's manager plus the distribution (name, version) behind each entry-point plugin."""

    def __init__(self) -> None:
        super().__init__(hookspecs.PROJECT)
        self.add_hookspecs(hookspecs)
        self.distributions: dict[str, tuple[str, str]] = {}


def new_plugin_manager() -> PluginManager:
    """An empty manager that knows ganforge's hook specifications (for tests and embedding)."""
    return PluginManager()


def load_entry_points(
    pm: PluginManager, entry_points: Iterable[md.EntryPoint] | None = None
) -> None:
    """Load third-party plugins one by one, isolating failures (see the module docstring)."""
    if entry_points is None:
        entry_points = md.entry_points(group=ENTRY_POINT_GROUP)
    blocked = _disabled()
    for ep in entry_points:
        dist = getattr(ep, "dist", None)
        if ep.name in blocked or (dist is not None and dist.name in blocked) or pm.has_plugin(ep.name) \
                or pm.is_blocked(ep.name):
            continue
        where = f"{dist.name} {dist.version}" if dist else "unknown distribution"
        try:
            plugin = ep.load()
            pm.register(plugin, name=ep.name)
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - a broken plugin must not break ganforge
            _report(f"ganforge plugin {ep.name!r} ({ep.value}) from {where} failed to load: "
                    f"{type(exc).__name__}: {exc}", exc)
            continue
        if dist is not None:
            pm.distributions[ep.name] = (dist.name, dist.version)


def get_plugin_manager(*, entry_points: bool = True, extra: Iterable[Any] = ()) -> PluginManager:
    """The manager with the default plugins, the installed entry points and any ``extra`` objects."""
    pm = new_plugin_manager()
    blocked = _disabled()
    for module_name in DEFAULT_PLUGINS:
        if module_name not in blocked:
            pm.register(importlib.import_module(module_name), name=module_name)
    for plugin in extra:
        pm.register(plugin)
    if entry_points:
        load_entry_points(pm)
    pm.check_pending()
    if os.environ.get(TRACE_ENV, "") not in ("", "0"):
        pm.trace.root.setwriter(sys.stderr.write)
        pm.enable_tracing()
    return pm


def _providers(pm: pluggy.PluginManager) -> dict[int, Provider]:
    dists = getattr(pm, "distributions", {})
    out: dict[int, Provider] = {}
    for name, plugin in pm.list_name_plugin():
        if name in dists:
            out[id(plugin)] = Provider(name, *dists[name])
        elif name in DEFAULT_PLUGINS:
            out[id(plugin)] = Provider(name, "ganforge", _version())
        else:
            out[id(plugin)] = Provider(name)
    return out


def build_registry(pm: pluggy.PluginManager) -> Registry:
    """Call every registration hook plugin by plugin, so each component records its provider."""
    registry = Registry()
    providers = _providers(pm)
    builtin_ids = {id(pm.get_plugin(n)) for n in DEFAULT_PLUGINS if pm.get_plugin(n) is not None}
    for kind, hook_name in HOOK_FOR_KIND.items():
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            provider = providers.get(id(impl.plugin), Provider(impl.plugin_name))
            try:
                impl.function(register=registry.register_callback(kind, provider))
            except DuplicateComponentError:
                raise
            except Exception as exc:  # noqa: BLE001
                if id(impl.plugin) in builtin_ids:
                    raise
                _report(f"ganforge plugin {provider} failed to register {kind}s: "
                        f"{type(exc).__name__}: {exc}", exc)
    return registry


class HookError(PluginError):
    """A plugin's lifecycle hook raised; the message names the plugin, the hook and the error."""

    def __init__(self, message: str, plugin: str) -> None:
        super().__init__(message)
        self.plugin = plugin


def call_hook(pm: pluggy.PluginManager, name: str, **kwargs: Any) -> None:
    """Call the lifecycle hook ``name``; an exception from a plugin becomes a :class:`HookError`
    that names the plugin (found by matching the traceback against each implementation), so the
    trainer can save a checkpoint and the user learns which plugin to fix or disable.
    KeyboardInterrupt and SystemExit pass through untouched."""
    caller = getattr(pm.hook, name)
    try:
        caller(**kwargs)
    except Exception as exc:
        codes = {impl.function.__code__: impl.plugin_name for impl in caller.get_hookimpls()
                 if hasattr(impl.function, "__code__")}
        tb, plugin = exc.__traceback__, "unknown"
        while tb is not None:
            plugin = codes.get(tb.tb_frame.f_code, plugin)
            tb = tb.tb_next
        raise HookError(f"plugin {plugin!r} failed in {name}: {type(exc).__name__}: {exc}. Fix it, or "
                        f"disable it with {DISABLE_ENV}={plugin}", plugin) from exc


def load_registry() -> tuple[PluginManager, Registry]:
    """The usual entry: default plugins plus installed ones, and the registry they fill."""
    pm = get_plugin_manager()
    return pm, build_registry(pm)
