"""``ganforge tune``: the search space, the best trial's TOML, Optuna's pruner on a constructed
objective, a real search on SQLite whose best.toml reproduces the best trial's numbers exactly,
and two worker processes sharing one study on a real PostgreSQL server."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from ganforge.config import RunConfig, load_toml
from ganforge.errors import ConfigError, UsageError
from ganforge.tune.best import config_toml
from ganforge.tune.space import parse_enqueue, parse_search
from ganforge.tune.study import default_direction, require_optuna

optuna = pytest.importorskip("optuna", reason="ganforge tune needs Optuna: pip install 'ganforge[tune]'")


def test_search_ranges_and_choices():
    p = parse_search("lr_g=1e-5..1e-3:log")
    assert (p.kind, p.low, p.high, p.log) == ("float", 1e-5, 1e-3, True)
    assert parse_search("loss.r1=0..10").kind == "float"
    assert parse_search("n_critic=1..5").kind == "int"  # a whole-number setting
    assert parse_search("disc.pack=1..4:int").kind == "int"
    assert parse_search("loss=nonsat,rpgan").choices == ("nonsat", "rpgan")
    for bad, words in [("lr_g=1e-3..1e-5", "below"), ("lr_g=0..1:log", "LOW > 0"), ("seed=0..5", "--seeds"),
                       ("lr_g=a..b", "numbers"), ("loss=nonsat", "two choices"), ("n_critic=1.5..3", "whole"),
                       ("lr_g=1..2:cube", "log and int")]:
        with pytest.raises(ConfigError, match=words):
            parse_search(bad)


def test_enqueued_values_are_searched_keys_within_their_space():
    params = [parse_search("lr_g=1e-5..1e-3:log"), parse_search("loss=nonsat,rpgan")]
    assert parse_enqueue("lr_g=1e-4, loss=rpgan", params) == {"lr_g": 1e-4, "loss": "rpgan"}
    assert parse_enqueue("lr_g=2e-4", params) == {"lr_g": 2e-4}  # loss: drawn by the sampler
    for bad, words in [("lr_d=1e-4", "not a searched key"), ("lr_g=1e-2", "outside its range"),
                       ("loss=hinge", "not one of its choices"), ("lr_g", "KEY=VALUE")]:
        with pytest.raises(ConfigError, match=words):
            parse_enqueue(bad, params)


def test_direction_follows_the_metric():
    assert default_direction("eval/high_quality") == "maximize" and default_direction("recall") == "maximize"
    assert default_direction("eval/fid") == "minimize" and default_direction("reverse_kl") == "minimize"


def test_missing_optuna_is_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna", None)
    with pytest.raises(UsageError, match=r"pip install 'ganforge\[tune\]'"):
        require_optuna()


def test_best_toml_reads_back_as_the_same_settings(tmp_path, registry):
    from ganforge.resolve import resolve_settings

    given = {"data": "ring8", "loss": "rpgan", "lr_g": 1.2345678901234e-4, "steps": 70, "betas": [0.0, 0.99],
             "eval_metrics": ["modes"], "eval_every": 10, "out": str(tmp_path / "r"), "seed": 7,
             "options": {"gen": {"hidden": [16, 8], "classes": 8}, "loss": {"gamma": 0.5},
                         "metric": {"prdc": {"k_pr": 4}, "extractor": "lenet-mnist"}}}
    config = resolve_settings(given, registry).to_dict()
    path = tmp_path / "best.toml"
    path.write_text(config_toml(json.loads(json.dumps(config)), "a header\nof two lines"))
    back = resolve_settings({**load_toml(path), "out": config["out"]}, registry).to_dict()
    assert back == {**config, "threads": back["threads"]}
    RunConfig.from_dict(load_toml(path))


def test_a_pruner_stops_a_poor_trial_and_its_run_folder_says_why(tmp_path):
    """Optuna's median pruner on a constructed objective: three trials report 1, 2, 3, ... at each
    step; a fourth reports 10x worse and is pruned at its first report after the warm-up."""
    from ganforge.tune.objective import PRUNED_FILE, Pruned, Reporter

    study = optuna.create_study(direction="minimize", pruner=optuna.pruners.MedianPruner(n_startup_trials=3))
    for scale in (1.0, 1.1, 0.9, 10.0):
        trial = study.ask()
        run = SimpleNamespace(folder=SimpleNamespace(root=tmp_path / f"trial-{trial.number}"),
                              config=SimpleNamespace(steps=100))
        run.folder.root.mkdir()
        reporter = Reporter(trial, "eval/fid", 0, "median")
        try:
            for step in (10, 20, 30):
                reporter.ganforge_on_eval(run, step, {"eval/fid": scale * step})
        except Pruned as exc:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            record = json.loads((run.folder.root / PRUNED_FILE).read_text())
            assert scale == 10.0 and record["step"] == 10 and record["value"] == 100.0
            assert "median pruner stopped it at step 10" in str(exc)
            assert "median of the 3 completed trials here was 10 (lower is better)" in record["reason"]
        else:
            study.tell(trial, reporter.last)
            assert scale != 10.0
    states = [t.state.name for t in study.trials]
    assert states == ["COMPLETE", "COMPLETE", "COMPLETE", "PRUNED"]


TINY = ["--data", "ring8", "--set", "gen.hidden=16,16", "--set", "disc.hidden=16,16", "--batch-size", "32",
        "--steps", "120", "--eval-every", "40", "--eval-metric", "modes", "--eval-samples", "400",
        "--log-every", "20", "--sample-every", "0", "--ckpt-every", "40", "--objective", "high_quality",
        "--search", "lr_g=1e-4..2e-3:log", "--search", "lr_d=1e-4..2e-3:log"]


def ganforge(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ganforge", *args], capture_output=True, text=True, timeout=timeout)


def eval_rows(run: Path) -> list[dict]:
    rows = map(json.loads, (run / "metrics.jsonl").read_text().splitlines())
    return [r for r in rows if any(k.startswith("eval/") for k in r)]


@pytest.mark.slow
def test_tune_on_sqlite_prunes_and_its_best_toml_reproduces_the_best_trial(tmp_path):
    out = tmp_path / "tune"
    done = ganforge("tune", *TINY, "--trials", "5", "--pruner", "median", "--startup-trials", "1",
                    "--sampler-seed", "3", "--enqueue", "lr_g=1e-3,lr_d=5e-4", "--out", str(out))
    assert done.returncode == 0, done.stderr + done.stdout
    assert (out / "study.db").is_file()
    rows = list(csv.DictReader((out / "trials.csv").open()))
    assert len(rows) == 5 and {r["state"] for r in rows} <= {"COMPLETE", "PRUNED"}
    first = rows[0]  # the enqueued trial runs first, with the given values, and is reported beside the best
    assert (float(first["lr_g"]), float(first["lr_d"]), first["state"]) == (1e-3, 5e-4, "COMPLETE")
    assert f"enqueued: trial 0 (complete), eval/high_quality = {float(first['value']):.6g}" in done.stdout
    for row in rows:  # a pruned trial's folder says why; a complete one ran every step
        run = out / "trials" / f"trial-{int(row['trial']):04d}" / "seed-0"
        if row["state"] == "PRUNED":
            assert json.loads((run / "pruned.json").read_text())["pruner"] == "median"
            assert int(row["steps_run"]) < 120
        else:
            assert not (run / "pruned.json").exists() and int(row["steps_run"]) == 120
    assert "steps trained" in done.stdout and "saved" in done.stdout

    best = min(rows, key=lambda r: -float(r["value"]) if r["state"] == "COMPLETE" else float("inf"))
    again = ganforge("run", "--config", str(out / "best.toml"), "--out", str(tmp_path / "again"))
    assert again.returncode == 0, again.stderr
    original = eval_rows(out / "trials" / f"trial-{int(best['trial']):04d}" / "seed-0")
    assert eval_rows(tmp_path / "again") == original and len(original) == 3  # the same numbers, bit for bit

    more = ganforge("tune", *TINY, "--trials", "5", "--out", str(out))  # the study is done: nothing reruns
    assert more.returncode == 0 and "trial " not in more.stderr.replace("ganforge tune", "")


@pytest.mark.slow
def test_two_workers_share_one_study_on_postgresql(tmp_path, postgres_url):
    """Two worker processes, as two machines would run them (each its own --out), one study: every
    trial runs once, in one worker, and the study completes."""
    args = ["tune", *TINY, "--trials", "4", "--pruner", "none", "--storage", postgres_url, "--study", "shared"]
    workers = [subprocess.Popen([sys.executable, "-m", "ganforge", *args, "--out", str(tmp_path / f"host{i}"),
                                 "--threads", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for i in range(2)]
    outputs = [w.communicate(timeout=600) for w in workers]
    for worker, (stdout, stderr) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, stderr + stdout
    study = optuna.load_study(study_name="shared", storage=postgres_url)
    trials = study.get_trials()
    assert 4 <= len(trials) <= 5 and all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    ran = {}
    for i in range(2):
        for run in (tmp_path / f"host{i}" / "trials").glob("trial-*/seed-0"):
            assert run.parent.name not in ran
            ran[run.parent.name] = i
            assert "resumes" not in json.loads((run / "config.json").read_text())  # each trial trained once
    assert sorted(ran) == sorted(f"trial-{t.number:04d}" for t in trials)
    assert set(ran.values()) == {0, 1}  # both workers took trials


@pytest.mark.slow
def test_a_worker_killed_mid_trial_leaves_the_other_to_complete_the_study_on_postgresql(tmp_path, postgres_url):
    """Two workers on one PostgreSQL study; one is killed with SIGKILL during its first trial. The
    other runs the rest, waits for the dead worker's trial, fails it once its heartbeat is stale,
    runs it again with the same settings, and completes the study."""
    args = ["tune", *TINY, "--steps", "2000", "--trials", "4", "--pruner", "none", "--storage", postgres_url,
            "--study", "killed", "--threads", "1"]
    outs = [tmp_path / "host0", tmp_path / "host1"]
    victim = subprocess.Popen([sys.executable, "-m", "ganforge", *args, "--out", str(outs[0])],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not list(outs[0].glob("trials/trial-*/seed-0/metrics.jsonl")):  # training its first trial
        assert victim.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    victim.kill()
    victim.wait()
    assert victim.returncode == -9 and not list(outs[0].glob("trials/trial-*/seed-0/eval.json"))  # mid-trial
    survivor = subprocess.run([sys.executable, "-m", "ganforge", *args, "--out", str(outs[1])], capture_output=True,
                              text=True, timeout=600)
    assert survivor.returncode == 0, survivor.stderr + survivor.stdout
    study = optuna.load_study(study_name="killed", storage=postgres_url)
    states = [t.state.name for t in study.trials]
    assert states.count("COMPLETE") == 4 and states[0] == "FAIL" and "RUNNING" not in states
    retry = next(t for t in study.trials if t.system_attrs.get("failed_trial") == 0)
    assert retry.params == study.trials[0].params and retry.state.name == "COMPLETE"
    # Whether the survivor also said "waiting for 1 trial(s) running on other workers" depends on
    # the machine's load: it waits only when its own three trials end before trial 0's heartbeat
    # is GRACE_S old; on a loaded machine trial 0 is already stale then and is retried at once.
    # Both paths end in the states asserted above.
    best = load_toml(outs[1] / "best.toml")
    assert best["lr_g"] == pytest.approx(study.best_trial.params["lr_g"])


@pytest.mark.slow
def test_a_worker_killed_mid_trial_is_retried_and_the_retry_continues_its_checkpoint(tmp_path):
    """kill -9 of the only worker during trial 0: after the heartbeat's grace period the next worker
    fails trial 0, retries it with the same settings from its run's checkpoint, and completes the study."""
    from ganforge.tune.study import GRACE_S, HEARTBEAT_S

    out = tmp_path / "tune"
    cmd = [sys.executable, "-m", "ganforge", "tune", *TINY, "--trials", "3", "--pruner", "none",
           "--steps", "400", "--out", str(out)]
    first = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    run = out / "trials" / "trial-0000" / "seed-0"
    deadline = time.monotonic() + 300
    while not (run / "checkpoints" / "latest").is_file():
        assert first.poll() is None and time.monotonic() < deadline
        time.sleep(0.1)
    first.kill()
    first.wait()
    time.sleep(GRACE_S + 2 * HEARTBEAT_S)  # the dead worker's heartbeat goes stale
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr + done.stdout
    study = optuna.load_study(study_name="ganforge", storage=f"sqlite:///{out / 'study.db'}")
    states = [t.state.name for t in study.trials]
    assert states[0] == "FAIL" and states.count("COMPLETE") == 3
    retry = next(t for t in study.trials if t.system_attrs.get("failed_trial") == 0)
    assert retry.params == study.trials[0].params and retry.state.name == "COMPLETE"
    resumes = json.loads((run / "config.json").read_text())["resumes"]
    assert len(resumes) == 1 and resumes[0]["step"] >= 40  # continued from the killed run's checkpoint


