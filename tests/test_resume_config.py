"""--resume continues the run as it was recorded: flags left out keep the run's values."""

from __future__ import annotations

import json

from ganforge.cli.main import main


def _config(out):
    return json.loads((out / "config.json").read_text())["config"]


def test_resume_keeps_the_recorded_settings_and_takes_new_steps(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["run", "--data", "ring8", "--steps", "6", "--batch-size", "20", "--ckpt-every", "3",
                 "--lr-d", "3e-4", "--out", str(out), "--set", "gen.hidden=8", "--set", "disc.hidden=8"]) == 0
    # no --data, no --batch-size, no --set: all come from the run's config.json
    assert main(["run", "--resume", "--out", str(out), "--steps", "9"]) == 0
    config = _config(out)
    assert (config["data"], config["batch_size"], config["ckpt_every"], config["steps"]) == ("ring8", 20, 3, 9)
    assert config["lr_d"] == 3e-4 and config["options"]["gen"]["hidden"] == 8
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["step"] == 9


def test_resume_refuses_to_change_what_built_the_networks(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["run", "--data", "ring8", "--steps", "4", "--out", str(out), "--set", "gen.hidden=8"]) == 0
    capsys.readouterr()
    assert main(["run", "--resume", "--out", str(out), "--data", "grid25", "--steps", "8"]) == 2
    err = capsys.readouterr().err
    assert "cannot change data" in err and "another --out" in err and "Traceback" not in err
    assert main(["run", "--resume", "--out", str(out), "--set", "gen.hidden=16", "--steps", "8"]) == 2
    assert "gen.hidden" in capsys.readouterr().err
    assert _config(out)["data"] == "ring8"  # nothing was rewritten


def test_checkpoints_without_latest_are_never_restarted_over(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["run", "--data", "ring8", "--steps", "4", "--ckpt-every", "2", "--out", str(out)]) == 0
    (out / "checkpoints" / "latest").unlink()
    metrics = (out / "metrics.jsonl").read_text()
    capsys.readouterr()
    for extra in ([], ["--resume"]):
        assert main(["run", "--data", "ring8", "--steps", "8", "--out", str(out), *extra]) == 2
        err = capsys.readouterr().err
        assert "no `latest`" in err and "step_0000004" in err
    assert (out / "metrics.jsonl").read_text() == metrics  # nothing deleted


def test_config_json_records_each_resume_and_what_it_changed(tmp_path):
    import json
    import subprocess
    import sys

    base = [sys.executable, "-m", "ganforge", "run", "--data", "ring8", "--out", str(tmp_path / "r"), "--threads", "1",
            "--set", "gen.hidden=8", "--set", "disc.hidden=8", "--sample-every", "0"]
    assert subprocess.run([*base, "--steps", "4"], capture_output=True).returncode == 0
    assert subprocess.run([*base, "--steps", "8", "--resume", "--lr-g", "1e-4"], capture_output=True).returncode == 0
    record = json.loads((tmp_path / "r" / "config.json").read_text())
    assert record["resumes"] == [{"step": 4, "changed": {"steps": [4, 8], "lr_g": [0.0002, 0.0001]}}]
    assert record["config"]["lr_g"] == 1e-4


def test_a_resume_records_a_change_to_a_setting_older_runs_did_not_write(tmp_path, capsys):
    """A run folder from before ``ema_rampup`` existed ran with its default; resuming it with
    another value is a change, and config.json says so."""
    out = tmp_path / "r"
    base = ["run", "--data", "ring8", "--out", str(out), "--threads", "1", "--set", "gen.hidden=8",
            "--set", "disc.hidden=8", "--sample-every", "0"]
    assert main([*base, "--steps", "4"]) == 0
    record = json.loads((out / "config.json").read_text())
    del record["config"]["ema_rampup"]
    (out / "config.json").write_text(json.dumps(record))
    assert main([*base, "--steps", "6", "--resume", "--ema-rampup", "4"]) == 0
    record = json.loads((out / "config.json").read_text())
    assert record["resumes"][-1]["changed"] == {"steps": [4, 6], "ema_rampup": [1.0, 4.0]}


def test_resume_from_an_earlier_step_replays_exactly_and_keeps_the_later_checkpoints(tmp_path):
    import subprocess
    import sys

    import torch

    from ganforge.run.checkpoint import latest_checkpoint, load_checkpoint

    base = [sys.executable, "-m", "ganforge", "run", "--data", "ring8", "--threads", "1", "--set", "gen.hidden=8",
            "--set", "disc.hidden=8", "--sample-every", "0", "--ckpt-every", "10", "--keep", "5", "--log-every", "5"]
    def ganforge(*args):
        done = subprocess.run([*base, *args], capture_output=True, text=True)
        return done.returncode, done.stderr

    assert ganforge("--steps", "30", "--out", str(tmp_path / "a"))[0] == 0
    assert ganforge("--steps", "30", "--out", str(tmp_path / "straight"))[0] == 0
    code, err = ganforge("--steps", "30", "--out", str(tmp_path / "a"), "--from-step", "10")
    assert code == 2 and "--resume" in err
    code, err = ganforge("--steps", "30", "--out", str(tmp_path / "a"), "--resume", "--from-step", "15")
    assert code == 2 and "it kept steps 10, 20, 30" in err
    assert ganforge("--steps", "30", "--out", str(tmp_path / "a"), "--resume", "--from-step", "10")[0] == 0
    aside = list((tmp_path / "a" / "checkpoints").glob("after_step_10-*"))
    assert len(aside) == 1 and sorted(p.name for p in aside[0].iterdir()) == ["step_0000020", "step_0000030"]
    a, b = load_checkpoint(latest_checkpoint(tmp_path / "a")), load_checkpoint(latest_checkpoint(tmp_path / "straight"))
    assert a.step == 30 and all(torch.equal(a.generator[k], b.generator[k]) for k in a.generator)
    steps = [json.loads(line)["step"] for line in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps))
    # a later plain --resume does not go back to step 10 again
    assert ganforge("--steps", "35", "--out", str(tmp_path / "a"), "--resume")[0] == 0
    assert load_checkpoint(latest_checkpoint(tmp_path / "a")).step == 35
