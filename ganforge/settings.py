"""The one table of run settings. Everything else about a setting is derived from its row.

A row says a setting's name, kind, default, rule and help, and whether a component (a loss, a
data set) may declare its own default for it. From the table come the flags of ``ganforge run``
(:func:`add_flags`), the type checks of TOML files and run records (:func:`check_type`), the
value checks (:func:`validate`) and the documented flag table (:func:`markdown_table`, written to
``docs/configuration.md``). Adding a setting is one row here and one field in each of
:class:`~ganforge.config.RunConfig` and :class:`~ganforge.config.ResolvedConfig` (a test pins
that the three agree), plus the code that uses it.

This module imports nothing heavy: ``ganforge run --help`` reads it without torch.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ganforge.errors import ConfigError

PRECISIONS = ("fp32", "bf16", "auto", "fp16")  # resolved by ganforge.runtime.precision

OPTION_SECTIONS = ("gen", "disc", "loss", "data", "metric")
SEED_LIMIT = 2**63
AUGMENTATIONS = ("translation", "cutout", "color")  # ganforge.train.augment's operations


@dataclass(frozen=True)
class Rule:
    """A value check that a type cannot say: ``ok(value)`` and the words for the message
    ``--steps must be {words}, got 0``."""

    words: str
    ok: Callable[[Any], bool]


def at_least(n: int) -> Rule:
    return Rule(f"at least {n}", lambda v: v >= n)


OFF_OR_POSITIVE = Rule("0 (off) or positive", lambda v: v >= 0)
LEARNING_RATE = Rule("a positive learning rate", lambda v: v > 0 and math.isfinite(v))


@dataclass(frozen=True)
class Setting:
    """One run setting.

    ``kind`` is one of ``int``, ``float``, ``str``, ``bool``, ``pair`` (two numbers),
    ``names`` (a list of words) and ``threads`` (``auto`` or a count). ``default`` is ganforge's
    own value; ``None`` means the resolution fills it (``out``, ``disc``) or that it stays unset
    (``from_step``, ``recipe``). ``component`` marks the settings a loss or a data set may give
    its own default (WGAN's ``n_critic`` 5, the 2-D mixtures' ``z_dim`` 2). ``flag`` is the
    command-line spelling, ``None`` for settings only a TOML file or Python sets."""

    name: str
    kind: str
    default: Any
    help: str
    choices: tuple[str, ...] = ()
    rule: Rule | None = None
    component: bool = False
    flag: str | None = ""  # "" -> derived from the name; None -> no flag
    example: str | None = None
    default_text: str | None = None  # what the docs and --help say the default is, when not the value
    valid: str | None = None  # what the docs call a valid value, when the kind says too little

    @property
    def option(self) -> str | None:
        """``--batch-size`` for ``batch_size``; ``None`` when the setting has no flag."""
        if self.flag is None:
            return None
        return self.flag or f"--{self.name.replace('_', '-')}"

    @property
    def label(self) -> str:
        """How messages name the setting: its flag, or its config key when it has none."""
        return self.option or self.name

    def describe_default(self) -> str:
        if self.default_text is not None:
            return self.default_text
        if isinstance(self.default, bool):
            return str(self.default).lower()
        if isinstance(self.default, tuple):
            return ", ".join(str(v) for v in self.default) if self.default else "none"
        return "unset" if self.default is None else str(self.default)

    def words(self) -> str:
        """What a valid value is, for messages: the rule, the choices or the kind."""
        if self.valid is not None:
            return self.valid
        if self.rule is not None:
            return self.rule.words
        if self.choices:
            return f"one of {', '.join(self.choices)}"
        return KIND_WORDS[self.kind]


KIND_WORDS = {"prob": "a probability in [0, 1] or ada",
              "int": "a whole number", "float": "a number", "str": "a word", "bool": "true or false",
              "pair": "two numbers", "names": "a list of names", "threads": "'auto' or a number of threads"}

SETTINGS: tuple[Setting, ...] = (
    # -- what to train -----------------------------------------------------------------------
    Setting("gen", "str", "mlp", "generator name (`ganforge list`)", valid="a generator's name"),
    # disc's default is the fallback when the generator has no discriminator of its own name
    Setting("disc", "str", "mlp", "discriminator name", default_text="the generator's family if it has one, else mlp",
            valid="a discriminator's name"),
    Setting("loss", "str", "nonsat", "loss name: minimax, nonsat, wasserstein, wgan-gp, rpgan or a plugin's",
            valid="a loss's name"),
    Setting("data", "str", "mnist", "data set name: mnist, ring8, grid25, folder, digits or a plugin's",
            valid="a data set's name"),
    # -- how long and how big -------------------------------------------------------------------
    Setting("steps", "int", 12000, "generator steps", rule=at_least(1), component=True),
    Setting("batch_size", "int", 64, "batch size", rule=at_least(1), component=True),
    Setting("z_dim", "int", 100, "noise dimension", rule=at_least(1), component=True),
    # -- optimisation ---------------------------------------------------------------------------
    Setting("lr_g", "float", 2e-4, "generator learning rate", rule=LEARNING_RATE, component=True, example="2e-4"),
    Setting("lr_d", "float", 2e-4, "discriminator learning rate", rule=LEARNING_RATE, component=True,
            example="2e-4"),
    Setting("optimizer", "str", "adam", "optimiser of both networks", choices=("adam", "rmsprop", "sgd"),
            component=True, flag=None),
    Setting("betas", "pair", (0.5, 0.999), "Adam's betas", component=True, flag=None, example="[0.5, 0.999]",
            rule=Rule("two numbers in [0, 1)",
                      lambda v: len(v) == 2 and all(isinstance(b, (int, float)) and 0 <= b < 1 for b in v))),
    Setting("n_critic", "int", 1, "discriminator steps per generator step", rule=at_least(1), component=True),
    Setting("ema", "float", 0.999, "decay of the average of G's weights that draws pictures, samples and "
            "evaluations (0: off)", component=True, example="0.999",
            rule=Rule("a decay in [0, 1) such as 0.999 (0 turns it off)", lambda v: 0 <= v < 1)),
    Setting("ema_rampup", "float", 1.0, "how fast the average's span grows: about R x step / 9 steps until "
            "the decay takes over", example="4",
            rule=Rule("a positive number such as 1 (the default) or 4", lambda v: v > 0 and math.isfinite(v))),
    Setting("augment", "names", (), "differentiable augmentation of every input of D, real and fake, in both "
            "steps (DiffAugment): translation, cutout, color, comma-separated; for images", example='["translation"]',
            rule=Rule(f"augmentation names among {', '.join(AUGMENTATIONS)}",
                      lambda v: all(p.strip() in AUGMENTATIONS for n in v for p in n.split(",") if p.strip())),
            valid=f"some of {', '.join(AUGMENTATIONS)}"),
    Setting("augment_p", "prob", 1.0, "probability of each augmentation per sample, or ada: adapted from "
            "r_t = E[sign D(real)] toward --augment-target, starting at 0 (ADA)", example="0.5",
            rule=Rule("a probability in [0, 1] or ada", lambda v: v == "ada" or 0 <= v <= 1)),
    Setting("augment_target", "float", 0.6, "--augment-p ada: the r_t above which p rises", example="0.6",
            rule=Rule("a number in (0, 1) such as 0.6", lambda v: 0 < v < 1)),
    Setting("augment_ramp", "int", 100_000, "--augment-p ada: images in which p can go from 0 to 1 (ADA's "
            "500,000 suits runs of millions of images)", rule=at_least(1)),
    Setting("lr_schedule", "str", "constant", "learning-rate schedule: constant, or linear or cosine decay to 0",
            choices=("constant", "linear", "cosine")),
    Setting("warmup", "int", 0, "learning-rate warm-up steps", rule=Rule("a number of steps >= 0", lambda v: v >= 0)),
    Setting("on_nan", "str", "stop", "a non-finite loss or gradient: stop (the last good checkpoint stays) or "
            "skip the update, count it and go on", choices=("stop", "skip")),
    Setting("precision", "str", "fp32", "fp32, bf16 (autocast on CPU and CUDA; weights and optimiser stay "
            "float32), auto (bf16 where the device computes it natively: a recent GPU, a CPU with "
            "AVX512-BF16 or AMX; fp32 elsewhere, where bf16 is emulated and slow) or fp16 (autocast with "
            "gradient scaling; for CUDA, slow on the CPU)", choices=PRECISIONS),
    # -- where and how it runs ------------------------------------------------------------------
    Setting("seed", "int", 0, "random seed",
            rule=Rule("a whole number from 0 to 2**63 - 1", lambda v: 0 <= v < SEED_LIMIT)),
    Setting("device", "str", "auto", "auto, cpu or cuda", choices=("auto", "cpu", "cuda")),
    Setting("threads", "threads", 0, "CPU threads: auto (the fastest measured, re-checked as load changes) or N",
            default_text="auto", example='"auto"'),
    Setting("thread_invariant", "bool", False, "convolutional networks too train bit-identically at any thread "
            "count: convolutions take torch's im2col + GEMM path, not oneDNN (several times slower; the mlp "
            "networks are invariant without it)"),
    Setting("out", "str", None, "run folder", default_text="runs/DATA-GEN-LOSS-TIME", example='"runs/mine"',
            valid="a folder"),
    # -- what it writes -------------------------------------------------------------------------
    Setting("log_every", "int", 100, "log the losses every N steps (0: only the last)",
            rule=OFF_OR_POSITIVE),
    Setting("sample_every", "int", 1000, "save a sample picture every N steps (0: only the last)",
            rule=OFF_OR_POSITIVE),
    Setting("ckpt_every", "int", 2000, "checkpoint every N steps (0: only the last)", rule=OFF_OR_POSITIVE),
    Setting("keep", "int", 3, "checkpoints kept, newest first; `sample`/`eval --step N` read any of them",
            rule=at_least(1)),
    Setting("eval_every", "int", 0, "compute --eval-metric every N steps (0: off); logged beside the losses",
            rule=OFF_OR_POSITIVE),
    Setting("eval_metrics", "names", (), "metric for --eval-every (repeatable)", flag="--eval-metric",
            example='["fid"]'),
    Setting("eval_samples", "int", 2000, "generated samples per --eval-every evaluation", rule=OFF_OR_POSITIVE),
    # -- continuing a run -----------------------------------------------------------------------
    Setting("resume", "bool", False, "continue the run in --out with its recorded settings"),
    Setting("from_step", "int", None, "with --resume: continue from the kept checkpoint of step N instead of the "
            "latest (later checkpoints are moved aside, not deleted)", rule=Rule("a step >= 0", lambda v: v >= 0)),
    Setting("recipe", "str", None, "a named, shipped configuration (`ganforge list --kind recipe`): mnist, ring8, "
            "grid25, ...; --config, flags and --set override it", valid="a recipe's name"),
)

SETTING: dict[str, Setting] = {s.name: s for s in SETTINGS}
COMPONENT_SETTINGS: tuple[str, ...] = tuple(s.name for s in SETTINGS if s.component)


# -- checks ---------------------------------------------------------------------------------------


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_kind(kind: str, value: Any) -> bool:
    """Whether ``value`` has the setting's kind (``True`` is no number: TOML ``steps = true``)."""
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "float":
        return _number(value)
    if kind == "str":
        return isinstance(value, str)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "pair":
        return isinstance(value, (list, tuple)) and all(_number(v) for v in value)
    if kind == "names":
        return isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value)
    if kind == "prob":
        return value == "ada" or _number(value)
    if kind == "threads":
        return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))
    raise AssertionError(f"unknown setting kind {kind!r}")


