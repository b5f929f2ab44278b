"""The ganforge command: run, sample, list, doctor, and its usage errors (exit 2, no traceback)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from ganforge.cli.main import main

SMALL = ["--set", "gen.hidden=32,32", "--set", "disc.hidden=32,32", "--z-dim", "4"]


def run_cli(*args: str) -> int:
    return main(list(args))


def test_list_shows_every_builtin(capsys):
    assert run_cli("list") == 0
    out = capsys.readouterr().out
    for name in ("mlp", "minimax", "nonsat", "wasserstein", "wgan-gp", "mnist", "ring8", "grid25"):
        assert name in out
    assert "generator" in out and "discriminator" in out and "ganforge 0.1.0" in out


def test_grid25_run_then_sample_gives_points(tmp_path, capsys):
    out = tmp_path / "d"
    assert run_cli("run", "--data", "grid25", "--loss", "nonsat", "--steps", "20", "--out", str(out), *SMALL) == 0
    assert run_cli("sample", str(out), "-n", "1000", "-o", str(tmp_path / "s.npy")) == 0
    samples = np.load(tmp_path / "s.npy")
    assert samples.shape == (1000, 2) and np.isfinite(samples).all()
    assert run_cli("sample", str(out), "-n", "1000", "--threads", "1", "-o", str(tmp_path / "one.npy")) == 0
    assert np.array_equal(np.load(tmp_path / "one.npy"), samples)
    assert run_cli("sample", str(out), "-n", "500", "-o", str(tmp_path / "s.png")) == 0
    assert (tmp_path / "s.png").stat().st_size > 0


def test_the_issue_commands_grid25_200_steps_then_1000_samples(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run_cli("run", "--data", "grid25", "--loss", "nonsat", "--steps", "200", "--out", "d") == 0
    assert run_cli("sample", "d", "-n", "1000", "-o", "s.npy") == 0
    assert np.load(tmp_path / "s.npy").shape == (1000, 2)


def test_default_mnist_command_runs(tmp_path, capsys):
    """`ganforge run --gen mlp --loss nonsat` with its defaults, cut to a few steps."""
    out = tmp_path / "demo"
    assert run_cli("run", "--gen", "mlp", "--loss", "nonsat", "--steps", "3", "--out", str(out)) == 0
    printed = capsys.readouterr().out
    assert f"samples: {out}/samples/step_0000003.png" in printed
    assert f"real:    {out}/samples/real.png" in printed

    record = json.loads((out / "config.json").read_text())
    assert record["config"]["disc"] == "mlp" and record["config"]["data"] == "mnist"
    assert record["data_info"]["sample_shape"] == [1, 28, 28]


def test_image_samples_keep_the_data_range(tmp_path):
    out = tmp_path / "img"
    assert run_cli("run", "--data", "digits", "--steps", "3", "--batch-size", "16", "--out", str(out), *SMALL) == 0
    assert run_cli("sample", str(out), "-n", "7", "-o", str(tmp_path / "s.npy")) == 0
    samples = np.load(tmp_path / "s.npy")
    assert samples.shape == (7, 1, 8, 8) and samples.min() >= -1 and samples.max() <= 1


def test_toml_config_and_set_options(tmp_path):
    toml = tmp_path / "run.toml"
    toml.write_text('data = "ring8"\nsteps = 4\nbatch_size = 8\nz_dim = 3\n[gen]\nhidden = [8]\n[disc]\nhidden = [8]\n')
    out = tmp_path / "t"
    assert run_cli("run", "--config", str(toml), "--steps", "6", "--set", "gen.hidden=16", "--out", str(out)) == 0

    config = json.loads((out / "config.json").read_text())["config"]
    assert config["steps"] == 6 and config["options"]["gen"]["hidden"] == 16 and config["z_dim"] == 3


@pytest.mark.parametrize("args, message", [
    (["run", "--gen", "mlpp"], "Did you mean 'mlp'"),
    (["run", "--loss", "nonsatt"], "Did you mean 'nonsat'? Available loss names:"),
    (["run", "--data", "mnits"], "Did you mean 'mnist'"),
    (["run", "--steps", "ten"], "expected a whole number"),
    (["run", "--lr-g", "-1"], "positive"),
    (["run", "--set", "gen.hidden"], "SECTION.KEY=VALUE"),
    (["run", "--set", "bogus.x=1"], "unknown section"),
    (["run", "--config", "/no/such.toml"], "does not exist"),
    (["run", "--data", "mnist", "--set", "data.root=/no/such/dir"], "does not exist"),
    (["run", "--data", "ring8", "--set", "gen.width=3"], "does not accept"),
    (["run", "--device", "tpu"], "--device must be one of"),
    (["run", "--set", "disc.dropout=2"], "disc.dropout must be a probability in [0, 1)"),
    (["run", "--set", "disc.dropout=-0.1"], "disc.dropout must be a probability"),
    (["run", "--set", "disc.slope=abc"], "disc.slope must be a LeakyReLU slope"),
    (["run", "--data", "ring8", "--set", "data.std=-1"], "data.std must be a positive"),
    (["run", "--data", "ring8", "--set", "data.radius=abc"], "dataset 'ring8' cannot be built with radius='abc'"),
    (["sample", "/no/such/run", "-o", "x.npy"], "not a ganforge run folder"),
    (["sample", ".", "-o", "x.txt"], "use a name ending in .npy or .png"),
    (["sample", ".", "-o", "x.npy", "--threads", "two"], "argument --threads: must be 'auto' or a number"),
    (["frobnicate"], "invalid choice"),
])
def test_usage_errors_exit_2_with_one_clear_line(args, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run_cli(*args) == 2
    err = capsys.readouterr().err
    assert message in " ".join(err.split()), err
    assert "Traceback" not in err


def test_unreadable_config_file(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("steps = = 3")
    assert run_cli("run", "--config", str(bad)) == 2
    assert "cannot read config file" in capsys.readouterr().err


def test_usage_error_in_a_real_process_has_no_traceback(tmp_path):
    result = subprocess.run([sys.executable, "-m", "ganforge", "run", "--loss", "nonsatt"], capture_output=True,
                            text=True, cwd=tmp_path, env={**os.environ, "CI": "true"})
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "nonsat" in result.stderr


def test_doctor_reports_backend(capsys):
    assert run_cli("doctor") == 0
    out = capsys.readouterr().out
    assert "op backend" in out and "torch" in out
    assert "--precision auto trains in" in out  # bf16 native or emulated here, and what auto picks


def test_default_mnist_command_is_deterministic(tmp_path):
    """Dropout, the minibatch-std feature and the data order are all seeded."""
    lines = []
    for name in ("a", "b"):
        assert run_cli("run", "--steps", "6", "--log-every", "2", "--out", str(tmp_path / name)) == 0
        rows = [json.loads(line) for line in (tmp_path / name / "metrics.jsonl").read_text().splitlines()]
        lines.append([(r["d_loss"], r["g_loss"]) for r in rows])
    assert lines[0] == lines[1] and len(lines[0]) == 3


def test_error_messages_keep_square_brackets(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run_cli("sample", "runs/[red]nope", "-o", "x.npy") == 2
    assert "runs/[red]nope" in capsys.readouterr().err


def test_the_command_starts_without_importing_torch():
    """Usage errors answer at once, and Ctrl-C while torch loads reaches the CLI's own handler."""
    code = ("import sys; from ganforge.cli.main import build_parser; build_parser(); "
            "import ganforge, os; assert 'torch' not in sys.modules, 'torch imported'; "
            "assert os.environ['MKL_CBWR']")
    subprocess.run([sys.executable, "-c", code], check=True, env={k: v for k, v in os.environ.items()
                                                                   if k != "MKL_CBWR"})


