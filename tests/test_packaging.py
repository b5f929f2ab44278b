"""The wheel a user installs holds every file of the package the checkout has: the recipes, the
shipped digits, the extractor weights, every module. An editable install reads them from the
checkout, so only a built wheel shows a file that package-data forgot."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _tracked_files() -> set[str]:
    listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True)
    if listed.returncode != 0:
        pytest.skip("not a git checkout: the package's files cannot be listed")
    return {name for name in listed.stdout.splitlines() if (ROOT / name).is_file()}


@pytest.mark.slow
def test_the_wheel_holds_every_tracked_file_of_the_package(tmp_path):
    tracked = _tracked_files()
    expected = {name for name in tracked if name.startswith("ganforge/")}
    # Built from a copy of the tracked files: a build/ folder in the checkout would lend the wheel
    # files from an earlier build.
    source = tmp_path / "source"
    for name in tracked:
        if not name.startswith(("tests/", "benchmarks/", "plugins/", "docs/")):
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    # GANFORGE_NO_EXT: the compiled module is not what is checked here, and compiling takes minutes.
    env = {**os.environ, "GANFORGE_NO_EXT": "1"}
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-build-isolation", "--no-deps", "-q",
                            "-w", str(tmp_path), str(source)], env=env, capture_output=True, text=True)
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = tmp_path.glob("ganforge-*.whl")
    shipped = set(zipfile.ZipFile(wheel).namelist())
    missing = sorted(expected - shipped)
    assert not missing, f"the wheel lacks {missing}: add them to [tool.setuptools.package-data] in pyproject.toml"
    assert "ganforge/data/mnist_digits/train-images-idx3-ubyte.xz" in shipped
    assert not any(name.startswith(("tests/", "benchmarks/", "plugins/", "scripts/")) for name in shipped)
