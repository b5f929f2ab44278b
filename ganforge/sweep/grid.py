"""The grid of a sweep: which settings vary, over which values, and the trials that come of it.

An axis is one key and its values: a run setting (``loss``, ``lr_g``, ``steps``) or a component
option (``disc.pack``, ``loss.r1``), given as ``--vary KEY=v1,v2`` or as a list in a TOML grid
file's ``[vary]`` table. The grid is every combination of the axes (the first axis varies
slowest); each combination is a *point*, and each point runs once per seed: a *trial*.

Nothing here trains: a point is a mapping in the layout of :func:`ganforge.config.load_toml`
(run keys plus ``options``), laid over the settings the user gave for every trial.
"""

from __future__ import annotations

import itertools
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ganforge.config import merge_settings, parse_value
from ganforge.errors import ConfigError
from ganforge.settings import OPTION_SECTIONS, SETTING, check_type

NOT_VARIED = ("seed", "out", "resume", "from_step")
"""Settings a sweep owns: the seed comes from ``--seeds``, the folder from the sweep's layout."""


@dataclass(frozen=True)
class Axis:
    """One varied key and its values, in the order given."""

    key: str
    values: tuple[Any, ...]

    def overlay(self, value: Any) -> dict[str, Any]:
        """``value`` for this key in ``load_toml``'s layout: ``{"lr_g": v}`` or ``{"options": {...}}``."""
        section, dot, name = self.key.partition(".")
        if dot:
            return {"options": {section: {name: value}}}
        return {self.key: value}


def check_key(key: str) -> None:
    """A key a sweep may vary: a run setting (not one it owns) or ``SECTION.OPTION``."""
    section, dot, name = key.partition(".")
    if dot:
        if section not in OPTION_SECTIONS or not name:
            raise ConfigError(f"--vary {key}: a component option is SECTION.NAME with SECTION one of "
                              f"{', '.join(OPTION_SECTIONS)} (e.g. disc.pack=1,2)")
        return
    if key in NOT_VARIED:
        hint = "use --seeds N or --seeds 0,1,2" if key == "seed" else "the sweep chooses it"
        raise ConfigError(f"--vary {key}: a sweep cannot vary {key}; {hint}")
    if key not in SETTING:
        settable = ", ".join(s for s in SETTING if s not in NOT_VARIED)
        raise ConfigError(f"--vary {key}: not a run setting ({settable}) nor an option SECTION.NAME "
                          f"(e.g. disc.pack)")


def parse_vary(text: str) -> Axis:
    """``loss=nonsat,rpgan`` -> ``Axis("loss", ("nonsat", "rpgan"))``; values read as ``--set`` reads them."""
    key, sep, values = text.partition("=")
    key = key.strip()
    if not sep or not key or not values.strip():
        raise ConfigError(f"--vary expects KEY=V1,V2,... (e.g. loss=nonsat,rpgan or lr_g=1e-4,2e-4), got {text!r}")
    check_key(key)
    parsed = tuple(parse_value(part) for part in values.split(",") if part.strip())
    return make_axis(key, parsed)


def parse_pairs(text: str, flag: str) -> dict[str, Any]:
    """``lr_g=1e-4,gen.hidden=256,512`` -> ``{"lr_g": 0.0001, "gen.hidden": (256, 512)}``, values
    read as ``--set`` reads them. A part without ``=`` continues the value before it, so a list
    keeps its commas. ``flag`` names the option in the message for a malformed text."""
    pairs: list[list[str]] = []
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if sep and key.strip() and value.strip():
            pairs.append([key.strip(), value.strip()])
        elif pairs and not sep and part.strip():
            pairs[-1][1] += "," + part.strip()
        else:
            raise ConfigError(f"{flag} expects KEY=VALUE,... (e.g. lr_g=1e-4,lr_d=2e-4), got {text!r}")
    return {key: parse_value(value) for key, value in pairs}


def parse_point(text: str) -> dict[str, Any]:
    """``--point lr_g=1e-4,lr_d=2e-4``: one setting given whole, for comparing configurations
    that differ in several keys at once (a tuned trial against the recipe) without crossing
    every key's values."""
    return make_point(parse_pairs(text, "--point"), f"--point {text}")


def make_point(values: dict[str, Any], where: str) -> dict[str, Any]:
    """A point's settings, checked as ``--vary`` checks its keys and values."""
    if not values:
        raise ConfigError(f"{where}: give at least one KEY=VALUE")
    for key, value in values.items():
        check_key(key)
        if "." not in key:
            try:
                check_type(key, value)
            except ConfigError as exc:
                raise ConfigError(f"{where}: {exc}") from None
    return dict(values)


def make_axis(key: str, values: tuple[Any, ...] | list[Any]) -> Axis:
    values = tuple(values)
    if not values:
        raise ConfigError(f"--vary {key}: give at least one value")
    if len(set(map(repr, values))) != len(values):
        raise ConfigError(f"--vary {key}: a value appears twice ({', '.join(map(format_value, values))})")
    if "." not in key:
        for value in values:
            try:
                check_type(key, value)
            except ConfigError as exc:
                raise ConfigError(f"--vary {key}: {exc}") from None
    return Axis(key, values)