def parse_threads(value: object) -> int:
    """The one rule of ``threads``, for the flag, TOML and Python alike: ``auto`` or 0 (measured)
    -> 0, else a count within the machine's reach."""
    from ganforge.runtime.threads import parse_threads as rule

    return rule(value)


def check_type(key: str, value: Any) -> None:
    """A config value of the wrong type (TOML ``steps = "ten"``) gets a message naming the key
    and an example; ``None`` means unset and passes."""
    if key == "options":
        if not (value is None or isinstance(value, dict)):
            raise ConfigError(f"config key 'options' must be a table of option tables, got {value!r}")
        return
    setting = SETTING[key]
    if value is None:
        return
    if setting.kind == "threads":
        parse_threads(value)
        return
    if setting.kind in ("pair", "names"):
        example = setting.example or "[...]"
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"config key {key!r} must be a list such as {example}, got {value!r}")
        if not is_kind(setting.kind, value):
            what = "two numbers" if setting.kind == "pair" else "names"
            raise ConfigError(f"config key {key!r} must be {what} such as {example}, got {value!r}")
        return
    if not is_kind(setting.kind, value):
        what = {"int": "a number", "float": "a number", "prob": "a number or 'ada'"}.get(setting.kind,
                                                                                     f"a {setting.kind}")
        raise ConfigError(f"config key {key!r} must be {what} such as {key} = {example_of(setting)}, got {value!r}")


