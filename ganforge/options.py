"""Component options checked from their factory's annotations: one checker for every plugin.

``Component.build`` (and :func:`checked_options`, for classes that are also built directly)
compares each option with its parameter's annotation: ``int``, ``float``, ``bool``, ``str``,
``Literal[...]`` choices, sequences such as ``tuple[int, ...]`` or ``Sequence[int]``, and unions
with ``None``. A rule a type cannot say (a probability, a count of at least 2) is declared
beside it, ``Annotated[float, Rule("a probability in [0, 1)", lambda p: 0 <= p < 1, "0.3")]``,
so the whole contract of an option is in the signature and every component gets the same message:
``disc.pack must be ..., such as --set disc.pack=2; got 0``. Annotations this checker does not
know (a tensor, a callable) pass unchecked.
"""

from __future__ import annotations

import collections.abc
import functools
import inspect
import numbers
import os
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from ganforge.errors import ConfigError

T = TypeVar("T")
_SEQUENCES = (list, tuple, collections.abc.Sequence)
_UNIONS = (typing.Union, types.UnionType)


@dataclass(frozen=True)
class Rule:
    """What a valid value is, in words for the message, and an example for ``--set``."""

    words: str
    ok: Callable[[Any], bool]
    example: str


def annotations_of(factory: Callable[..., Any]) -> dict[str, Any]:
    """The factory's parameter annotations, resolved; none when they cannot be (then nothing is
    checked: a check that cannot read its contract must not refuse anything)."""
    target = factory.__init__ if inspect.isclass(factory) else factory
    try:
        hints = typing.get_type_hints(target, include_extras=True)
    except Exception:  # a name only a type checker sees, a partial, a builtin
        return {}
    hints.pop("return", None)
    return hints


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _matches(annotation: Any, value: Any) -> bool:
    """Whether ``value`` fits ``annotation``; an annotation not understood fits anything."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return _matches(args[0], value)
    if origin in _UNIONS:
        return any(_matches(a, value) for a in args)
    if annotation is type(None) or annotation is None:
        return value is None
    if origin is typing.Literal:
        return any(value == a and type(value) is type(a) for a in args)
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return _is_int(value)
    if annotation is float:
        return _is_number(value)
    if annotation is str:
        return isinstance(value, (str, os.PathLike))
    if origin in _SEQUENCES:
        if not isinstance(value, (list, tuple)):
            return False
        items = [a for a in args if a is not Ellipsis]
        if origin is tuple and args and Ellipsis not in args and len(args) != len(value):
            return False
        return all(_matches(items[min(i, len(items) - 1)], v) for i, v in enumerate(value)) if items else True
    return True


def _rules(annotation: Any) -> list[Rule]:
    """The rules declared in ``Annotated[...]``, also inside ``X | None``."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return [m for m in annotation.__metadata__ if isinstance(m, Rule)]
    if origin in _UNIONS:
        return [r for a in args for r in _rules(a)]
    return []


def _words(annotation: Any) -> str:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return _words(args[0])
    if origin in _UNIONS:
        return " or ".join(_words(a) for a in args if a is not type(None))
    if origin is typing.Literal:
        return "one of " + ", ".join(str(a) for a in args)
    if origin in _SEQUENCES:
        return "a comma-separated list of " + (_words(args[0]).removeprefix("a ") + "s" if args else "values")
    return {bool: "true or false", int: "a whole number", float: "a number", str: "a word"}.get(annotation,
                                                                                           "another value")


def _example(annotation: Any, default: Any) -> str:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return _example(args[0], default)
    if origin in _UNIONS:
        return _example(next((a for a in args if a is not type(None)), str), default)
    if annotation is bool:
        return "true"
    if default is not None and default is not inspect.Parameter.empty and _matches(annotation, default):
        return ",".join(map(str, default)) if isinstance(default, (list, tuple)) else str(default)
    if origin is typing.Literal:
        return str(args[0])
    if origin in _SEQUENCES:
        return "256,512"
    return {int: "1", float: "0.5", str: "name"}.get(annotation, "VALUE")


def option_problem(factory: Callable[..., Any], options: Mapping[str, Any], section: str) -> tuple[str, str] | None:
    """The first option that breaks its annotation, as ``(name, message)``; ``None`` if all fit."""
    hints = annotations_of(factory)
    if not hints:
        return None
    try:
        parameters = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return None
    for name, value in options.items():
        annotation = hints.get(name)
        if annotation is None:
            continue
        rules = _rules(annotation)
        fits = _matches(annotation, value)
        broken = next((r for r in rules if value is not None and not _safe_ok(r, value)), None) if fits else None
        if fits and broken is None:
            continue
        rule = broken or (rules[0] if rules else None)
        default = parameters[name].default if name in parameters else None
        words = rule.words if rule else _words(annotation)
        example = rule.example if rule else _example(annotation, default)
        return name, f"{section}.{name} must be {words}, such as --set {section}.{name}={example}; got {value!r}"
    return None


def _safe_ok(rule: Rule, value: Any) -> bool:
    try:
        return bool(rule.ok(value))
    except Exception:  # a rule that cannot judge a value refuses it
        return False


def check_options(factory: Callable[..., Any], options: Mapping[str, Any], section: str) -> None:
    """Raise the :class:`ConfigError` of :func:`option_problem`, if any."""
    problem = option_problem(factory, options, section)
    if problem is not None:
        raise ConfigError(problem[1])


def checked_options(section: str) -> Callable[[type[T]], type[T]]:
    """Class decorator: check the constructor's arguments from its annotations on every call, so
    a class built directly (not through the registry) refuses the same values with the same
    words. ``section`` names the options in messages (``disc`` -> ``disc.pack``)."""

    def decorate(cls: type[T]) -> type[T]:
        init = cls.__init__
        signature = inspect.signature(init)

        @functools.wraps(init)
        def checked_init(self: Any, *args: Any, **kwargs: Any) -> None:
            try:
                bound = signature.bind(self, *args, **kwargs)
            except TypeError:
                return init(self, *args, **kwargs)  # Python's own message for a wrong call
            given = {k: v for k, v in list(bound.arguments.items())[1:]}
            check_options(cls, given, section)
            return init(self, *args, **kwargs)

        cls.__init__ = checked_init  # type: ignore[method-assign]  # wrapping the class's own __init__ is the point
        cls.__ganforge_options__ = section  # type: ignore[attr-defined]  # a marker the registry reads
        return cls

    return decorate