def test_workers_that_create_a_new_sqlite_study_at_once_all_open_it(tmp_path):
    """Four processes open the same new SQLite storage at the same moment: each creates Optuna's
    tables, all but one lose that race ("UNIQUE constraint failed"), and all must still open it."""
    url = f"sqlite:///{tmp_path / 'study.db'}"
    code = ("import sys, time; from ganforge.tune.study import open_storage; "
            "time.sleep(max(0.0, float(sys.argv[1]) - time.time())); open_storage(sys.argv[2], None); print('ok')")
    at = str(time.time() + 4)  # the imports done, they start together
    procs = [subprocess.Popen([sys.executable, "-c", code, at, url], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(4)]
    results = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 and out.strip() == "ok" for p, (out, _) in zip(procs, results, strict=True)), results


def test_a_worker_with_nothing_left_to_run_waits_for_a_dead_workers_trial_then_runs_its_retry(monkeypatch):
    """The wait path of ``ganforge tune`` on a real (in-memory) Optuna study, without the timing
    that decides whether the end-to-end test above takes it: 2 of 3 trials complete, the third
    RUNNING on a worker that died. This worker says once that it waits, polls, and when the stale
    trial is failed and put back as a waiting trial (here by hand, as the heartbeat check and the
    retry callback do), runs it and stops with 3 finished."""
    import io
    import time as time_module

    import optuna.storages
    from rich.console import Console

    from ganforge.cli.tune import _optimize_until_done
    from ganforge.tune.study import GRACE_S

    study = optuna.create_study()
    for value in (1.0, 2.0):
        study.add_trial(optuna.trial.create_trial(params={"x": value}, distributions={
            "x": optuna.distributions.FloatDistribution(0, 10)}, value=value))
    orphan = study.ask({"x": optuna.distributions.FloatDistribution(0, 10)})  # RUNNING, its worker gone
    polls: list[float] = []

    def stale_check(s) -> None:  # type: ignore[no-untyped-def]
        if len(polls) == 2:  # the dead worker's heartbeat has gone stale: failed, put back as waiting
            s.tell(orphan, state=optuna.trial.TrialState.FAIL)
            s.enqueue_trial(orphan.params)

    monkeypatch.setattr(time_module, "sleep", polls.append)
    monkeypatch.setattr(optuna.storages, "fail_stale_trials", stale_check)
    ran: list[float] = []

    def objective(trial) -> float:  # type: ignore[no-untyped-def]
        ran.append(trial.suggest_float("x", 0, 10))
        return ran[-1]

    def optimize() -> None:
        study.optimize(objective, n_trials=1)

    out = io.StringIO()
    _optimize_until_done(study, optuna, 3, optimize, Console(file=out, width=200))
    states = [t.state.name for t in study.trials]
    assert states.count("COMPLETE") == 3 and states.count("FAIL") == 1
    assert ran == [orphan.params["x"]] and len(polls) == 2
    assert out.getvalue().count("waiting for 1 trial(s) running on other workers") == 1
    assert f"heartbeat is {GRACE_S} s old" in out.getvalue()
