"""RunConfig, the settings a user gave, and ResolvedConfig, the settings a run uses.

Precedence, lowest first: ganforge's defaults (:mod:`ganforge.settings`), the data set's and then
the loss's declared defaults (the 2-D mixtures' z_dim 2, WGAN's n_critic 5 and RMSprop 5e-5), a
``--recipe``, the ``--config`` TOML file, command-line flags, then ``--set`` options. A
``RunConfig`` field left ``None`` means "not chosen"; :func:`ganforge.resolve.resolve_settings`
(registry, resume) or :meth:`RunConfig.resolved` (no registry) fills it.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ganforge import settings
from ganforge.errors import ConfigError
from ganforge.settings import OPTION_SECTIONS, SETTING, check_type

__all__ = ["OPTION_SECTIONS", "ResolvedConfig", "RunConfig", "apply_set", "check_type", "load_toml",
           "merge_settings", "parse_value"]


@dataclass
class RunConfig:
    """The settings a user gave (flags, TOML, Python). ``None`` fields are not chosen yet; the
    resolution fills them (see :class:`ResolvedConfig`). Its fields are the rows of
    :data:`ganforge.settings.SETTINGS`, plus the component ``options``."""

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
    augment: tuple[str, ...] = ()
    augment_p: float | str = 1.0
    augment_target: float = 0.6
    augment_ramp: int = 100_000
    lr_schedule: str = "constant"
    warmup: int = 0
    on_nan: str = "stop"
    precision: str = "fp32"
    seed: int = 0
    device: str = "auto"
    threads: int | str = 0  # "auto" or 0: measured
    thread_invariant: bool = False
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

    def resolved(self, *component_defaults: dict[str, Any]) -> ResolvedConfig:
        """Every unset setting filled, without a registry: from the components' declared
        defaults (later ones win: the data set's, then the loss's), then ganforge's; ``disc``
        follows ``gen``. Checked once, here. :func:`ganforge.resolve.resolve_settings` is the
        full resolution (names checked, the discriminator's fallback, resume)."""
        values = self.to_dict()
        if values["disc"] is None:
            values["disc"] = values["gen"]
        for defaults in component_defaults:
            for key, value in defaults.items():
                if values.get(key) is None:
                    values[key] = value
        for setting in settings.SETTINGS:
            if values.get(setting.name) is None:
                values[setting.name] = setting.default
        settings.validate(values)
        if values["out"] is None:
            from ganforge.run.folder import default_out

            values["out"] = str(default_out(values["data"], values["gen"], values["loss"]))
        return ResolvedConfig.from_values(values)

    def validate(self) -> None:
        """Refuse values that cannot work, naming the flag and what would (the table's rules)."""
        settings.validate(self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        """Build from a mapping (a TOML file, a run's record), refusing unknown keys by name."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown config key(s) {', '.join(unknown)}; valid keys: {', '.join(sorted(known))}")
        values = dict(data)
        for key, value in values.items():
            check_type(key, value)
        for key in ("betas", "eval_metrics", "augment"):
            if values.get(key) is not None:
                values[key] = tuple(values[key])
        return cls(**values)


@dataclass(frozen=True)
class ResolvedConfig:
    """The settings a run uses: every one chosen and checked, none ``None`` that always has a
    value. Frozen, so what the trainer, the record and the hooks see cannot drift apart; make a
    changed copy with ``dataclasses.replace``. ``to_dict()`` has :class:`RunConfig`'s keys, so a
    record of it reads back with :meth:`RunConfig.from_dict`."""

    gen: str
    disc: str
    loss: str
    data: str
    steps: int
    batch_size: int
    z_dim: int
    lr_g: float
    lr_d: float
    optimizer: str
    betas: tuple[float, float]
    n_critic: int
    ema: float
    ema_rampup: float
    augment: tuple[str, ...]
    augment_p: float | str  # a probability, or "ada"
    augment_target: float
    augment_ramp: int
    lr_schedule: str
    warmup: int
    on_nan: str
    precision: str
    seed: int
    device: str
    threads: int  # 0: auto
    thread_invariant: bool
    out: str
    log_every: int
    sample_every: int
    ckpt_every: int
    keep: int
    eval_every: int
    eval_metrics: tuple[str, ...]
    eval_samples: int
    resume: bool
    from_step: int | None
    recipe: str | None
    options: dict[str, dict[str, Any]]

    @classmethod
    def from_values(cls, values: dict[str, Any]) -> ResolvedConfig:
        """From complete, checked values: numbers and lists in their canonical types."""
        values = dict(values)
        for setting in settings.SETTINGS:
            value = values[setting.name]
            if setting.kind == "float":
                values[setting.name] = float(value)
            elif setting.kind == "pair":
                values[setting.name] = tuple(float(v) for v in value)
            elif setting.kind == "names":  # "a,b" given once is two names
                values[setting.name] = tuple(p.strip() for v in value for p in v.split(",") if p.strip())
            elif setting.kind == "prob" and value != "ada":
                values[setting.name] = float(value)
            elif setting.kind == "threads":
                values[setting.name] = settings.parse_threads(value)
        values["options"] = {k: dict(v) for k, v in (values.get("options") or {}).items()}
        return cls(**values)

    def section(self, name: str) -> dict[str, Any]:
        """The ``--set name.key=value`` options of one section (``gen``, ``disc``, ...)."""
        return dict(self.options.get(name, {}))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


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
        if key in SETTING and not (key in OPTION_SECTIONS and isinstance(value, dict)):
            check_type(key, value)
    options = {k: raw.pop(k) for k in list(raw) if k in OPTION_SECTIONS and isinstance(raw[k], dict)}
    for section, table in options.items():  # TOML cannot hold `loss = "x"` and a [loss] table both
        if "name" in table and section != "metric":
            raw[section] = table.pop("name")
    if options:
        raw["options"] = {**raw.get("options", {}), **options}
    return raw
