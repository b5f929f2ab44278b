"""scripts/stacked_digits.py, the look at a Stacked MNIST generator's digits quoted in
docs/results.md: the picture's rows hold what the classifier read, the shares add up."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganforge.cli.main import main

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "stacked_digits.py"


@pytest.fixture
def script(load_script):
    return load_script("stacked_digits")


def test_each_row_holds_the_digits_read_as_its_digit_and_the_last_the_near_misses(tmp_path, script):
    n = 40
    generator = torch.Generator().manual_seed(int(torch.randint(0, 2**31, ())))
    read = torch.randint(0, 10, (n,), generator=generator)
    probabilities = torch.rand(n, 10, generator=generator)
    probabilities[torch.arange(n), read] = 2.0  # the argmax is the reading
    digits = torch.rand(n, 1, 28, 28, generator=generator) * 2 - 1
    out = tmp_path / "digits.png"
    script.write_picture(digits, probabilities, read, 1, str(out))
    grid = torch.tensor(np.array(Image.open(out)))[::2, ::2].float() / 127.5 - 1
    assert grid.shape == (11 * 28, script.COLUMNS * 28)
    for d in range(10):
        first = (read == d).nonzero().squeeze(1)
        tile = grid[28 * d: 28 * d + 28, :28]
        expected = digits[first[0], 0] if len(first) else torch.full((28, 28), -1.0)
        assert torch.allclose(tile, expected, atol=1 / 127.5)
    near = probabilities[:, 1].masked_fill(read == 1, -1).argmax()
    assert torch.allclose(grid[280:308, :28], digits[near, 0], atol=1 / 127.5)


def test_the_script_reads_a_stacked_mnist_run(tmp_path):
    run = tmp_path / "run"
    assert main(["run", "--data", "stacked-mnist", "--gen", "dcgan", "--steps", "2", "--threads", "1",
                 "--out", str(run), "--set", "gen.width=8", "--set", "disc.width=8"]) == 0
    out = tmp_path / "digits.png"
    done = subprocess.run([sys.executable, str(SCRIPT), str(run), "-n", "60", "--out", str(out), "--doubt", "0.9"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if line.startswith("channel ")]
    assert [line.split(":")[0] for line in lines] == ["channel R", "channel G", "channel B"]
    for line in lines:
        shares = re.findall(r"(\d):\s*([\d.]+)", line.split(": ", 1)[1])
        assert [int(d) for d, _ in shares] == list(range(10))
        assert abs(sum(float(share) for _, share in shares) - 100) < 0.5
    assert Image.open(out).size == (16 * 56, 11 * 56)
    doubts = [line for line in done.stdout.splitlines() if " % of channels read below 0.9" in line]
    assert [line.split(":")[0] for line in doubts] == ["generated", "real"]


def test_confident_shares_leave_out_the_doubtful_readings(script):
    generator = torch.Generator().manual_seed(int(torch.randint(0, 2**31, ())))
    digit = torch.randint(0, 10, (200,), generator=generator)
    top = torch.where(torch.rand(200, generator=generator) < 0.3, 0.5, 0.99)  # about 30 % doubtful
    probabilities = torch.full((200, 10), 0.0)
    probabilities[torch.arange(200), digit] = top
    doubtful, shares = script.confident_shares(probabilities, 0.9)
    sure = top >= 0.9
    assert doubtful == pytest.approx(100 * (1 - sure.double().mean().item()))
    expected = torch.bincount(digit[sure], minlength=10).double() / sure.sum() * 100
    torch.testing.assert_close(shares, expected)
