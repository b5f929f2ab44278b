"""Random bytes and mutated valid files fed to every loader and to the command itself: the only
outcomes are success or one of ganforge's own errors (exit 2 or 1, one line, no traceback).

Hypothesis draws the inputs; each example runs in-process through ``ganforge.cli.main.main``,
which is exactly what the console script calls, so an exception escaping it is a traceback a user
would see.
"""

from __future__ import annotations

import gzip
import json
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ganforge.cli.main import main
from ganforge.config import RunConfig, load_toml
from ganforge.data.idx import read_idx, write_idx
from ganforge.data.mnist import MNIST
from ganforge.errors import CheckpointError, ConfigError, DataError
from ganforge.run.checkpoint import _sha256, load_checkpoint

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def run_cli(args: list[str], capsys) -> tuple[int, str]:
    """The command's exit code and what it printed to stderr; fails on any escaping exception."""
    code = main(args)
    return code, capsys.readouterr().err


# -- checkpoints -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def good_run(tmp_path_factory) -> Path:
    """A finished tiny run whose checkpoint the tests damage copy by copy."""
    out = tmp_path_factory.mktemp("good") / "run"
    code = main(["run", "--data", "ring8", "--steps", "3", "--z-dim", "2", "--threads", "1", "--out", str(out),
                 "--set", "gen.hidden=8", "--set", "disc.hidden=8", "--sample-every", "0"])
    assert code == 0
    return out


def damaged_copy(good_run: Path, tmp_path: Path, name: str, content: bytes, rehash: bool) -> Path:
    run = tmp_path / "run"
    if run.exists():
        shutil.rmtree(run)
    shutil.copytree(good_run, run)
    ckpt = run / "checkpoints" / (run / "checkpoints" / "latest").read_text().strip()
    (ckpt / name).write_bytes(content)
    if rehash and name != "manifest.json":  # make the damage pass the checksum: the loader must still cope
        manifest = json.loads((ckpt / "manifest.json").read_text())
        manifest["sha256"][name] = _sha256(ckpt / name)
        (ckpt / "manifest.json").write_text(json.dumps(manifest))
    return run


def mutate(data: bytes, positions: list[int], values: list[int], cut: int | None) -> bytes:
    out = bytearray(data)
    for p, v in zip(positions, values, strict=False):  # hypothesis draws the two lists apart: pairs up to the shorter
        if out:
            out[p % len(out)] = v
    return bytes(out[:cut] if cut is not None else out)


FILES = ["manifest.json", "generator.safetensors", "discriminator.safetensors", "generator_ema.safetensors",
         "state.safetensors", "state.json"]


@SETTINGS
@given(name=st.sampled_from(FILES), positions=st.lists(st.integers(0, 10**6), max_size=8),
       values=st.lists(st.integers(0, 255), max_size=8), cut=st.none() | st.integers(0, 400),
       rehash=st.booleans())
def test_mutated_checkpoints_give_one_line_or_load(good_run, tmp_path, capsys, name, positions, values, cut, rehash):
    ckpt = good_run / "checkpoints" / (good_run / "checkpoints" / "latest").read_text().strip()
    run = damaged_copy(good_run, tmp_path, name, mutate((ckpt / name).read_bytes(), positions, values, cut), rehash)
    code, err = run_cli(["sample", str(run), "-n", "4", "-o", str(tmp_path / "x.npy")], capsys)
    assert code in (0, 1, 2) and "Traceback" not in err
    if code:
        assert err.startswith("error:") and len(err.strip().splitlines()) <= 3, err
    code, err = run_cli(["run", "--out", str(run), "--steps", "4", "--resume", "--sample-every", "0"], capsys)
    assert code in (0, 1, 2) and "Traceback" not in err


@SETTINGS
@given(content=st.binary(max_size=300))
def test_random_bytes_as_a_checkpoint_file_are_a_checkpoint_error(good_run, tmp_path, content):
    for name in ("manifest.json", "state.json", "state.safetensors", "generator.safetensors"):
        run = damaged_copy(good_run, tmp_path, name, content, rehash=True)
        ckpt = run / "checkpoints" / (run / "checkpoints" / "latest").read_text().strip()
        try:
            load_checkpoint(ckpt)
        except CheckpointError:
            pass