def example_of(setting: Setting) -> str:
    if setting.example is not None:
        return setting.example
    if setting.kind == "str":
        return f'"{setting.default or "name"}"'
    if setting.kind == "bool":
        return "true"
    return str(setting.default if setting.default is not None else 1)


def check_value(setting: Setting, value: Any) -> None:
    """Refuse a value that cannot work, naming the flag (or key) and what would."""
    if value is None:
        return
    if setting.kind == "threads":
        parse_threads(value)
        return
    good = is_kind(setting.kind, value)
    if good and setting.choices:
        good = value in setting.choices
    if good and setting.rule is not None:
        good = setting.rule.ok(value)
    if not good:
        raise ConfigError(f"{setting.label} must be {setting.words()}, got {value!r}")


def validate(values: Mapping[str, Any]) -> None:
    """Check every setting in ``values`` against its row, and the option sections' names."""
    for setting in SETTINGS:
        if setting.name in values:
            check_value(setting, values[setting.name])
    for section in values.get("options") or {}:
        if section not in OPTION_SECTIONS:
            raise ConfigError(f"unknown option section {section!r}; use one of {', '.join(OPTION_SECTIONS)} "
                              f"(e.g. --set gen.hidden=256,512)")


# -- the command line -------------------------------------------------------------------------------


