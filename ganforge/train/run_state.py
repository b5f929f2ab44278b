"""A checkpoint's training state, composed from the objects that own it.

Each owner (the optimisers, the RNGs, the data position, the loss window, the gradient scalers,
the plugins) gives its own ``state_dict()`` and takes it back with ``load_state_dict()``, as
Lightning composes its callbacks' state: adding a piece of state to the run is one ``add`` call,
never a key kept by hand in the trainer. Together they are everything the next step depends on, so
N steps, a checkpoint and a resume give the same bits as 2N steps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import pluggy

from ganforge.plugins import HookError
from ganforge.train.loss_window import legacy_window_state


class Stateful(Protocol):
    def state_dict(self) -> Any: ...

    def load_state_dict(self, state: Any) -> None: ...


@dataclass
class StateOf:
    """An owner made of two functions, for state that lives outside one object (the global RNGs)."""

    save: Callable[[], Any]
    load: Callable[[Any], None]

    def state_dict(self) -> Any:
        return self.save()

    def load_state_dict(self, state: Any) -> None:
        self.load(state)


class TrainingState:
    """``{name: owner.state_dict()}`` for every owner added, in the order added."""

    def __init__(self) -> None:
        self._owners: dict[str, tuple[Stateful, bool]] = {}

    def add(self, name: str, owner: Stateful, *, optional: bool = False) -> None:
        """Register an owner; an ``optional`` one may be missing from older checkpoints."""
        if name in self._owners:
            raise ValueError(f"training state {name!r} has two owners")
        self._owners[name] = (owner, optional)

    def state_dict(self) -> dict[str, Any]:
        return {name: owner.state_dict() for name, (owner, _) in self._owners.items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Hand each owner its part. A required part that is missing is a ``KeyError`` (the
        trainer reports it as a checkpoint that does not fit the run)."""
        state = upgrade(state)
        for name, (owner, optional) in self._owners.items():
            if name in state:
                owner.load_state_dict(state[name])
            elif not optional:
                raise KeyError(f"the training state has no {name!r}")


    def load_parts(self, state: dict[str, Any], names: tuple[str, ...]) -> None:
        """Hand only the owners ``names`` their parts (a checkpoint format that kept no more)."""
        for name in names:
            self._owners[name][0].load_state_dict(state[name])


def upgrade(state: dict[str, Any]) -> dict[str, Any]:
    """Checkpoints of earlier versions, read as today's layout: the loss window was four
    top-level keys."""
    if "window" in state and "loss_window" not in state:
        state = {**state, "loss_window": legacy_window_state(state)}
    return state


def stable_name(pm: pluggy.PluginManager, plugin: Any) -> str:
    """The plugin's name in ``pm``, unless that is pluggy's stand-in for an unnamed object (its
    ``id``, new in every process): then the class's dotted name, which a resumed process shares."""
    name = pm.get_name(plugin) or ""
    if name and name != str(id(plugin)):
        return name
    kind = type(plugin)
    return f"{kind.__module__}.{kind.__qualname__}"


class PluginStates:
    """The state of every plugin that keeps some across a resume: a plugin object (or module)
    with ``state_dict()`` and ``load_state_dict(state)``, keyed by its name in the plugin
    manager. A plugin's state is JSON-able values and tensors (see :mod:`ganforge.run.tensor_tree`)."""

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self.pm = pm

    def _keeping_state(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for plugin in self.pm.get_plugins():
            if callable(getattr(plugin, "state_dict", None)) and callable(getattr(plugin, "load_state_dict", None)):
                name = stable_name(self.pm, plugin)
                found[name if name not in found else f"{name}#{len(found)}"] = plugin
        return found

    def state_dict(self) -> dict[str, Any]:
        states = {}
        for name, plugin in self._keeping_state().items():
            try:
                states[name] = plugin.state_dict()
            except Exception as exc:
                raise HookError(f"plugin {name!r} failed in state_dict: {type(exc).__name__}: {exc}",
                                name) from exc
        return states

    def load_state_dict(self, states: dict[str, Any]) -> None:
        """Each plugin gets its own state back; a plugin installed since the checkpoint gets none
        and starts afresh, and the state of a plugin no longer installed is ignored."""
        for name, plugin in self._keeping_state().items():
            if name in states:
                try:
                    plugin.load_state_dict(states[name])
                except Exception as exc:
                    raise HookError(f"plugin {name!r} failed in load_state_dict: {type(exc).__name__}: "
                                    f"{exc}", name) from exc
