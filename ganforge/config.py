"""RunConfig: what a run needs, merged from defaults, the loss's own needs, TOML and flags.

Order of precedence, lowest first: ganforge's defaults, the loss plugin's declared defaults
(e.g. WGAN's n_critic 5 and RMSprop 5e-5), the ``--config`` TOML file, then command-line flags and
``--set`` options. Fields left ``None`` mean "not chosen yet" until :meth:`RunConfig.resolved`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomllib

from ganforge.errors import ConfigError

OPTION_SECTIONS = ("gen", "disc", "loss", "data", "metric")
OPTIMIZERS = ("adam", "rmsprop", "sgd")
DEVICES = ("auto", "cpu", "cuda")

# ganforge's own defaults for what a loss may override: the DCGAN-paper Adam settings.
TRAINING_DEFAULTS: dict[str, Any] = {
    "steps": 12000,
    "batch_size": 64,
    "z_dim": 100,
    "n_critic": 1,
    "optimizer": "adam",
    "lr_g": 2e-4,
    "lr_d": 2e-4,
    "betas": (0.5, 0.999),
    "ema": 0.999,
}


@dataclass
class RunConfig:
    """Everything a training run needs. ``None`` fields are filled by :meth:`resolved`."""

    gen: str = "mlp"
    disc: str | None = None
    loss: str = "nonsat"
    data: str = "mnist"
    steps: int | None = None
    batch_size: int | None = None
    z_dim: int | None = None
    lr_g: float | None = None
    lr_d: float | None = None
    optimizer: str | None = None
    betas: tuple[float, float] | None = None
    n_critic: int | None = None
    ema: float | None = None
    ema_rampup: float = 1.0
    lr_schedule: str = "constant"
    warmup: int = 0
    on_nan: str = "stop"
    precision: str = "fp32"
    seed: int = 0
    device: str = "auto"
    threads: int = 0
    out: str | None = None
    log_every: int = 100
    sample_every: int = 1000
    ckpt_every: int = 2000
    keep: int = 3
    eval_every: int = 0
    eval_metrics: tuple[str, ...] = ()
    eval_samples: int = 2000
    resume: bool = False
    from_step: int | None = None
    recipe: str | None = None
    options: dict[str, dict[str, Any]] = field(default_factory=dict)

    def section(self, name: str) -> dict[str, Any]:
        """The ``--set name.key=value`` options of one section (``gen``, ``disc``, ...)."""
        return dict(self.options.get(name, {}))

    def resolved(self, *component_defaults: dict[str, Any]) -> RunConfig:
        """A copy with every ``None`` filled from the components' declared defaults (later ones
        win: the trainer passes the data set's, then the loss's), then from ganforge's."""
        merged = dict(TRAINING_DEFAULTS)
        for defaults in component_defaults:
            merged.update(defaults)
        out = dataclasses.replace(self, options={k: dict(v) for k, v in self.options.items()})
        for key, default in merged.items():
            if getattr(out, key) is None:
                setattr(out, key, default)
        if out.disc is None:
            out.disc = out.gen
        if out.betas is not None:
            out.betas = tuple(float(b) for b in out.betas)  # type: ignore[assignment]
        out.validate()
        return out

    def validate(self) -> None:
        """Refuse values that cannot work, naming the flag and a valid example."""
        positive = ("steps", "batch_size", "z_dim", "keep")
        for name in positive:
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ConfigError(f"--{_flag(name)} must be at least 1, got {getattr(self, name)}")
        for name in ("log_every", "sample_every", "ckpt_every", "eval_every"):
            if getattr(self, name) < 0:
                raise ConfigError(f"--{_flag(name)} must be 0 (off) or positive, got {getattr(self, name)}")
        if self.n_critic is not None and self.n_critic < 1:
            raise ConfigError(f"--n-critic must be at least 1, got {self.n_critic}")
        for name in ("lr_g", "lr_d"):
            value = getattr(self, name)
            if value is not None and not (value > 0 and math.isfinite(value)):
                raise ConfigError(f"--{_flag(name)} must be a positive learning rate, got {value}")
        if self.ema is not None and not (isinstance(self.ema, (int, float)) and 0 <= self.ema < 1):
            raise ConfigError(f"--ema must be a decay in [0, 1) such as 0.999 (0 turns it off), got {self.ema!r}")
        if not (isinstance(self.ema_rampup, (int, float)) and not isinstance(self.ema_rampup, bool)
                and self.ema_rampup > 0 and math.isfinite(self.ema_rampup)):
            raise ConfigError(f"--ema-rampup must be a positive number such as 1 (the default) or 4, got "
                              f"{self.ema_rampup!r}")
        if self.lr_schedule not in ("constant", "linear", "cosine"):
            raise ConfigError(f"--lr-schedule must be constant, linear or cosine, got {self.lr_schedule!r}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or not 0 <= self.seed < 2**63:
            raise ConfigError(f"--seed must be a whole number from 0 to 2**63 - 1, got {self.seed!r}")
        if self.precision not in ("fp32", "bf16", "fp16"):
            raise ConfigError(f"--precision must be fp32, bf16 or fp16, got {self.precision!r}")
        if self.on_nan not in ("stop", "skip"):
            raise ConfigError(f"--on-nan must be stop or skip, got {self.on_nan!r}")
        if not isinstance(self.warmup, int) or self.warmup < 0:
            raise ConfigError(f"--warmup must be a number of steps >= 0, got {self.warmup!r}")
        if self.optimizer is not None and self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        if not isinstance(self.threads, int) or self.threads < 0:
            raise ConfigError(f"threads must be 0 (auto: measured) or a positive count, got {self.threads!r}")
        if self.device not in DEVICES:
            raise ConfigError(f"--device must be one of {', '.join(DEVICES)}, got {self.device!r}")
        if self.betas is not None and (len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas)):
            raise ConfigError(f"betas must be two numbers in [0, 1), got {self.betas}")
        for section in self.options:
            if section not in OPTION_SECTIONS:
                raise ConfigError(
                    f"unknown option section {section!r}; use one of {', '.join(OPTION_SECTIONS)} "
                    f"(e.g. --set gen.hidden=256,512)"
                )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        """Build from a mapping (TOML or config.json), refusing unknown keys by name."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown config key(s) {', '.join(unknown)}; valid keys: {', '.join(sorted(known))}")
        values = dict(data)
        for key, value in values.items():
            check_type(key, value)
        for key in ("betas", "eval_metrics"):
            if values.get(key) is not None:
                values[key] = tuple(values[key])
        return cls(**values)


_KINDS: dict[str, tuple[type, ...]] = {"int": (int,), "float": (int, float), "str": (str,), "bool": (bool,)}


def check_type(key: str, value: Any) -> None:
    """A config value of the wrong type (TOML ``steps = "ten"``) gets a message naming the key."""
    if value is None or key == "options":
        if key == "options" and not (value is None or isinstance(value, dict)):
            raise ConfigError(f"config key 'options' must be a table of option tables, got {value!r}")
        return
    annotation = str(RunConfig.__dataclass_fields__[key].type)
    if annotation.startswith("tuple"):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"config key {key!r} must be a list such as [0.5, 0.999], got {value!r}")
        if key == "betas" and not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
            raise ConfigError(f"config key 'betas' must be two numbers such as [0.5, 0.999], got {value!r}")
        return
    kind = annotation.split("|")[0].strip()
    expected = _KINDS.get(kind)
    if expected is None:
        return
    wrong_bool = isinstance(value, bool) and kind != "bool"
    if wrong_bool or not isinstance(value, expected):
        example = {"int": "12000", "float": "2e-4", "str": '"mnist"', "bool": "true"}[kind]
        raise ConfigError(f"config key {key!r} must be {'a number' if kind in ('int', 'float') else 'a ' + kind}"
                          f" such as {key} = {example}, got {value!r}")


def merge_settings(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``override`` on top of ``base`` (both in ``load_toml``'s layout); option tables merge key by
    key, so a recipe's ``[disc]`` survives a ``--config`` that sets only ``disc.hidden``."""
    merged = {**base, **{k: v for k, v in override.items() if k != "options"}}
    options = {k: dict(v) for k, v in base.get("options", {}).items()}
    for section, values in override.get("options", {}).items():
        options.setdefault(section, {}).update(values)
    if options:
        merged["options"] = options
    return merged