def test_a_checkpoint_of_another_architecture_is_refused_in_one_line(good_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(good_run, run)
    record = json.loads((run / "config.json").read_text())
    record["config"]["options"]["gen"]["hidden"] = [16]
    (run / "config.json").write_text(json.dumps(record))
    code, err = run_cli(["sample", str(run), "-n", "4", "-o", str(tmp_path / "x.npy")], capsys)
    assert code == 2 and "does not fit" in err and "Traceback" not in err


def test_the_checkpoint_state_holds_no_pickle(good_run):
    ckpt = good_run / "checkpoints" / (good_run / "checkpoints" / "latest").read_text().strip()
    names = sorted(p.name for p in ckpt.iterdir())
    assert not [n for n in names if n.endswith((".pt", ".pth", ".pkl", ".bin"))], names
    state = load_checkpoint(ckpt).state
    assert {"opt_g", "opt_d", "rng", "batches"} <= state.keys()


# -- configuration files -----------------------------------------------------------------------

TOML_VALUES = st.one_of(st.integers(-5, 10**6), st.floats(allow_nan=True), st.booleans(), st.text(max_size=8),
                        st.lists(st.one_of(st.integers(-3, 3), st.floats(-2, 2), st.text(max_size=3)), max_size=3))
KEYS = sorted(f.name for f in RunConfig.__dataclass_fields__.values()) + ["gen", "disc", "loss", "data", "metric"]


def toml_value(value) -> str:
    if not isinstance(value, float) or np.isfinite(value):
        return json.dumps(value)
    return "nan" if value != value else ("inf" if value > 0 else "-inf")


@SETTINGS
@given(items=st.dictionaries(st.sampled_from(KEYS), TOML_VALUES, max_size=4),
       tables=st.dictionaries(st.sampled_from(["gen", "disc", "loss", "data"]),
                              st.dictionaries(st.sampled_from(["hidden", "norm", "dropout", "r1", "gamma", "name",
                                                               "std", "x"]),
                                              TOML_VALUES, max_size=2), max_size=2))
def test_any_toml_config_is_accepted_or_refused_in_one_line(tmp_path, capsys, items, tables):
    lines = [f"{k} = {toml_value(v)}" for k, v in items.items() if k not in tables]
    for table, values in tables.items():
        lines += [f"[{table}]"] + [f"{k} = {toml_value(v)}" for k, v in values.items()]
    path = tmp_path / "c.toml"
    path.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    shutil.rmtree(out, ignore_errors=True)
    code, err = run_cli(["run", "--config", str(path), "--data", "ring8", "--steps", "2", "--out", str(out),
                         "--sample-every", "0", "--threads", "1", "--set", "gen.hidden=4", "--set", "disc.hidden=4",
                         "--batch-size", "8"], capsys)
    assert code in (0, 1, 2) and "Traceback" not in err, err


@SETTINGS
@given(content=st.binary(max_size=200))
def test_random_bytes_as_a_toml_file_are_a_config_error(tmp_path, content):
    path = tmp_path / "c.toml"
    path.write_bytes(content)
    try:
        RunConfig.from_dict({k: v for k, v in load_toml(path).items() if k != "options"})
    except ConfigError:
        pass


def test_a_toml_file_that_is_not_utf8_is_refused(tmp_path, capsys):
    path = tmp_path / "c.toml"
    path.write_bytes(b'data = "\xff\xfe"\n')
    code, err = run_cli(["run", "--config", str(path), "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "c.toml" in err


# -- data files --------------------------------------------------------------------------------


def idx_bytes(images: np.ndarray) -> bytes:
    return bytes([0, 0, 0x08, images.ndim]) + struct.pack(f">{images.ndim}I", *images.shape) + images.tobytes()


@SETTINGS
@given(positions=st.lists(st.integers(0, 2000), max_size=6), values=st.lists(st.integers(0, 255), max_size=6),
       cut=st.none() | st.integers(0, 60), gz=st.booleans())
def test_mutated_idx_files_are_a_data_error(tmp_path, positions, values, cut, gz):
    images = np.random.default_rng(0).integers(0, 256, (3, 28, 28), dtype=np.uint8)
    raw = mutate(idx_bytes(images), positions, values, cut)
    if gz:
        raw = mutate(gzip.compress(raw), positions[:2], values[:2], None)
    path = tmp_path / ("train-images-idx3-ubyte" + (".gz" if gz else ""))
    for stale in tmp_path.glob("train-images*"):
        stale.unlink()
    path.write_bytes(raw)
    try:
        read_idx(path)
        MNIST(root=str(tmp_path))
    except DataError:
        pass


@pytest.mark.parametrize("case", ["labels_of_another_length", "empty_images", "float_images", "test_of_another_size"])
def test_inconsistent_mnist_folders_are_refused_at_load(tmp_path, capsys, case):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (40, 28, 28), dtype=np.uint8)
    write_idx(tmp_path / "train-images-idx3-ubyte", images[:0, :0, :0] if case == "empty_images" else images)
    n_labels = 39 if case == "labels_of_another_length" else 40
    write_idx(tmp_path / "train-labels-idx1-ubyte", rng.integers(0, 10, n_labels, dtype=np.uint8))
    if case == "float_images":
        (tmp_path / "train-images-idx3-ubyte").write_bytes(
            bytes([0, 0, 0x0D, 3]) + struct.pack(">3I", 40, 28, 28) + np.full((40, 28, 28), np.nan, ">f4").tobytes())
    if case == "test_of_another_size":
        write_idx(tmp_path / "t10k-images-idx3-ubyte", images[:, :20, :20])
    code, err = run_cli(["run", "--data", "mnist", "--set", f"data.root={tmp_path}", "--steps", "1",
                         "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "Traceback" not in err and str(tmp_path) in err, err
    assert not (tmp_path / "o").exists()


# -- the command line --------------------------------------------------------------------------

WORDS = ["run", "sample", "eval", "list", "doctor", "--steps", "--data", "--loss", "--gen", "--out", "--set", "-n",
         "--resume", "--batch-size", "--lr-g", "--ema", "--threads", "--recipe", "--config", "--kind", "-o",
         "ring8", "grid25", "nope", "0", "-1", "1e9", "nan", "inf", "gen.hidden=0", "disc.pack=3", "loss.r1=-1",
         "data.std=0", "x", "", "[red]", "a=b", "metric.k=1"]


@SETTINGS
@given(words=st.lists(st.sampled_from(WORDS), min_size=1, max_size=6))
def test_random_command_lines_never_end_in_a_traceback(tmp_path, monkeypatch, capsys, words):
    monkeypatch.chdir(tmp_path)
    args = list(words)
    if args[0] == "run":  # keep a run that happens to be valid short
        args += ["--steps", "1", "--out", str(tmp_path / "r"), "--set", "gen.hidden=4", "--set", "disc.hidden=4",
                 "--sample-every", "0", "--batch-size", "4"]
    shutil.rmtree(tmp_path / "r", ignore_errors=True)
    try:
        code = main(args)
    except SystemExit as exc:  # argparse's own usage errors exit 2 with its usage line
        code = exc.code
    err = capsys.readouterr().err
    assert code in (0, 1, 2) and "Traceback" not in err, (args, err)


@pytest.mark.parametrize("args, message", [
    (["run", "--data", "ring8", "--z-dim", "100000000000"], "smaller --z-dim"),
    (["run", "--data", "ring8", "--batch-size", "100000000000"], "smaller --batch-size"),
    (["run", "--data", "ring8", "--set", "gen.hidden=1000000000,1000000000"], "smaller layers"),
    (["run", "--data", "ring8", "--threads", "100000"], "--threads"),
    (["run", "--data", "ring8", "--seed", "99999999999999999999999"], "--seed"),
])
def test_requests_that_cannot_fit_are_refused_before_allocating(args, message, tmp_path, capsys):
    code, err = run_cli([*args, "--steps", "1", "--out", str(tmp_path / "r")], capsys)
    assert code == 2 and message in err and "Traceback" not in err, err


def test_sampling_more_than_memory_holds_is_refused(good_run, tmp_path, capsys):
    for command in (["sample", str(good_run), "-n", "100000000000", "-o", str(tmp_path / "x.npy")],
                    ["eval", str(good_run), "-n", "100000000000"]):
        code, err = run_cli(command, capsys)
        assert code == 2 and "fewer samples" in err, err
