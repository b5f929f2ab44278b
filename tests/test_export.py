"""``ganforge export``: a torch.export program of the generator that loads and runs in a process
where ganforge cannot be imported, and gives the run's own samples."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from ganforge.cli.main import main

LOAD_WITHOUT_GANFORGE = """
import sys, json, zipfile
sys.modules["ganforge"] = None  # any import of ganforge now fails
import numpy as np, torch
program = torch.export.load(sys.argv[1]).module()
for name in sys.argv[2:]:  # any batch size
    np.save(name + ".out.npy", program(torch.from_numpy(np.load(name))).detach().numpy())
"""


@pytest.mark.parametrize("data, extra", [("ring8", []), ("digits", ["--set", "gen.norm=batch"]),
                                         ("ring8", ["--set", "gen.classes=8"])])
def test_exported_generator_runs_without_ganforge_and_matches(data, extra, tmp_path):
    run = tmp_path / "run"
    assert main(["run", "--data", data, "--steps", "20", "--out", str(run), "--threads", "1", "--batch-size", "16",
                 "--set", "gen.hidden=16,16", "--set", "disc.hidden=16", "--sample-every", "0", *extra]) == 0
    assert main(["export", str(run), "-o", str(tmp_path / "g.pt2")]) == 0

    from ganforge.plugins import load_registry
    from ganforge.train.restore import load_run

    restored = load_run(run, load_registry()[1])
    noise = {n: torch.randn(n, restored.config.z_dim) for n in (1, 7, 300)}  # the batch size is free
    for n, z in noise.items():
        np.save(tmp_path / f"z{n}.npy", z.numpy())
    done = subprocess.run([sys.executable, "-c", LOAD_WITHOUT_GANFORGE, str(tmp_path / "g.pt2"),
                           *(str(tmp_path / f"z{n}.npy") for n in noise)], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    for n, z in noise.items():
        with torch.no_grad():
            expected = restored.generator(z).numpy()
        np.testing.assert_allclose(np.load(tmp_path / f"z{n}.npy.out.npy"), expected, rtol=1e-5, atol=1e-6)
    assert restored.averaged  # the EMA generator, as sample and eval use


def test_export_metadata_and_bad_output_names(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["run", "--data", "ring8", "--steps", "3", "--out", str(run), "--set", "gen.hidden=8",
                 "--set", "disc.hidden=8", "--sample-every", "0"]) == 0
    assert main(["export", str(run), "-o", str(tmp_path / "g.pt2")]) == 0
    import zipfile

    with zipfile.ZipFile(tmp_path / "g.pt2") as archive:
        name = next(n for n in archive.namelist() if n.endswith("ganforge.json"))
        meta = json.loads(archive.read(name))
    assert meta["z_dim"] == 2 and meta["sample_shape"] == [2] and meta["step"] == 3
    capsys.readouterr()
    assert main(["export", str(run), "-o", str(tmp_path / "g.pt")]) == 2
    assert ".pt2" in capsys.readouterr().err