def text_to(kind: str, option: str) -> Callable[[str], Any]:
    """argparse's ``type=`` for a kind: only the parsing; the rule is :func:`validate`'s, so a
    flag, a TOML key and a Python value meet the same check."""

    def whole(text: str) -> int:
        try:
            return int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None

    def number(text: str) -> float:
        try:
            return float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number such as 2e-4, got {text!r}") from None

    def threads(text: str) -> int:
        try:
            return parse_threads(text)
        except ConfigError as exc:
            raise argparse.ArgumentTypeError(str(exc).removeprefix(f"{option} ")) from None

    def prob(text: str) -> float | str:
        return "ada" if text.strip().lower() == "ada" else number(text)

    return {"int": whole, "float": number, "threads": threads, "prob": prob}.get(kind, str)


def flag_help(setting: Setting) -> str:
    default = setting.describe_default()
    return f"{setting.help} (default: {default})" if default != "unset" else setting.help


def add_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per setting that has one, its parsing and help taken from the row."""
    for setting in SETTINGS:
        option = setting.option
        if option is None:
            continue
        if setting.kind == "bool":
            parser.add_argument(option, dest=setting.name, action="store_true", default=None, help=flag_help(setting))
        elif setting.kind == "names":
            parser.add_argument(option, dest=setting.name, action="append", metavar="NAME", help=flag_help(setting))
        else:
            metavar = ("|".join(setting.choices) if setting.choices
                       else {"int": "N", "float": "X", "threads": "auto|N", "prob": "X|ada"}.get(setting.kind, "NAME"))
            parser.add_argument(option, dest=setting.name, type=text_to(setting.kind, option), metavar=metavar,
                                help=flag_help(setting))


# -- the documentation ------------------------------------------------------------------------------

# The two arguments of ``ganforge run`` that are no setting: they carry settings.
CLI_ONLY: dict[str, str] = {
    "--config": "TOML file with run keys and [gen]/[disc]/[loss]/[data] tables",
    "--set": "component option, e.g. gen.hidden=256,512 or data.root=DIR (repeatable)",
}


def markdown_table() -> str:
    """The settings table as Markdown, one row per setting, for ``docs/configuration.md``."""
    lines = ["| flag | TOML key | default | valid values | what it sets | a loss or data set may set its default |",
             "|---|---|---|---|---|---|"]
    for s in SETTINGS:
        flag = f"`{s.option}`" if s.option else "(TOML, Python)"
        lines.append(f"| {flag} | `{s.name}` | {s.describe_default()} | {s.words()} | {s.help} | "
                     f"{'yes' if s.component else ''} |")
    for flag, text in CLI_ONLY.items():
        lines.append(f"| `{flag}` | | | | {text} | |")
    return "\n".join(line.replace("|  |", "| |") for line in lines) + "\n"


PAGE_HEAD = """\
# Configuration

