"""``ganforge sweep``: its statistics against scipy and the textbook formulas on fresh random
numbers, the bootstrap interval's coverage, the grid, and real sweeps end to end (a stopped one
continued after SIGKILL without rerunning a trial; two workers that never oversubscribe the cores;
a grid split by worker processes sharing one study on SQLite and on PostgreSQL)."""

from __future__ import annotations

import csv
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as sps

from ganforge.errors import ConfigError, UsageError
from ganforge.sweep import stats
from ganforge.sweep.grid import expand, find_point, load_grid, parse_point, parse_seeds, parse_vary
from ganforge.sweep.runner import core_slices


@pytest.fixture
def rng():
    """A new seed each run (printed when a test fails; ``GANFORGE_TEST_SEED=S`` replays it)."""
    seed = int(os.environ.get("GANFORGE_TEST_SEED", np.random.SeedSequence().entropy % 2**31))
    print(f"seed {seed} (replay with GANFORGE_TEST_SEED={seed})")
    return np.random.default_rng(seed)


# -- statistics -----------------------------------------------------------------------------------


def test_summary_is_the_mean_its_standard_error_and_scipys_bootstrap(rng):
    x = rng.normal(rng.uniform(-5, 5), rng.uniform(0.1, 3), size=int(rng.integers(3, 30)))
    s = stats.summarize(list(x))
    assert s.n == len(x)
    assert s.mean == pytest.approx(x.sum() / len(x), rel=1e-12)
    sd = math.sqrt(((x - x.mean()) ** 2).sum() / (len(x) - 1))
    assert s.sem == pytest.approx(sd / math.sqrt(len(x)), rel=1e-12)
    assert s.sem == pytest.approx(sps.sem(x), rel=1e-12)
    ref = sps.bootstrap((x,), np.mean, confidence_level=0.95, n_resamples=stats.RESAMPLES, method="BCa",
                        rng=np.random.default_rng(0))
    assert (s.low, s.high) == pytest.approx((ref.confidence_interval.low, ref.confidence_interval.high), rel=1e-9)
    assert s.low < s.mean < s.high


def test_the_percentile_interval_is_a_plain_bootstrap(rng):
    """scipy's percentile interval against resampling written out by hand: the same to within the
    resampling noise of 20,000 draws."""
    x = rng.exponential(2.0, size=25)
    low, high = stats.bootstrap_interval((x,), stats._mean, n_resamples=20000, method="percentile", seed=1)
    draws = np.random.default_rng(2).choice(x, size=(20000, len(x)), replace=True).mean(axis=1)
    plain = np.percentile(draws, [2.5, 97.5])
    spread = x.std(ddof=1) / math.sqrt(len(x))
    assert abs(low - plain[0]) < 0.1 * spread and abs(high - plain[1]) < 0.1 * spread


def test_comparison_is_welchs_t_mann_whitney_and_a_bootstrap_of_the_difference(rng):
    a = rng.normal(1.0, 1.0, size=int(rng.integers(3, 15)))
    b = rng.normal(0.0, 2.0, size=int(rng.integers(3, 15)))
    c = stats.compare(list(a), list(b))
    assert c.difference == pytest.approx(a.mean() - b.mean(), rel=1e-12)
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    t = (a.mean() - b.mean()) / math.sqrt(va + vb)  # Welch (1947)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))  # Welch-Satterthwaite
    assert c.welch_t == pytest.approx(t, rel=1e-9)
    assert c.welch_p == pytest.approx(2 * sps.t.sf(abs(t), df), rel=1e-9)
    u = sum((ai > bi) + 0.5 * (ai == bi) for ai in a for bi in b)  # U counts the pairs a wins
    assert c.mannwhitney_u == u
    assert c.mannwhitney_p == pytest.approx(sps.mannwhitneyu(a, b, alternative="two-sided").pvalue)
    ref = sps.bootstrap((a, b), lambda x, y, axis: x.mean(axis=axis) - y.mean(axis=axis), n_resamples=stats.RESAMPLES,
                        method="BCa", rng=np.random.default_rng(0))
    assert (c.low, c.high) == pytest.approx((ref.confidence_interval.low, ref.confidence_interval.high), rel=1e-9)


