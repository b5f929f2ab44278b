"""ganforge's exception types. The CLI's entry point turns them into exit codes and messages."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class GanforgeError(Exception):
    """Base class of every error ganforge raises on purpose."""


class UsageError(GanforgeError):
    """The user asked for something that cannot work; the message says how to fix it (exit 2)."""


class ConfigError(UsageError):
    """A configuration value, file or option is invalid."""


class DataError(UsageError):
    """A data set cannot be found or read."""


class UnknownComponentError(UsageError):
    """A component name is not registered; the message lists the available ones."""

    def __init__(self, kind: str, name: str, available: Iterable[str]) -> None:
        names = sorted(available)
        close = difflib.get_close_matches(name, names, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        listing = ", ".join(names) if names else "(none registered)"
        super().__init__(f"unknown {kind} {name!r}.{hint} Available {kind} names: {listing}.")
        self.kind, self.name, self.available = kind, name, names


class PluginError(GanforgeError):
    """A plugin failed to load or registered something invalid."""


class DuplicateComponentError(UsageError, PluginError):
    """A name that several plugins registered was used without saying which plugin's (exit 2)."""


class CheckpointError(UsageError):
    """A checkpoint is missing, incomplete or does not match its manifest."""


class PeerLostError(GanforgeError):
    """Under torchrun, another process of the job stopped (killed, crashed, its machine gone)
    while this one waited for it in a collective; the last checkpoint is kept."""


class DivergenceError(GanforgeError):
    """Training produced non-finite losses or weights; the last good checkpoint is kept."""