def load_grid(path: str | Path) -> tuple[list[Axis], dict[str, Any]]:
    """A TOML grid file: a ``[vary]`` table of lists (``loss = ["nonsat", "rpgan"]``,
    ``"disc.pack" = [1, 2]``) and/or ``[[points]]`` tables (settings given whole, as ``--point``),
    and optionally ``seeds`` (a count or a list) and ``baseline``. Returns the axes and the other
    keys (``points`` checked)."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"grid file {path} does not exist; check the --grid path") from None
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read grid file {path}: {exc}") from None
    vary = raw.pop("vary", {})
    points = raw.get("points", [])
    if not isinstance(vary, dict) or not (vary or points):
        raise ConfigError(f"{path}: a grid file needs a [vary] table of lists, e.g. loss = [\"nonsat\", \"rpgan\"], "
                          f"or [[points]] tables")
    if not isinstance(points, list) or not all(isinstance(p, dict) for p in points):
        raise ConfigError(f"{path}: points must be [[points]] tables of KEY = VALUE")
    raw["points"] = [make_point(_flatten(p), f"{path}: points[{i}]") for i, p in enumerate(points)]
    unknown = sorted(set(raw) - {"seeds", "baseline", "points"})
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {', '.join(unknown)}; a grid file holds [vary], [[points]], seeds "
                          f"and baseline")
    axes = []
    for key, values in _flatten(vary).items():
        check_key(key)
        if not isinstance(values, list):
            raise ConfigError(f"{path}: vary.{key} must be a list of values, got {values!r}")
        axes.append(make_axis(key, values))
    return axes, raw


def _flatten(table: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"disc": {"pack": [1, 2]}}`` (TOML's dotted keys) -> ``{"disc.pack": [1, 2]}``."""
    flat: dict[str, Any] = {}
    for key, value in table.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def parse_seeds(text: str | int | list[int]) -> list[int]:
    """``--seeds 3`` -> ``[0, 1, 2]``; ``--seeds 4,7`` -> ``[4, 7]``."""
    if isinstance(text, list):
        seeds = text
    elif isinstance(text, int) or "," not in text:
        try:
            count = int(text)
        except ValueError:
            raise ConfigError(f"--seeds takes a count (3) or a list (0,1,2), got {text!r}") from None
        if count < 1:
            raise ConfigError(f"--seeds must be at least 1, got {count}")
        seeds = list(range(count))
    else:
        try:
            seeds = [int(part) for part in text.split(",") if part.strip()]
        except ValueError:
            raise ConfigError(f"--seeds takes a count (3) or a list of whole numbers (0,1,2), got {text!r}") from None
    if not seeds or any(not isinstance(s, int) or s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise ConfigError(f"--seeds: distinct whole numbers >= 0, got {seeds!r}")
    return list(seeds)


def format_value(value: Any) -> str:
    """How a value reads in a label: ``2e-04`` as ``0.0002``, lists with commas."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return "+".join(format_value(v) for v in value)
    return str(value)


@dataclass(frozen=True)
class Point:
    """One combination of the axes' values."""

    values: tuple[tuple[str, Any], ...]

    @property
    def label(self) -> str:
        """``loss=nonsat lr_g=0.0002``; ``base`` for a sweep without axes."""
        return " ".join(f"{k}={format_value(v)}" for k, v in self.values) or "base"

    @property
    def slug(self) -> str:
        """The label as a folder name."""
        text = "_".join(f"{k}={format_value(v)}" for k, v in self.values) or "base"
        return re.sub(r"[^A-Za-z0-9._=+-]", "-", text)

    def given(self, base: dict[str, Any]) -> dict[str, Any]:
        """``base`` (the settings of every trial) with this point's values on top."""
        merged = dict(base)
        for key, value in self.values:
            merged = merge_settings(merged, Axis(key, (value,)).overlay(value))
        return merged


def expand(axes: list[Axis], points: list[dict[str, Any]] | None = None) -> list[Point]:
    """Every combination, the first axis varying slowest; with ``points`` (``--point``), every
    point crossed with every combination of the axes."""
    keys = [a.key for a in axes]
    if len(set(keys)) != len(keys):
        raise ConfigError(f"--vary names a key twice ({', '.join(keys)}); give each key once with all its values")
    combos = [tuple(zip(keys, combo, strict=True)) for combo in itertools.product(*(a.values for a in axes))]
    if not points:
        return [Point(combo) for combo in combos]
    shared = sorted({k for p in points for k in p} & set(keys))
    if shared:
        raise ConfigError(f"{', '.join(shared)} is both in a --point and --vary; give it in one of them")
    out = [Point(tuple(point.items()) + combo) for point in points for combo in combos]
    if len({p.label for p in out}) != len(out):
        raise ConfigError("two --point settings are the same; give each once")
    return out


def _normal(pair: str) -> str:
    """``lr_g=1e-4`` -> ``lr_g=0.0001``, as labels write it."""
    key, sep, value = pair.partition("=")
    return f"{key}={format_value(parse_value(value))}" if sep else pair


def find_point(points: list[Point], text: str) -> Point:
    """The point ``--baseline`` names: its label, or ``KEY=VALUE`` pairs that only it matches."""
    wanted = [_normal(part) for part in re.split(r"[\s,]+", text.strip()) if part]
    for point in points:
        if point.label == text or point.slug == text:
            return point
    matches = [p for p in points if all(w in {f"{k}={format_value(v)}" for k, v in p.values} for w in wanted)]
    if len(matches) == 1:
        return matches[0]
    labels = "; ".join(p.label for p in points)
    what = "matches no setting" if not matches else f"matches {len(matches)} settings"
    raise ConfigError(f"--baseline {text!r} {what}; name one of: {labels}")