def test_bad_outputs_and_too_few_samples_are_usage_errors(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("x")
    assert run_cli("run", "--data", "ring8", "--steps", "2", "--out", "afile") == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    assert run_cli("run", "--data", "ring8", "--steps", "4", "--out", "r", "--set", "gen.hidden=8",
                   "--set", "disc.hidden=8") == 0
    (tmp_path / "outdir").mkdir()
    capsys.readouterr()
    assert run_cli("sample", "r", "-n", "3", "-o", "outdir") == 2  # no suffix: refused as a format
    assert run_cli("sample", "r", "-n", "3", "-o", "outdir.npy") == 0
    (tmp_path / "dir.npy").mkdir()
    capsys.readouterr()
    assert run_cli("sample", "r", "-n", "3", "-o", "dir.npy") == 2
    assert "is a folder" in capsys.readouterr().err
    assert run_cli("eval", "r", "-n", "1") == 2
    err = capsys.readouterr().err
    assert "evaluate more samples" in err and "Traceback" not in err


def test_keep_n_checkpoints_and_sample_an_earlier_step(tmp_path, capsys):
    out = tmp_path / "r"
    assert run_cli("run", "--data", "ring8", "--steps", "12", "--ckpt-every", "2", "--keep", "5", "--out", str(out),
                   "--set", "gen.hidden=8", "--set", "disc.hidden=8", "--sample-every", "0", "--threads", "1") == 0
    kept = sorted(p.name for p in (out / "checkpoints").glob("step_*"))
    assert kept == [f"step_{s:07d}" for s in (4, 6, 8, 10, 12)]
    assert run_cli("sample", str(out), "-n", "8", "-o", str(tmp_path / "a.npy"), "--step", "6") == 0
    assert run_cli("sample", str(out), "-n", "8", "-o", str(tmp_path / "b.npy")) == 0
    assert not np.array_equal(np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy"))
    capsys.readouterr()
    assert run_cli("eval", str(out), "--step", "2", "--metric", "modes") == 2
    assert "no checkpoint of step 2; it kept steps 4, 6, 8, 10, 12" in capsys.readouterr().err


def test_a_reader_closing_the_pipe_ends_the_command_quietly(capsys, monkeypatch):
    """`ganforge sample ... | head`: no traceback and no disk-full message (BrokenPipeError is an
    OSError); stdout is pointed at /dev/null so the final flush cannot fail again."""
    import ganforge.cli.main as cli
    from ganforge.cli import listing

    silenced = []
    monkeypatch.setattr(cli, "_silence_stdout", lambda: silenced.append(True))

    def closed_pipe(args):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(listing, "handle", closed_pipe)
    assert main(["list"]) == 1
    assert silenced and capsys.readouterr().err == ""
