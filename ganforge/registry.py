"""The typed registry that the ``register(...)`` callbacks fill: kind -> name -> :class:`Component`."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ganforge.errors import ConfigError, DuplicateComponentError, PluginError, UnknownComponentError
from ganforge.options import option_problem

KINDS: tuple[str, ...] = ("generator", "discriminator", "loss", "dataset", "metric", "extractor", "recipe")
HOOK_FOR_KIND: dict[str, str] = {
    "generator": "ganforge_register_generators",
    "discriminator": "ganforge_register_discriminators",
    "loss": "ganforge_register_losses",
    "dataset": "ganforge_register_datasets",
    "metric": "ganforge_register_metrics",
    "extractor": "ganforge_register_extractors",
    "recipe": "ganforge_register_recipes",
}


@dataclass(frozen=True)
class Provider:
    """Who registered a component: the plugin's name and, when known, its distribution."""

    plugin: str
    distribution: str | None = None
    version: str | None = None

    def __str__(self) -> str:
        dist = f" ({self.distribution} {self.version})" if self.distribution else ""
        return f"plugin {self.plugin!r}{dist}"


@dataclass(frozen=True)
class Component:
    """One registered component: how to build it and where it came from."""

    kind: str
    name: str
    factory: Callable[..., Any]
    description: str
    provider: Provider
    defaults: Mapping[str, Any] = field(default_factory=dict)

    def run_defaults(self) -> dict[str, Any]:
        """The run settings this component declares it needs: what ``register(...,
        defaults=...)`` gave, on top of a ``defaults`` mapping on the factory (a loss's
        ``ClassVar``), which plugins written before ``defaults=`` use."""
        return {**dict(getattr(self.factory, "defaults", None) or {}), **self.defaults}

    def build(self, **kwargs: Any) -> Any:
        """Call the factory with ``kwargs``, each checked against its parameter's annotation
        (:mod:`ganforge.options`); a wrong option is a :class:`ConfigError` naming the component,
        the option, what it expects and an example."""
        try:
            bound = inspect.signature(self.factory).bind_partial(**kwargs)
        except (TypeError, ValueError) as exc:
            raise ConfigError(
                f"{self.kind} {self.name!r} does not accept these options: {exc}. "
                f"Its parameters: {_parameters(self.factory)}."
            ) from None
        problem = option_problem(self.factory, kwargs, _flag(self.kind))
        if problem is not None:
            name, message = problem
            if not hasattr(self.factory, "__ganforge_options__"):
                try:  # a component that checks its own options knows their range: its words win
                    self.factory(**kwargs)
                except ConfigError:
                    raise
                except Exception:  # noqa: BLE001 - the annotation's message follows
                    pass
            raise ConfigError(f"{self.kind} {self.name!r} cannot be built with {name}={kwargs[name]!r}: "
                              f"{message}")
        try:
            return self.factory(*bound.args, **bound.kwargs)
        except (TypeError, ValueError) as exc:
            if not kwargs:  # no user option involved: a bug, not a usage error
                raise
            given = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
            raise ConfigError(f"{self.kind} {self.name!r} cannot be built with {given}: {exc}") from None


def _qualified(component: Component) -> str:
    return f"{component.name}@{component.provider.distribution or component.provider.plugin}"


def _flag(kind: str) -> str:
    """The flag and ``--set`` section of a kind: ``generator`` -> ``gen``."""
    return {"generator": "gen", "discriminator": "disc", "dataset": "data"}.get(kind, kind)


def _parameters(factory: Callable[..., Any]) -> str:
    try:
        return ", ".join(inspect.signature(factory).parameters) or "(none)"
    except (TypeError, ValueError):
        return "(unknown)"


def _first_line(text: str | None) -> str:
    return (text or "").strip().splitlines()[0] if (text or "").strip() else ""


