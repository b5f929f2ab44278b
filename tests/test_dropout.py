"""ganforge's Dropout: torch's inverted dropout in distribution (checked with scipy's tests on
fresh random draws), exact in value, seeded, and differentiable to any order."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from scipy import stats

from ganforge.nn import Dropout, dropout_mask


def fresh_seed() -> int:
    """A new seed each run (printed when a test fails; ``GANFORGE_TEST_SEED=S`` replays it)."""
    seed = int(os.environ.get("GANFORGE_TEST_SEED", np.random.SeedSequence().entropy % 2**31))
    print(f"seed {seed} (replay with GANFORGE_TEST_SEED={seed})")
    return seed


@pytest.mark.parametrize("p", [0.05, 0.3, 0.5, 0.9])
def test_keep_rate_and_scale_match_inverted_dropout(p):
    torch.manual_seed(fresh_seed())
    x = torch.ones(257, 1031)  # sizes not a multiple of 4: the last word is cut
    out = Dropout(p).train()(x)
    kept = out != 0
    scale = 65536 / (65536 - round(p * 65536))
    assert torch.equal(out[kept], torch.full_like(out[kept], scale))  # kept units scaled exactly
    assert abs(1 / scale - (1 - p)) < 1 / 65536
    n, k = x.numel(), int(kept.sum())
    assert stats.binomtest(k, n, 1 - p).pvalue > 1e-6
    assert float(out.mean()) == pytest.approx(1.0, abs=6 * (p / ((1 - p) * n)) ** 0.5)  # E[out] = x


def test_each_16_bit_lane_of_a_word_and_neighbours_are_independent():
    """Each 64-bit word feeds four units: every lane must keep at the same rate, and a unit's
    fate must not predict its neighbour's."""
    torch.manual_seed(fresh_seed())
    keep = (dropout_mask(torch.ones(400_000), 0.5) != 0).numpy()
    lanes = keep.reshape(-1, 4)
    counts = np.stack([lanes.sum(0), len(lanes) - lanes.sum(0)])
    assert stats.chi2_contingency(counts).pvalue > 1e-6
    pairs = np.zeros((2, 2))
    np.add.at(pairs, (keep[:-1].astype(int), keep[1:].astype(int)), 1)
    assert stats.chi2_contingency(pairs).pvalue > 1e-6


def test_same_seed_same_mask_and_eval_or_zero_rate_is_identity():
    x = torch.randn(64, 512)
    seed = fresh_seed()
    torch.manual_seed(seed)
    a = Dropout(0.3)(x)
    torch.manual_seed(seed)
    assert torch.equal(a, Dropout(0.3)(x))
    assert not torch.equal(a, Dropout(0.3)(x))  # the generator moved on
    assert Dropout(0.3).eval()(x) is x
    assert Dropout(0.0)(x) is x


def test_gradients_of_first_and_second_order_float64():
    seed = fresh_seed()
    x = torch.randn(6, 9, dtype=torch.float64, requires_grad=True)

    def f(t: torch.Tensor) -> torch.Tensor:  # the same mask on every call
        torch.manual_seed(seed)
        return Dropout(0.4)(t).pow(2)

    assert torch.autograd.gradcheck(f, (x,))
    assert torch.autograd.gradgradcheck(f, (x,))


def test_follows_the_input_dtype():
    torch.manual_seed(fresh_seed())
    for dtype in (torch.float32, torch.float64, torch.bfloat16):
        assert Dropout(0.3)(torch.ones(8, 8, dtype=dtype)).dtype == dtype
