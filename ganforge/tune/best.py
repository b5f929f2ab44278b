"""A run's resolved settings as a ``--config`` TOML file: what ``ganforge tune`` writes for its best
trial, so that ``ganforge run --config best.toml`` trains the same run, step for step.

The file holds every setting the run resolved (not only the searched ones), so it reproduces the
run without the recipe or the defaults of the version that found it; what only says where and how
a run went (its folder, resume, the thread count, which any count gives the same bits) is left out.
"""

from __future__ import annotations

import json
import math
from typing import Any

from ganforge.settings import OPTION_SECTIONS

LEFT_OUT = ("out", "resume", "from_step", "threads", "recipe")


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)  # the shortest text that reads back as the same float
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string: JSON's escapes are TOML's
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} to TOML")


def config_toml(config: dict[str, Any], header: str = "") -> str:
    """``config`` (a ``ResolvedConfig.to_dict()``) in ``load_toml``'s layout: run keys at the top,
    component options in ``[gen]``, ``[loss]``, ... tables, a table's ``name`` its component."""
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    options = config.get("options") or {}
    for key, value in config.items():
        if key in LEFT_OUT or key == "options" or value is None:
            continue
        if key in OPTION_SECTIONS and options.get(key):
            continue  # written as its table's name
        lines.append(f"{key} = {toml_value(value)}")
    for section in OPTION_SECTIONS:
        table = dict(options.get(section) or {})
        if not table:
            continue
        lines += ["", f"[{section}]"]
        if section in config and section != "metric":
            lines.append(f"name = {toml_value(config[section])}")
        nested = {k: v for k, v in table.items() if isinstance(v, dict)}
        lines += [f"{_key(k)} = {toml_value(v)}" for k, v in table.items() if k not in nested]
        for name, sub in nested.items():
            lines += ["", f"[{section}.{_key(name)}]", *(f"{_key(k)} = {toml_value(v)}" for k, v in sub.items())]
    return "\n".join(lines) + "\n"


def _key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() else json.dumps(key)
