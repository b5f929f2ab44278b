"""Named, shipped run configurations: ``ganforge run --recipe NAME``.

A recipe is a TOML file like ``--config`` takes (run keys at the top, ``[gen]``, ``[disc]``,
``[loss]``, ``[data]`` tables) whose first comment line describes it and whose comments state the
source of its settings. Recipes are components like any other: this module is a plugin that
registers the TOML files next to it through ``ganforge_register_recipes``, and a third-party
package can register its own. Precedence: a recipe sits above the data set's and the loss's
declared defaults and below ``--config``, flags and ``--set``.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from ganforge.config import load_toml
from ganforge.hookspecs import Register, hookimpl

HERE = Path(__file__).parent


def recipe_description(path: Path) -> str:
    """The TOML file's first comment line, without the ``#``."""
    for line in path.read_text().splitlines():
        if line.startswith("#"):
            return line.lstrip("#").strip()
    return ""


def load_recipe(path: Path) -> dict[str, Any]:
    """The recipe's settings, as ``load_toml`` reads any config file."""
    return load_toml(path)


@hookimpl
def ganforge_register_recipes(register: Register) -> None:
    for path in sorted(HERE.glob("*.toml")):
        register(path.stem, functools.partial(load_recipe, path), recipe_description(path))
