"""The environment is input: WORLD_SIZE, RANK, LOCAL_RANK, MASTER_ADDR/PORT, OMP_NUM_THREADS and
every GANFORGE_* variable are checked like flags (one line naming the variable, exit 2), and a
process started by hand that waits for its peers says so and gives up with a message."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ganforge.cli.main import main
from ganforge.errors import UsageError
from ganforge.runtime.environment import GANFORGE_VARIABLES, check_environment

ROOT = Path(__file__).resolve().parents[1]
RUN = ["run", "--data", "ring8", "--steps", "2", "--batch-size", "8", "--set", "gen.hidden=4", "--set",
       "disc.hidden=4", "--sample-every", "0", "--threads", "1"]


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("GANFORGE_") and k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR",
                                                          "MASTER_PORT", "OMP_NUM_THREADS")}
    return {**env, "CI": "true", **extra}


@pytest.mark.parametrize("env, named", [
    ({"WORLD_SIZE": "abc"}, "WORLD_SIZE"),
    ({"WORLD_SIZE": "0"}, "WORLD_SIZE"),
    ({"WORLD_SIZE": "-3"}, "WORLD_SIZE"),
    ({"WORLD_SIZE": "2"}, "RANK is not set"),
    ({"WORLD_SIZE": "2", "RANK": "x"}, "RANK"),
    ({"WORLD_SIZE": "2", "RANK": "2"}, "RANK"),
    ({"WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "-1"}, "LOCAL_RANK"),
    ({"WORLD_SIZE": "2", "RANK": "0"}, "MASTER_ADDR"),
    ({"WORLD_SIZE": "2", "RANK": "0", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "70000"}, "MASTER_PORT"),
    ({"OMP_NUM_THREADS": "abc"}, "OMP_NUM_THREADS"),
    ({"OMP_NUM_THREADS": "0"}, "OMP_NUM_THREADS"),
    ({"GANFORGE_DAT": "/x"}, "did you mean GANFORGE_DATA"),
    ({"GANFORGE_OP_REFERENCE": "maybe"}, "GANFORGE_OP_REFERENCE"),
    ({"GANFORGE_CRASH_AT": "x:0"}, "GANFORGE_CRASH_AT"),
])
def test_a_bad_variable_is_one_line_naming_it(env, named):
    with pytest.raises(UsageError, match=re.escape(named)):
        check_environment("run", env)


def test_good_environments_pass():
    check_environment("run", {})
    check_environment("run", {"WORLD_SIZE": "1", "OMP_NUM_THREADS": "2", "GANFORGE_STRICT_PLUGINS": "yes"})
    check_environment("run", {"WORLD_SIZE": "2", "RANK": "1", "TORCHELASTIC_RUN_ID": "x"})  # torchrun's own
    check_environment("run", {"WORLD_SIZE": "2", "RANK": "1", "MASTER_ADDR": "h", "MASTER_PORT": "29500"})
    check_environment("list", {"WORLD_SIZE": "abc"})  # only `run` reads torch.distributed's variables


def test_every_ganforge_variable_in_the_project_is_known():
    """A variable the code, tests, build or CI read must be in the table, or users of it get exit 2."""
    used = set()
    for path in [*ROOT.glob("ganforge/**/*.py"), *ROOT.glob("tests/*.py"), *ROOT.glob("benchmarks/*.py"),
                 *ROOT.glob("plugins/*/**/*.py"), ROOT / "setup.py", ROOT / "Makefile", ROOT / ".ci" / "run",
                 *ROOT.glob("tools/*.sh")]:
        if path.is_file():
            used |= set(re.findall(r"GANFORGE_[A-Z_]*[A-Z]", path.read_text(errors="replace")))
    used -= {"GANFORGE_DAT", "GANFORGE_DATAX", "GANFORGE_VARIABLES"}  # the typos this file tests; the table
    assert used <= set(GANFORGE_VARIABLES), used - set(GANFORGE_VARIABLES)


@pytest.mark.parametrize("env", [{"WORLD_SIZE": "abc"}, {"WORLD_SIZE": "2"}, {"GANFORGE_DAT": "x"},
                                 {"OMP_NUM_THREADS": "-1"}])
def test_the_command_exits_2_with_one_line(env, tmp_path):
    result = subprocess.run([sys.executable, "-m", "ganforge", *RUN, "--out", str(tmp_path / "r")],
                            capture_output=True, text=True, env=clean_env(**env), timeout=120)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    # OpenMP's runtime reads OMP_NUM_THREADS when torch loads it and prints its own line first
    ours = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("libgomp:")]
    assert len(ours) == 1 and ours[0].startswith("error: ") and next(iter(env)) in ours[0], result.stderr
    assert not (tmp_path / "r").exists()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_a_process_started_by_hand_says_it_waits_and_gives_up_with_a_message(tmp_path):
    env = clean_env(WORLD_SIZE="2", RANK="0", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()),
                    GANFORGE_RENDEZVOUS_TIMEOUT="2")
    result = subprocess.run([sys.executable, "-m", "ganforge", *RUN, "--out", str(tmp_path / "r")],
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 1, result.stderr
    assert "waiting up to 2 s for the other processes" in result.stderr
    assert "did not join" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
def test_two_processes_started_by_hand_train_together(tmp_path):
    port = str(free_port())
    procs = [subprocess.Popen([sys.executable, "-m", "ganforge", *RUN, "--steps", "10",
                               "--out", str(tmp_path / f"r{r}")],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env=clean_env(WORLD_SIZE="2", RANK=str(r), MASTER_ADDR="127.0.0.1", MASTER_PORT=port))
             for r in (0, 1)]
    outputs = [p.communicate(timeout=180)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert (tmp_path / "r0").is_dir() and not (tmp_path / "r1").exists()


VALUES = ["", "0", "1", "2", "-3", "abc", "65536", "1e3", " 2 ", "127.0.0.1", "x:0", "on"]
NAMES = ["WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "OMP_NUM_THREADS",
         "GANFORGE_OP_REFERENCE", "GANFORGE_STRICT_PLUGINS", "GANFORGE_TRACE_HOOKS", "GANFORGE_DISABLE_PLUGINS",
         "GANFORGE_CRASH_AT", "GANFORGE_DATAX", "GANFORGE_RENDEZVOUS_TIMEOUT"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(env=st.dictionaries(st.sampled_from(NAMES), st.sampled_from(VALUES), max_size=4),
       command=st.sampled_from(["run", "list", "sample", "eval"]))
def test_random_environments_and_commands_never_end_in_a_traceback(tmp_path, monkeypatch, capsys, env, command):
    for name in NAMES:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    if "MASTER_ADDR" in env or "MASTER_PORT" in env:  # a valid hand-started job waits for its peers: briefly
        monkeypatch.setenv("GANFORGE_RENDEZVOUS_TIMEOUT", "1")
        if env.get("MASTER_PORT", "").isdigit():  # never a port something else listens on
            monkeypatch.setenv("MASTER_PORT", str(free_port()))
    monkeypatch.setenv("GANFORGE_CRASH_AT", "")  # never kill the test process itself
    out = tmp_path / "r"
    shutil.rmtree(out, ignore_errors=True)
    args = {"run": [*RUN, "--steps", "1", "--out", str(out)], "list": ["list", "--kind", "loss"],
            "sample": ["sample", str(tmp_path / "none"), "-n", "2"], "eval": ["eval", str(tmp_path / "none")]}[command]
    code = main(args)
    err = capsys.readouterr().err
    assert code in (0, 1, 2) and "Traceback" not in err, (env, args, err)
