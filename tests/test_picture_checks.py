"""The picture counts quoted in docs/results.md (scripts/picture_checks.py), on images whose
answer is known by hand."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "picture_checks.py"


@pytest.fixture(scope="module")
def checks():
    spec = importlib.util.spec_from_file_location("picture_checks", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _image(points, size=8):
    image = -torch.ones(1, 1, size, size)
    for y, x in points:
        image[0, 0, y, x] = 1.0
    return image


@pytest.mark.parametrize("points, stray", [
    ([], 0),
    ([(3, 3)], 1),                      # alone
    ([(0, 0)], 1),                      # alone in a corner: the border is not a neighbour
    ([(3, 3), (4, 4)], 2),              # a diagonal pair: one neighbour each
    ([(3, 2), (3, 3), (3, 4)], 2),      # a stroke of three: its ends have one neighbour, the middle two
    ([(y, x) for y in (2, 3, 4) for x in (2, 3, 4)], 0),  # a blob
    ([(1, 1), (6, 6), (1, 6)], 3),
])
def test_stray_pixels_count_bright_pixels_with_at_most_one_bright_neighbour(checks, points, stray):
    assert checks.stray_pixels(_image(points), (-1.0, 1.0)) == stray


def test_stray_pixels_average_over_images_and_use_the_value_range(checks):
    images = torch.cat([_image([(3, 3)]), _image([])])
    assert checks.stray_pixels(images, (-1.0, 1.0)) == 0.5
    assert checks.stray_pixels((images + 1) / 2, (0.0, 1.0)) == 0.5  # images in [0, 1]
    dim = _image([(3, 3)]) * 0 - 1
    dim[0, 0, 3, 3] = -0.2  # below the middle of the range: not bright
    assert checks.stray_pixels(dim, (-1.0, 1.0)) == 0


class _Reads:
    """A stand-in classifier whose probabilities are given."""

    def __init__(self, probs):
        self.probs = probs

    def probabilities(self, images):
        return self.probs


def test_doubted_cells_per_64_count_unsure_or_wrong_readings(checks):
    probs = torch.tensor([[0.95, 0.05], [0.6, 0.4], [0.02, 0.98], [0.97, 0.03]])
    images = torch.zeros(4, 1, 2, 2)
    # unsure (row 1) doubted either way; row 3 read as 0 but asked for 1: doubted with labels only
    assert checks.doubted_per_64(_Reads(probs), images, None) == pytest.approx(64 * 1 / 4)
    assert checks.doubted_per_64(_Reads(probs), images, torch.tensor([0, 0, 1, 1])) == pytest.approx(64 * 2 / 4)
