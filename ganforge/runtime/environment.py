"""The process environment is input too: every variable ganforge or torch.distributed reads is
checked before any work, as flags are, and a bad one is one line naming it and the fix (exit 2).

Left unchecked, ``WORLD_SIZE=abc`` is a ValueError traceback, ``WORLD_SIZE=0`` a division by
zero, ``WORLD_SIZE=2`` without ``RANK`` a wait for a peer that never comes, and a typo such as
``GANFORGE_DAT=...`` is silently ignored.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping

from ganforge.errors import UsageError

SWITCHES = {"", "0", "1", "true", "false", "yes", "no", "on", "off"}
"""Values of an on/off variable (case-insensitive); empty is off."""

GANFORGE_VARIABLES = {
    "GANFORGE_DATA": "a folder with MNIST's IDX files (the mnist data set's data.root)",
    "GANFORGE_OP_REFERENCE": "1: run dense_act on its pure-PyTorch reference instead of ganforge._C",
    "GANFORGE_STRICT_PLUGINS": "1: a plugin that fails to load is an error, not a warning",
    "GANFORGE_TRACE_HOOKS": "1: print every hook call and its implementations to stderr",
    "GANFORGE_DISABLE_PLUGINS": "comma-separated plugin names not to load",
    "GANFORGE_RENDEZVOUS_TIMEOUT": "seconds a process started without torchrun waits for its peers (300)",
    "GANFORGE_CRASH_AT": "NAME[:K]: kill the process at a named point (the crash-safety tests)",
    "GANFORGE_PAUSE_AT": "NAME: wait for a signal at a named point (the signal tests)",
    "GANFORGE_NO_EXT": "1: build without the C++ extension (read by setup.py)",
    "GANFORGE_CUDA": "1: build the CUDA kernels too (read by setup.py)",
    "GANFORGE_WITH_CUDA": "1: build the CUDA kernels too (read by setup.py)",
    "GANFORGE_TEST_SEED": "the seed of the randomised tests",
    "GANFORGE_BENCH_QUICK": "1: the benchmarks' short smoke run",
    "GANFORGE_FIDELITY_REQUIRED": "1: the fidelity plugin's tests fail instead of skipping without torch-fidelity",
}
"""Every ``GANFORGE_*`` variable, with what it does: any other is a typo."""

SWITCH_VARIABLES = ("GANFORGE_OP_REFERENCE", "GANFORGE_STRICT_PLUGINS", "GANFORGE_TRACE_HOOKS",
                    "GANFORGE_NO_EXT", "GANFORGE_CUDA", "GANFORGE_WITH_CUDA", "GANFORGE_BENCH_QUICK",
                    "GANFORGE_FIDELITY_REQUIRED")

UNDER_TORCHRUN = "TORCHELASTIC_RUN_ID"
"""Set by torchrun in its workers: the rendezvous is done and MASTER_ADDR/PORT are torchrun's."""


def _integer(env: Mapping[str, str], name: str, low: int, fix: str, high: int | None = None) -> int | None:
    text = env.get(name)
    if text is None:
        return None
    try:
        value = int(text.strip())
    except ValueError:
        value = None
    if value is None or value < low or (high is not None and value > high):
        bound = f"an integer from {low} to {high}" if high is not None else f"an integer >= {low}"
        raise UsageError(f"environment variable {name}={text!r}: must be {bound}; {fix}")
    return value


def check_distributed(env: Mapping[str, str] = os.environ) -> None:
    """torch.distributed's variables, as ``ganforge run`` reads them (torchrun sets them all)."""
    launch = "launch several processes with torchrun (it sets them), or unset it to train in one process"
    world = _integer(env, "WORLD_SIZE", 1, launch)
    if world is None or world == 1:
        return
    if "RANK" not in env:
        raise UsageError(f"WORLD_SIZE={world} but RANK is not set: each of the {world} processes needs its "
                         f"RANK (0 to {world - 1}); launch with torchrun, which sets both, or unset WORLD_SIZE")
    _integer(env, "RANK", 0, f"each of the WORLD_SIZE={world} processes has one; torchrun sets it", world - 1)
    _integer(env, "LOCAL_RANK", 0, "torchrun sets it; unset it otherwise")
    if UNDER_TORCHRUN in env:
        return
    for name in ("MASTER_ADDR", "MASTER_PORT"):
        if not env.get(name, "").strip():
            raise UsageError(f"WORLD_SIZE={world} without torchrun needs {name}, where process 0 waits for the "
                             f"others (e.g. MASTER_ADDR=127.0.0.1 MASTER_PORT=29500); or launch with torchrun")
    _integer(env, "MASTER_PORT", 1, "a TCP port, such as 29500", 65535)
    _integer(env, "GANFORGE_RENDEZVOUS_TIMEOUT", 1, "seconds, such as 300")


def check_threads(env: Mapping[str, str] = os.environ) -> None:
    """OMP_NUM_THREADS: OpenMP takes a positive count (or a comma list, one per nesting level);
    anything else OpenMP ignores with a warning of its own, and the run is not what was asked."""
    text = env.get("OMP_NUM_THREADS")
    if text is None:
        return
    parts = text.split(",")
    if not all(p.strip().isdigit() and int(p) > 0 for p in parts):
        raise UsageError(f"environment variable OMP_NUM_THREADS={text!r}: must be a positive integer, such as "
                         f"OMP_NUM_THREADS=2 (or unset it; ganforge picks threads itself, see --threads)")


def check_ganforge_variables(env: Mapping[str, str] = os.environ) -> None:
    for name, text in env.items():
        if not name.startswith("GANFORGE_"):
            continue
        if name not in GANFORGE_VARIABLES:
            close = difflib.get_close_matches(name, GANFORGE_VARIABLES, n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            raise UsageError(f"environment variable {name} is not one ganforge reads; {hint}unset it "
                             f"(ganforge reads: {', '.join(sorted(GANFORGE_VARIABLES))})")
        if name in SWITCH_VARIABLES and text.strip().lower() not in SWITCHES:
            raise UsageError(f"environment variable {name}={text!r}: must be 1 or 0 (on or off); "
                             f"{GANFORGE_VARIABLES[name]}")
    crash = env.get("GANFORGE_CRASH_AT", "")
    point, colon, times = crash.partition(":")
    if crash and (not point or (colon and not (times.isdigit() and int(times) > 0))):
        raise UsageError(f"environment variable GANFORGE_CRASH_AT={crash!r}: must be NAME or NAME:K with K >= 1")


def check_environment(command: str | None, env: Mapping[str, str] = os.environ) -> None:
    """Everything ``command`` would read from the environment, checked before it does any work."""
    check_ganforge_variables(env)
    check_threads(env)
    if command == "run":
        check_distributed(env)
