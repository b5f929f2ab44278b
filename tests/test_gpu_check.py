"""tools/gpu_check.sh: its syntax, and its whole pipeline as a CPU dry run (GPU_CHECK_DRY_RUN=1:
tiny sizes, the extension already built here), down to the JSON summary it writes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ganforge.ops import backend

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tools" / "gpu_check.sh"


def test_script_parses_and_needs_an_output_folder():
    assert subprocess.run(["bash", "-n", str(SCRIPT)]).returncode == 0
    usage = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True)
    assert usage.returncode == 2 and "usage: tools/gpu_check.sh OUT_DIR" in usage.stderr


@pytest.mark.slow
@pytest.mark.skipif(backend() != "cpp" or shutil.which("timeout") is None,
                    reason="the dry run uses the CPU build of ganforge._C and coreutils' timeout")
def test_dry_run_writes_the_summary_and_log(tmp_path):
    env = {**os.environ, "GPU_CHECK_DRY_RUN": "1", "GPU_CHECK_SKIP_BUILD": "1", "PYTHON": sys.executable}
    done = subprocess.run(["bash", str(SCRIPT), str(tmp_path / "out")], env=env, capture_output=True, text=True,
                          timeout=600)
    out = tmp_path / "out"
    log = (out / "gpu_check.log").read_text()
    assert done.returncode == 0, done.stdout + log[-4000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["dry_run"] and summary["ok"]
    steps = summary["steps"]
    for name in ("environment", "backend", "cuda_tests", "benchmark", "train_mnist"):
        assert steps[name]["status"] == "ok", (name, steps[name])
    assert steps["build"]["status"] == "skipped"
    assert steps["train_dcgan"]["status"] in ("ok", "skipped")
    assert summary["cuda_tests"]["tests"] > 0 and summary["cuda_tests"]["failures"] == 0
    rows = summary["benchmark"]
    assert {(r["dtype"], r["batch"]) for r in rows} == {(d, b) for d in ("float32", "bfloat16") for b in (64, 256)}
    assert all({"eager", "fused", "addmm_activation", "floor"} <= set(r["ms"]) for r in rows)
    assert summary["runs"]["mnist"]["lines"] > 0