class Registry:
    """Every component ganforge knows about, filled by plugins through ``register`` callbacks."""

    def __init__(self) -> None:
        self._items: dict[str, dict[str, Component]] = {kind: {} for kind in KINDS}
        self._clashes: dict[tuple[str, str], list[Component]] = {}

    def register_callback(self, kind: str, provider: Provider) -> Callable[..., None]:
        """Return the ``register(name, factory, description=None, defaults=None)`` callback
        handed to one hook (see :class:`ganforge.hookspecs.Register`)."""

        def register(name: str, factory: Callable[..., Any], description: str | None = None,
                     defaults: Mapping[str, Any] | None = None) -> None:
            self.add(kind, name, factory, description=description, provider=provider, defaults=defaults)

        return register

    def add(
        self,
        kind: str,
        name: str,
        factory: Callable[..., Any],
        *,
        description: str | None = None,
        provider: Provider = Provider("direct"),
        defaults: Mapping[str, Any] | None = None,
    ) -> None:
        """Validate and store one component; refuse a duplicate naming both providers.
        ``defaults``: run settings the component needs (checked when a run uses it)."""
        if kind not in self._items:
            raise PluginError(f"{provider} registered unknown kind {kind!r}; kinds are {KINDS}")
        if not isinstance(name, str) or not name or name != name.strip():
            raise PluginError(f"{provider} registered a {kind} with an invalid name {name!r}")
        if not callable(factory):
            raise PluginError(f"{provider} registered {kind} {name!r} with a non-callable factory")
        text = description or _first_line(getattr(factory, "__doc__", None))
        if defaults is not None and not isinstance(defaults, Mapping):
            raise PluginError(f"{provider} registered {kind} {name!r} with defaults that are not a mapping: "
                              f"{defaults!r}")
        component = Component(kind, name, factory, _first_line(text), provider, dict(defaults or {}))
        existing = self._items[kind].get(name)
        if existing is None:
            self._items[kind][name] = component
            return
        if existing.provider == provider:
            raise PluginError(f"{provider} registered {kind} {name!r} twice")
        # Two plugins chose one name: keep both under qualified names. Commands that do not use
        # the name are unaffected; using it asks the user to choose (see :meth:`get`).
        self._clashes.setdefault((kind, name), [existing]).append(component)

    def providers_of(self, kind: str, name: str) -> list[Component]:
        """Every component registered under ``name`` (more than one when plugins clash)."""
        return list(self._clashes.get((kind, name), [self._items[kind][name]] if name in self._items[kind] else []))

    def get(self, kind: str, name: str) -> Component:
        """The component, or :class:`UnknownComponentError` listing the names and the closest.

        ``name@provider`` picks one of several plugins that registered the same name
        (``provider``: the distribution, e.g. ``ganforge-losses``, or the plugin's name); a bare
        name that several plugins registered is a :class:`DuplicateComponentError` naming them."""
        base, at, wanted = name.partition("@")
        if at:
            for component in self.providers_of(kind, base):
                if wanted in (component.provider.distribution, component.provider.plugin):
                    return component
            choices = [_qualified(c) for c in self.providers_of(kind, base)]
            raise UnknownComponentError(kind, name, choices or self._items.get(kind, {}))
        if (kind, name) in self._clashes:
            listed = ", ".join(_qualified(c) for c in self._clashes[(kind, name)])
            raise DuplicateComponentError(
                f"{kind} {name!r} is provided by several plugins: choose one, such as --{_flag(kind)} "
                f"{_qualified(self._clashes[(kind, name)][-1])} (choices: {listed}), or disable one with "
                f"GANFORGE_DISABLE_PLUGINS")
        try:
            return self._items[kind][name]
        except KeyError:
            raise UnknownComponentError(kind, name, self._items.get(kind, {})) from None

    def names(self, kind: str) -> list[str]:
        return sorted(self._items[kind])

    def __iter__(self):
        """Every component; each of several plugins' components of one name appears."""
        for kind in KINDS:
            for n in sorted(self._items[kind]):
                yield from self.providers_of(kind, n)

    def __contains__(self, key: tuple[str, str]) -> bool:
        kind, name = key
        base, at, _ = name.partition("@")
        if not at:
            return name in self._items.get(kind, {})
        try:
            self.get(kind, name)
        except UnknownComponentError:
            return False
        return True
