"""The search space of ``ganforge tune``: ``--search KEY=LOW..HIGH[:log|:int]`` or ``KEY=A,B,C``.

A key is what ``--vary`` takes (a run setting or ``SECTION.OPTION``); a range becomes Optuna's
``suggest_float`` (``:log`` for a log-uniform draw, as learning rates want) or ``suggest_int``
(``:int``, or both ends whole numbers and the setting whole), a list its ``suggest_categorical``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ganforge.config import parse_value
from ganforge.errors import ConfigError
from ganforge.settings import SETTING
from ganforge.sweep.grid import Axis, check_key, parse_pairs


@dataclass(frozen=True)
class Param:
    key: str
    kind: str  # "float", "int" or "choice"
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    choices: tuple[Any, ...] = ()

    def suggest(self, trial: Any) -> Any:
        """The value Optuna's ``trial`` draws for this parameter (named by the key)."""
        if self.kind == "choice":
            return trial.suggest_categorical(self.key, list(self.choices))
        if self.kind == "int":
            return trial.suggest_int(self.key, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(self.key, self.low, self.high, log=self.log)

    def overlay(self, value: Any) -> dict[str, Any]:
        return Axis(self.key, (value,)).overlay(value)

    def describe(self) -> str:
        if self.kind == "choice":
            return f"{self.key} in {{{', '.join(map(str, self.choices))}}}"
        return f"{self.key} in [{self.low:g}, {self.high:g}]" + (" (log)" if self.log else "") + \
            (" (whole)" if self.kind == "int" else "")


def parse_search(text: str) -> Param:
    """``lr_g=1e-5..1e-3:log`` -> a log-uniform float; ``loss.r1=0..10`` -> a float;
    ``n_critic=1..5`` -> a whole number; ``loss=nonsat,rpgan`` -> a choice."""
    key, sep, rest = text.partition("=")
    key, rest = key.strip(), rest.strip()
    example = "e.g. lr_g=1e-5..1e-3:log, loss.r1=0..10, n_critic=1..5 or loss=nonsat,rpgan"
    if not sep or not key or not rest:
        raise ConfigError(f"--search expects KEY=LOW..HIGH[:log|:int] or KEY=A,B ({example}), got {text!r}")
    try:
        check_key(key)
    except ConfigError as exc:
        raise ConfigError(str(exc).replace("--vary", "--search")) from None
    if ".." not in rest:
        choices = tuple(parse_value(part) for part in rest.split(",") if part.strip())
        if len(choices) < 2:
            raise ConfigError(f"--search {text}: give a range LOW..HIGH or at least two choices ({example})")
        return Param(key, "choice", choices=choices)
    span, _, flags = rest.partition(":")
    low_text, _, high_text = span.partition("..")
    try:
        low, high = float(low_text), float(high_text)
    except ValueError:
        raise ConfigError(f"--search {text}: LOW and HIGH must be numbers ({example})") from None
    options = {f.strip() for f in flags.split(",") if f.strip()}
    if options - {"log", "int"}:
        raise ConfigError(f"--search {text}: the flags after ':' are log and int, got {flags!r}")
    if not low < high:
        raise ConfigError(f"--search {text}: LOW must be below HIGH")
    log = "log" in options
    if log and low <= 0:
        raise ConfigError(f"--search {text}: a log range needs LOW > 0")
    setting = SETTING.get(key)
    whole = "int" in options or (setting is not None and setting.kind == "int")
    if whole and not (low.is_integer() and high.is_integer()):
        raise ConfigError(f"--search {text}: {key} takes whole numbers; give whole ends")
    return Param(key, "int" if whole else "float", low, high, log)


def parse_enqueue(text: str, params: list[Param]) -> dict[str, Any]:
    """``lr_g=1e-4,lr_d=1e-4`` -> ``{"lr_g": 0.0001, "lr_d": 0.0001}``: values of searched keys
    (a key not given is drawn by the sampler as usual)."""
    searched = {p.key: p for p in params}
    values = parse_pairs(text, "--enqueue")
    for key, value in values.items():
        if key not in searched:
            raise ConfigError(f"--enqueue {key}: not a searched key; searched: {', '.join(searched)}")
        param = searched[key]
        if param.kind == "choice" and value not in param.choices:
            raise ConfigError(f"--enqueue {key}={value}: not one of its choices ({', '.join(map(str, param.choices))})")
        if param.kind != "choice" and not (isinstance(value, (int, float)) and param.low <= value <= param.high):
            raise ConfigError(f"--enqueue {key}={value}: outside its range [{param.low:g}, {param.high:g}]")
    return values