def test_a_baseline_without_spread_is_compared_quietly_and_as_scipy_does():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the sweep's table is printed for a user: no scipy warnings
        got = stats.compare([12.0, 13.0, 14.0, 12.0, 13.0], [25.0] * 5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = sps.ttest_ind([12.0, 13.0, 14.0, 12.0, 13.0], [25.0] * 5, equal_var=False)
    assert got.welch_p == pytest.approx(want.pvalue) and got.welch_p < 1e-4


def test_degenerate_samples_give_no_interval_rather_than_a_wrong_one():
    one = stats.summarize([3.0])
    assert one.n == 1 and one.mean == 3.0 and math.isnan(one.sem) and math.isnan(one.low)
    same = stats.summarize([2.0, 2.0, 2.0])
    assert (same.low, same.high) == (2.0, 2.0) and same.sem == 0
    assert stats.summarize([1.0, float("nan"), 3.0]).n == 2  # a diverged trial's nan is left out, and counted
    c = stats.compare([1.0, 1.0], [1.0, 1.0])
    assert c.difference == 0 and math.isnan(c.welch_p) and (c.low, c.high) == (0.0, 0.0)


def test_the_95_percent_interval_covers_the_true_mean_about_95_percent_of_the_time():
    """300 samples of 20 normal values (fixed seed): the BCa interval's coverage is close to 95 %
    (BCa is a little short for n = 20; the band allows for that and for 300 repetitions)."""
    g = np.random.default_rng(20261205)
    hits = 0
    for _ in range(300):
        s = stats.summarize(list(g.normal(10.0, 3.0, size=20)), n_resamples=999)
        hits += s.low <= 10.0 <= s.high
    assert 0.88 <= hits / 300 <= 0.985


# -- the grid ---------------------------------------------------------------------------------------


def test_vary_reads_settings_and_options_and_refuses_what_a_sweep_owns():
    assert parse_vary("loss=nonsat,rpgan").values == ("nonsat", "rpgan")
    assert parse_vary("lr_g=1e-4,2e-4").values == (1e-4, 2e-4)
    axis = parse_vary("disc.pack=1,2")
    assert axis.overlay(2) == {"options": {"disc": {"pack": 2}}}
    points = expand([parse_vary("loss=nonsat,rpgan"), axis])
    assert [p.label for p in points] == ["loss=nonsat disc.pack=1", "loss=nonsat disc.pack=2",
                                         "loss=rpgan disc.pack=1", "loss=rpgan disc.pack=2"]
    assert points[3].given({"data": "ring8", "options": {"disc": {"hidden": [8]}}}) == {
        "data": "ring8", "loss": "rpgan", "options": {"disc": {"hidden": [8], "pack": 2}}}
    for bad, words in [("seed=1,2", "--seeds"), ("lr=1", "not a run setting"), ("steps=ten", "steps"),
                       ("loss", "KEY=V1,V2"), ("loss=a,a", "twice"), ("foo.bar=1", "SECTION")]:
        with pytest.raises(ConfigError, match=words):
            parse_vary(bad)


def test_baseline_by_label_or_by_a_unique_part():
    points = expand([parse_vary("loss=nonsat,rpgan"), parse_vary("lr_g=1e-4,2e-4")])
    assert find_point(points, "loss=rpgan lr_g=1e-4").label == "loss=rpgan lr_g=0.0001"
    assert find_point(points, "loss=rpgan,lr_g=0.0002").label == "loss=rpgan lr_g=0.0002"
    with pytest.raises(ConfigError, match="matches 2 settings"):
        find_point(points, "loss=rpgan")
    with pytest.raises(ConfigError, match="matches no setting"):
        find_point(points, "loss=hinge")


def test_grid_file_and_seeds(tmp_path):
    path = tmp_path / "grid.toml"
    path.write_text('seeds = [3, 5]\nbaseline = "loss=nonsat"\n[vary]\nloss = ["nonsat", "rpgan"]\n'
                    '"disc.pack" = [1, 2]\n')
    axes, extra = load_grid(path)
    assert [(a.key, a.values) for a in axes] == [("loss", ("nonsat", "rpgan")), ("disc.pack", (1, 2))]
    assert extra == {"seeds": [3, 5], "baseline": "loss=nonsat", "points": []}
    assert parse_seeds(extra["seeds"]) == [3, 5] and parse_seeds("3") == [0, 1, 2] and parse_seeds("4,7") == [4, 7]
    for bad in ("0", "a", "1,1", "-1,2"):
        with pytest.raises(ConfigError):
            parse_seeds(bad)
    path.write_text('[vary]\nloss = "nonsat"\n')
    with pytest.raises(ConfigError, match="list"):
        load_grid(path)


def test_points_are_settings_given_whole_and_crossed_with_the_axes(tmp_path):
    recipe, tuned = parse_point("lr_g=1e-4,lr_d=1e-4"), parse_point("lr_g=3e-4,lr_d=5e-5,gen.hidden=64,64")
    assert tuned == {"lr_g": 3e-4, "lr_d": 5e-5, "gen.hidden": (64, 64)}  # a list value keeps its commas
    points = expand([parse_vary("loss=nonsat,rpgan")], [recipe, tuned])
    assert [p.label for p in points] == ["lr_g=0.0001 lr_d=0.0001 loss=nonsat", "lr_g=0.0001 lr_d=0.0001 loss=rpgan",
                                         "lr_g=0.0003 lr_d=5e-05 gen.hidden=64+64 loss=nonsat",
                                         "lr_g=0.0003 lr_d=5e-05 gen.hidden=64+64 loss=rpgan"]
    assert points[3].given({"data": "ring8"}) == {"data": "ring8", "lr_g": 3e-4, "lr_d": 5e-5, "loss": "rpgan",
                                                  "options": {"gen": {"hidden": (64, 64)}}}
    assert [p.label for p in expand([], [recipe, tuned])][0] == "lr_g=0.0001 lr_d=0.0001"
    for bad, words in [("lr_g", "KEY=VALUE"), ("seed=3", "--seeds"), ("steps=ten", "steps"), ("foo=1", "run setting")]:
        with pytest.raises(ConfigError, match=words):
            parse_point(bad)
    with pytest.raises(ConfigError, match="both in a --point and --vary"):
        expand([parse_vary("lr_g=1e-4,2e-4")], [recipe])
    with pytest.raises(ConfigError, match="the same"):
        expand([], [recipe, dict(recipe)])
    path = tmp_path / "grid.toml"
    path.write_text('seeds = 2\n[[points]]\nlr_g = 1e-4\n[[points]]\nlr_g = 3e-4\n"disc.pack" = 2\n')
    axes, extra = load_grid(path)
    assert axes == [] and extra["points"] == [{"lr_g": 1e-4}, {"lr_g": 3e-4, "disc.pack": 2}]


def test_core_shares_are_disjoint_and_never_more_than_the_cores():
    shares = core_slices(3, [0, 1, 2, 3, 4, 5, 6])
    assert shares == [[0, 1], [2, 3], [4, 5]]
    with pytest.raises(UsageError, match="at most --workers 2"):
        core_slices(3, [0, 1])


def test_the_values_a_sweep_compares_leave_out_what_describes_the_data():
    from ganforge.sweep.trial import measured_values

    result = {"metrics": {"modes": 7, "modes_total": 8, "reverse_kl": 0.5, "note": "text"},
              "context_keys": ["modes_total"]}
    assert measured_values(result) == {"modes": 7.0, "reverse_kl": 0.5}
    assert measured_values({"metrics": {"modes_total": 8}}) == {"modes_total": 8.0}  # older eval.json


# -- real sweeps ------------------------------------------------------------------------------------

TINY = ["--data", "ring8", "--set", "gen.hidden=16,16", "--set", "disc.hidden=16,16", "--batch-size", "32",
        "--log-every", "10", "--sample-every", "0", "-n", "400", "--metric", "modes"]


def sweep_command(out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "ganforge", "sweep", *TINY, "--vary", "loss=nonsat,rpgan", "--out", str(out), *extra]


def test_a_sweep_of_points_runs_each_point_with_its_settings_and_continues_as_one_plan(tmp_path):
    out = tmp_path / "points"
    cmd = [sys.executable, "-m", "ganforge", "sweep", *TINY, "--steps", "30", "--seeds", "1", "--point",
           "lr_g=1e-3,lr_d=1e-3", "--point", "lr_g=2e-3,disc.hidden=8,8", "--out", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr + done.stdout
    first = json.loads((out / "runs" / "lr_g=0.001_lr_d=0.001" / "seed-0" / "config.json").read_text())["config"]
    second = json.loads((out / "runs" / "lr_g=0.002_disc.hidden=8+8" / "seed-0" / "config.json").read_text())["config"]
    assert (first["lr_g"], first["lr_d"], second["lr_g"], second["lr_d"]) == (1e-3, 1e-3, 2e-3, 2e-4)
    assert second["options"]["disc"]["hidden"] == [8, 8]
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["summary"]) == {"lr_g=0.001 lr_d=0.001", "lr_g=0.002 disc.hidden=8+8"}
    assert summary["metrics"] == ["modes", "high_quality", "reverse_kl"]  # not the mixture's mode total
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and "2 already finished" in again.stderr, again.stderr


@pytest.mark.slow
def test_a_sweep_killed_with_sigkill_continues_without_rerunning_a_trial(tmp_path):
    out = tmp_path / "sweep"
    cmd = sweep_command(out, "--seeds", "1", "--steps", "160", "--ckpt-every", "40")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    runs = out / "runs"
    first, second = runs / "loss=nonsat" / "seed-0", runs / "loss=rpgan" / "seed-0"
    deadline = time.monotonic() + 240
    while not ((first / "eval.json").is_file() and (second / "checkpoints" / "latest").is_file()):
        assert proc.poll() is None, "the sweep ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = (first / "eval.json").stat().st_mtime_ns
    time.sleep(1.0)  # the trial's process dies with the sweep (PR_SET_PDEATHSIG)
    assert not (second / "eval.json").is_file()

    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr + done.stdout
    assert "1 already finished" in done.stderr
    assert (first / "eval.json").stat().st_mtime_ns == finished  # not rerun
    assert (out / "logs" / "loss=nonsat-seed-0.log").read_text().count("--- ") == 1
    resumed = json.loads((second / "config.json").read_text())["resumes"]
    assert len(resumed) == 1 and resumed[0]["step"] >= 40  # continued from its checkpoint
    steps = [r["step"] for r in map(json.loads, (second / "metrics.jsonl").read_text().splitlines())]
    assert steps == sorted(set(steps)) and steps[-1] == 160  # each step logged once

    again = subprocess.run(cmd, capture_output=True, text=True, timeout=600)  # all finished: only the report
    assert again.returncode == 0 and "2 already finished" in again.stderr

    other = subprocess.run([*cmd[:-2], "--steps", "100"], capture_output=True, text=True, timeout=600)
    assert other.returncode == 2 and "holds another sweep" in other.stderr


@pytest.mark.slow
@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="two workers need two cores")
def test_two_workers_run_at_once_on_their_own_cores_never_more_threads_than_cores(tmp_path):
    out = tmp_path / "sweep"
    done = subprocess.run(sweep_command(out, "--seeds", "2", "--steps", "100", "--workers", "2"),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr + done.stdout
    records = [json.loads(p.read_text()) for p in sorted(out.glob("runs/*/seed-*/eval.json"))]
    assert len(records) == 4
    cores = len(os.sched_getaffinity(0))
    for record in records:  # its own share of the cores, and every logged step used that many threads
        assert len(record["sweep"]["cores"]) == cores // 2
        rows = map(json.loads, (Path(record["run"]) / "metrics.jsonl").read_text().splitlines())
        assert {r["threads"] for r in rows if "threads" in r} == {cores // 2}
    spans = [((Path(r["run"]) / "config.json").stat().st_mtime, (Path(r["run"]) / "eval.json").stat().st_mtime,
              frozenset(r["sweep"]["cores"])) for r in records]
    overlapping = [(a, b) for i, a in enumerate(spans) for b in spans[i + 1:] if a[0] < b[1] and b[0] < a[1]]
    assert overlapping, "no two trials ran at the same time"
    assert all(a[2].isdisjoint(b[2]) for a, b in overlapping)  # trials that ran together shared no core

    # the report: a table per setting, the numbers in JSON and CSV, the picture
    assert "loss=nonsat  (baseline)" in done.stdout and "loss=rpgan  vs loss=nonsat" in done.stdout
    assert "Welch p" in done.stdout and "M-W p" in done.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["settings"] == ["loss=nonsat", "loss=rpgan"]
    modes = summary["summary"]["loss=rpgan"]["modes"]
    values = [t["values"]["modes"] for t in summary["trials"] if t["label"] == "loss=rpgan"]
    assert modes["n"] == 2 and modes["mean"] == pytest.approx(np.mean(values))
    assert "modes" in summary["versus_baseline"]["loss=rpgan"]
    rows = list(csv.DictReader((out / "trials.csv").open()))
    assert {(r["setting"], r["seed"]) for r in rows} == {(s, k) for s in ("loss=nonsat", "loss=rpgan") for k in "01"}
    assert (out / "summary.csv").read_text().startswith("setting,metric,n,mean,sem,ci_low,ci_high,difference")
    assert (out / "summary.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"



# -- a grid shared through a study (--storage) --------------------------------------------------------


def test_two_workers_that_both_enqueue_the_grid_still_run_each_cell_once(tmp_path):
    """Two workers opening the study at the same moment may both enqueue the grid: the duplicates
    are failed as such when taken, each cell goes to one worker, and the results are the study's."""
    pytest.importorskip("optuna")
    from optuna.trial import TrialState

    from ganforge.sweep.shared import SharedGrid, open_grid

    url, plan = f"sqlite:///{tmp_path / 'study.db'}", {"axes": [{"key": "loss", "values": ["a", "b"]}]}
    cells = ["loss=a/seed-0", "loss=a/seed-1", "loss=b/seed-0", "loss=b/seed-1"]
    one, two = (SharedGrid(open_grid(url, "s", plan), cells) for _ in range(2))
    assert one.fill() == (0, 4) and two.study.enqueue_trial({}, user_attrs={"cell": cells[0]}) is None
    assert two.fill() == (0, 0)  # the grid is there: nothing more (one duplicate, as if enqueued at once)
    taken = []
    while True:
        got = (one if len(taken) % 2 == 0 else two).take()
        if got is None:
            break
        taken.append(got)
        one.finish(got, tmp_path / got.cell, {"metrics": {"modes": float(len(taken)), "note": "x"}}, 0)
    assert sorted(t.cell for t in taken) == cells  # each cell once
    trials = one.study.get_trials()
    assert [t.user_attrs.get("skipped") for t in trials if t.state == TrialState.FAIL] == ["a duplicate of trial 0"]
    assert one.counts() == {"complete": 4, "running": 0, "waiting": 0, "failed": 0}
    assert {cell: values for cell, (_, values) in two.results().items()} == {
        t.cell: {"modes": float(i + 1)} for i, t in enumerate(taken)}
    with pytest.raises(UsageError, match="holds another sweep"):
        open_grid(url, "s", {"axes": []})


def shared_table(stdout: str) -> str:
    """The tables a sweep printed, without the lines that name its files."""
    return "\n".join(line for line in stdout.splitlines() if not line.startswith("wrote "))


def two_workers(tmp_path: Path, storage: str, outs: list[Path], *grid: str) -> list[subprocess.CompletedProcess]:
    workers = [subprocess.Popen(sweep_command(out, *grid, "--storage", storage), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for out in outs]
    done = []
    for worker in workers:
        stdout, stderr = worker.communicate(timeout=600)
        assert worker.returncode == 0, stderr + stdout
        done.append(subprocess.CompletedProcess(worker.args, worker.returncode, stdout, stderr))
    return done


def study_cells(storage: str, study: str = "sweep") -> dict[str, list]:
    import optuna

    cells: dict[str, list] = {}
    for t in optuna.load_study(study_name=study, storage=storage).get_trials():
        if "skipped" not in t.user_attrs:
            cells.setdefault(t.user_attrs["cell"], []).append(t)
    return cells


SHARED_GRID = ("--seeds", "2", "--steps", "60", "--threads", "1")


@pytest.mark.slow
def test_two_workers_split_a_grid_on_one_sqlite_study_and_report_as_one_worker_would(tmp_path):
    pytest.importorskip("optuna")
    single = subprocess.run(sweep_command(tmp_path / "single", *SHARED_GRID), capture_output=True, text=True,
                            timeout=600)
    assert single.returncode == 0, single.stderr + single.stdout

    out, storage = tmp_path / "shared", f"sqlite:///{tmp_path / 'study.db'}"
    two_workers(tmp_path, storage, [out, out], *SHARED_GRID)  # two processes, one --out, one study
    cells = study_cells(storage)
    assert sorted(cells) == [f"loss={loss}/seed-{s}" for loss in ("nonsat", "rpgan") for s in (0, 1)]
    assert all([t.state.name for t in trials] == ["COMPLETE"] for trials in cells.values())  # each cell once
    assert len({t.user_attrs["worker"] for trials in cells.values() for t in trials}) == 2  # both took trials
    for log in (out / "logs").glob("*.log"):
        assert log.read_text().count("--- ") == 1, log  # each trial started once, in one worker
    for run in out.glob("runs/*/seed-*"):
        assert "resumes" not in json.loads((run / "config.json").read_text())

    final = subprocess.run(sweep_command(out, *SHARED_GRID, "--storage", storage), capture_output=True, text=True,
                           timeout=600)  # every trial done: only the report, from the study
    assert final.returncode == 0, final.stderr + final.stdout
    assert "4 complete, 0 running elsewhere, 0 waiting" in final.stderr
    assert shared_table(final.stdout) == shared_table(single.stdout)
    assert (json.loads((out / "summary.json").read_text())["summary"]
            == json.loads((tmp_path / "single" / "summary.json").read_text())["summary"])


@pytest.mark.slow
def test_two_workers_split_a_grid_on_one_postgresql_study(tmp_path, postgres_url):
    """As two machines would run it: each worker its own --out, one study on PostgreSQL."""
    pytest.importorskip("optuna")
    outs = [tmp_path / "host0", tmp_path / "host1"]
    done = two_workers(tmp_path, postgres_url, outs, *SHARED_GRID)
    cells = study_cells(postgres_url)
    assert len(cells) == 4 and all([t.state.name for t in trials] == ["COMPLETE"] for trials in cells.values())
    ran = [run.relative_to(out / "runs") for out in outs for run in out.glob("runs/*/seed-*")
           if (run / "eval.json").is_file()]
    assert len(ran) == 4 and len(set(ran)) == 4  # each cell ran once, on one of the two hosts
    assert all(list(out.glob("runs/*/seed-*/eval.json")) for out in outs)  # both hosts took trials
    last = max(done, key=lambda d: d.stderr.count("sweep:"))
    final = subprocess.run(sweep_command(outs[0], *SHARED_GRID, "--storage", postgres_url), capture_output=True,
                           text=True, timeout=600)
    assert final.returncode == 0 and "4 complete" in final.stderr, final.stderr + last.stderr
    summary = json.loads((outs[0] / "summary.json").read_text())
    assert summary["summary"]["loss=rpgan"]["modes"]["n"] == 2 and not summary["missing"]


@pytest.mark.slow
def test_a_worker_killed_mid_trial_leaves_the_other_to_finish_the_grid_on_postgresql(tmp_path, postgres_url):
    """Two workers on one PostgreSQL study, as two machines; one is killed with SIGKILL (its trial's
    process dies with it) during its first trial. The other finishes its own cells, waits for the
    dead worker's trial, fails it once its heartbeat is stale, runs its cell, and prints the whole
    table: every cell complete once, the killed one after one failed try."""
    pytest.importorskip("optuna")
    from ganforge.tune.study import GRACE_S

    grid = ("--seeds", "2", "--steps", "400", "--threads", "1", "--storage", postgres_url, "--study", "killed")
    outs = [tmp_path / "host0", tmp_path / "host1"]
    victim = subprocess.Popen(sweep_command(outs[0], *grid), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while not list(outs[0].glob("runs/*/seed-*/metrics.jsonl")):  # training: past its first logged step
        assert victim.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    survivor = subprocess.Popen(sweep_command(outs[1], *grid), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
    victim.kill()
    victim.wait()
    killed_at = time.monotonic()
    stdout, stderr = survivor.communicate(timeout=600)
    assert survivor.returncode == 0, stderr + stdout
    assert time.monotonic() - killed_at >= GRACE_S  # it waited for the heartbeat to go stale
    cells = study_cells(postgres_url, "killed")
    assert len(cells) == 4
    states = sorted([t.state.name for t in trials] for trials in cells.values())
    assert states == [["COMPLETE"], ["COMPLETE"], ["COMPLETE"], ["FAIL", "COMPLETE"]]
    assert not list(outs[0].glob("runs/*/seed-*/eval.json"))  # the killed worker finished nothing
    assert len(list(outs[1].glob("runs/*/seed-*/eval.json"))) == 4
    summary = json.loads((outs[1] / "summary.json").read_text())
    assert not summary["missing"] and all(summary["summary"][f"loss={loss}"]["modes"]["n"] == 2
                                          for loss in ("nonsat", "rpgan"))


def test_a_dead_workers_trial_waits_again_once_its_heartbeat_is_stale(tmp_path, monkeypatch):
    """A worker killed mid-trial leaves it RUNNING; the next worker's start, once the heartbeat is
    older than the grace period, fails it and enqueues its cell again (here with a 1 s grace)."""
    pytest.importorskip("optuna")
    from ganforge.sweep.shared import SharedGrid, open_grid
    from ganforge.tune import study as studies

    monkeypatch.setattr(studies, "HEARTBEAT_S", 1)
    monkeypatch.setattr(studies, "GRACE_S", 1)
    url, cells = f"sqlite:///{tmp_path / 'study.db'}", ["base/seed-0"]
    dead = SharedGrid(open_grid(url, "s", {}), cells)
    dead.fill()
    lost = dead.take()
    assert lost is not None and dead.take() is None  # the only trial, now running in a worker that dies
    later = SharedGrid(open_grid(url, "s", {}), cells)
    assert later.fill() == (0, 0) and later.counts()["running"] == 1  # still beating, as far as it knows
    time.sleep(3.5)
    assert later.fill() == (1, 0)  # taken over: failed, and its cell waits again
    again = later.take()
    assert again is not None and again.cell == lost.cell and again.number != lost.number
