"""A run folder written by ganforge 0.1.0 before the run folder had one owner (commit 3aaa58e:
the loss window kept in four top-level keys of the training state) still loads and resumes, to
the same bits as the run it was cut from.

``tests/data/run_v0_1_ring8`` was made by that version with::

    ganforge run --data ring8 --steps 18 --ckpt-every 6 --log-every 5 --sample-every 0 \\
        --set gen.hidden=16 --set disc.hidden=16 --threads 1 --out run_v0_1_ring8

(its pictures, loss plot and lock removed). Its checkpoint of step 12 is in the middle of a
logging window (steps 11 and 12 summed, not yet written), so resuming from it and writing the
line of step 15 needs the old window state.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from ganforge.cli.main import main
from ganforge.run.folder import RunFolder

OLD_RUN = Path(__file__).parent / "data" / "run_v0_1_ring8"


def test_a_run_of_the_previous_version_resumes_to_the_same_bits(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(OLD_RUN, run)
    written = {r["step"]: (r["d_loss"], r["g_loss"]) for r in RunFolder(run).read_metrics()}
    assert main(["run", "--resume", "--from-step", "12", "--out", str(run), "--threads", "1"]) == 0
    rows = {r["step"]: (r["d_loss"], r["g_loss"]) for r in RunFolder(run).read_metrics() if "d_loss" in r}
    assert sorted(rows) == [5, 10, 15, 18]
    assert rows[15] == written[15] and rows[18] == written[18]
    record = RunFolder(run).read_record()
    assert record.resumes[-1]["step"] == 12


def test_sample_and_eval_read_a_run_of_the_previous_version(tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(OLD_RUN, run)
    assert main(["sample", str(run), "-n", "8", "-o", str(tmp_path / "s.npy")]) == 0
    assert main(["eval", str(run), "-n", "500", "--metric", "modes"]) == 0
    assert "modes" in capsys.readouterr().out