def _flag(name: str) -> str:
    return name.replace("_", "-")


def parse_value(text: str) -> Any:
    """Turn a ``--set`` value into a Python value: bool, int, float, comma list, or string."""
    text = text.strip()
    if "," in text:
        return tuple(parse_value(part) for part in text.split(",") if part.strip())
    lowered = text.lower()
    if lowered in {"true", "false"}:
        return lowered == "true"
    if lowered == "null":  # "none" stays a word: gen.norm=none means "no normalisation"
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def apply_set(options: dict[str, dict[str, Any]], assignments: list[str]) -> dict[str, dict[str, Any]]:
    """Merge ``KEY=VALUE`` strings such as ``gen.hidden=256,512`` into nested options."""
    merged = {k: dict(v) for k, v in options.items()}
    for item in assignments:
        key, sep, value = item.partition("=")
        section, dot, name = key.strip().partition(".")
        if not sep or not dot or not name:
            raise ConfigError(f"--set expects SECTION.KEY=VALUE (e.g. gen.hidden=256,512), got {item!r}")
        if section not in OPTION_SECTIONS:
            raise ConfigError(f"--set {item!r}: unknown section {section!r}; use one of {', '.join(OPTION_SECTIONS)}")
        merged.setdefault(section, {})[name] = parse_value(value)
    return merged


def load_toml(path: str | Path) -> dict[str, Any]:
    """Read a TOML config: top-level run keys plus ``[gen]``, ``[disc]``, ... option tables.

    A table's ``name`` key chooses the component (``[loss]`` with ``name = "nonsat"`` and
    ``r1 = 1.0``), since TOML cannot have both a ``loss`` key and a ``[loss]`` table."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            raw = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist; check the --config path") from None
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    if "options" in raw:
        raise ConfigError(f"{path}: component options go in tables such as [gen] or [loss], not in an "
                          f"'options' key")
    for key, value in raw.items():
        if key in RunConfig.__dataclass_fields__ and not (key in OPTION_SECTIONS and isinstance(value, dict)):
            check_type(key, value)
    options = {k: raw.pop(k) for k in list(raw) if k in OPTION_SECTIONS and isinstance(raw[k], dict)}
    for section, table in options.items():  # TOML cannot hold `loss = "x"` and a [loss] table both
        if "name" in table and section != "metric":
            raw[section] = table.pop("name")
    if options:
        raw["options"] = {**raw.get("options", {}), **options}
    return raw
