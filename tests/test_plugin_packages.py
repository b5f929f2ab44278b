"""The example plugin packages under plugins/, installed for real with pip (into a temporary
folder) and found by the ``ganforge`` command through their entry points, not by import tricks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict[str, str]:
    target = tmp_path_factory.mktemp("site")
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                          "--target", str(target), str(ROOT / "plugins" / "ganforge-dcgan"),
                          str(ROOT / "plugins" / "ganforge-losses")], capture_output=True, text=True)
    if pip.returncode != 0:
        pytest.fail(f"pip could not install the example plugins: {pip.stderr[-2000:]}")
    return {**os.environ, "PYTHONPATH": str(target), "CI": "true"}


def ganforge(env, *args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ganforge", *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=600)


def test_list_shows_the_installed_components_with_their_distribution(installed):
    result = ganforge(installed, "list")
    assert result.returncode == 0, result.stderr
    for name in ("dcgan-bn", "hinge", "ragan"):
        assert name in result.stdout
    assert "ganforge-dcgan" in result.stdout and "ganforge-losses" in result.stdout


def test_dcgan_with_a_plugin_loss_trains_on_the_bundled_digits(installed, tmp_path):
    result = ganforge(installed, "run", "--gen", "dcgan-bn", "--loss", "hinge", "--steps", "3", "--batch-size", "16",
                      "--set", "gen.width=8", "--set", "disc.width=8", "--threads", "1", "--out", str(tmp_path / "r"))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "r" / "samples" / "step_0000003.png").exists()
    assert "dcgan-bn/dcgan-bn with hinge" in result.stderr or "dcgan-bn/dcgan-bn with hinge" in result.stdout