<!-- Generated from ganforge/settings.py by `python -m ganforge.settings > docs/configuration.md`;
edit the settings table there, not this page. tests/test_settings.py fails when they disagree. -->

A run is configured by settings (`--steps`, `--lr-g`, ...) and by component options
(`--set gen.hidden=256,512`). Every setting can be given as a flag of `ganforge run`, as a key
of a `--config` TOML file or a recipe, or as a field of `ganforge.RunConfig` in Python.

## Precedence

Each layer overrides the ones before it, lowest first:

1. ganforge's defaults (the table below);
2. the components' declared defaults: the data set's, then the loss's (the 2-D mixtures' z_dim 2
   and batch size 100; WGAN's n_critic 5 and RMSprop 5e-5); only settings marked in the last
   column may be declared;
3. a recipe (`--recipe NAME`);
4. the `--config` TOML file;
5. command-line flags;
6. `--set SECTION.KEY=VALUE` options.

With `--resume`, the settings recorded by the run in `--out` take the place of layers 1 to 4:
only what is given now (flags, `--set`, a `--config` file) changes them, and what built the
networks and the data (the data set, generator, discriminator, loss, z_dim and the `gen`,
`disc` and `data` options) cannot change. `Trainer(RunConfig(resume=True, out=...))` resumes the
same way; there, a field left at its `RunConfig` default counts as not given.

In a TOML file, run keys sit at the top and component options in `[gen]`, `[disc]`, `[loss]`,
`[data]` and `[metric]` tables; a table's `name` key chooses the component
(`[loss]` with `name = "rpgan"` and `gamma = 0.5`). `threads = "auto"` is accepted, as on the
command line.

## Settings

"""

PAGE_TAIL = """
`--set` values are parsed as true/false, whole numbers, numbers, comma lists (`256,512`) or
words; `null` means unset. Each component checks its options against its factory's annotations:
`ganforge list` names the components, and a wrong option is refused with the component, the
option, what it expects and an example.
"""


def configuration_page() -> str:
    """``docs/configuration.md``, whole."""
    return PAGE_HEAD + markdown_table() + PAGE_TAIL


if __name__ == "__main__":
    print(configuration_page(), end="")
