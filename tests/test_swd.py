"""The sliced Wasserstein distance of Laplacian-pyramid patches (ganforge.metrics.swd) against a
plain reimplementation (scipy's 5 x 5 convolution, loops, scipy.stats' 1-D Wasserstein distance),
and the behaviour a user relies on: 0 for identical sets, growth with noise and blur, any image
size and channel count, the same numbers for the same seed, options refused by name."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage
import scipy.stats
import torch

from ganforge.data import DataInfo
from ganforge.errors import ConfigError
from ganforge.metrics.base import EvalData
from ganforge.metrics.swd import (
    SlicedWasserstein,
    extract_patches,
    laplacian_pyramid,
    level_rng,
    patch_plan,
    pyramid_sides,
    random_directions,
    sliced_wasserstein,
    swd,
)
from ganforge.registry import Component, Provider

FAST = {"projections": 128, "patches_per_image": 32}  # fewer numbers than the defaults: tests stay fast
KERNEL = np.outer([1, 4, 6, 4, 1], [1, 4, 6, 4, 1]) / 256.0  # Karras's (and cv2's) pyramid kernel


def fresh_rng():
    return np.random.default_rng()  # fresh inputs every run: the checks hold for any draw


def images(n: int, channels: int, side: int, rng: np.random.Generator) -> torch.Tensor:
    """Smooth coloured blobs over a sharp random edge, in [-1, 1]: structure at every scale."""
    yy, xx = np.mgrid[0:side, 0:side] / side
    out = np.zeros((n, channels, side, side))
    for _ in range(3):
        cy, cx = rng.uniform(0, 1, (2, n, 1, 1))
        width = rng.uniform(0.05, 0.3, (n, 1, 1))
        blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * width ** 2))
        out += rng.uniform(-1, 1, (n, channels, 1, 1)) * blob[:, None]
    angle, offset = rng.uniform(0, np.pi, (n, 1, 1)), rng.uniform(-0.3, 0.3, (n, 1, 1))
    edge = (np.cos(angle) * (xx - 0.5) + np.sin(angle) * (yy - 0.5) > offset)
    out += 0.5 * rng.choice([-1, 1], (n, channels, 1, 1)) * edge[:, None]
    return torch.from_numpy(np.tanh(out)).float()


# --- the plain reimplementation ------------------------------------------------------------------

def plain_pyramid(x: np.ndarray, levels: int) -> list[np.ndarray]:
    """Karras's generate_laplacian_pyramid, image by image and channel by channel."""

    def conv(a: np.ndarray, gain: float = 1.0) -> np.ndarray:
        return scipy.ndimage.convolve(a, KERNEL * gain, mode="mirror")

    pyramid = [x.astype(np.float64)]
    for _ in range(levels - 1):
        fine = pyramid[-1]
        down = np.stack([np.stack([conv(ch)[::2, ::2] for ch in img]) for img in fine])
        up = np.zeros_like(fine)
        up[:, :, ::2, ::2] = down
        pyramid[-1] = fine - np.stack([np.stack([conv(ch, 4.0) for ch in img]) for img in up])
        pyramid.append(down)
    return pyramid


def plain_patches(level: np.ndarray, plan) -> np.ndarray:
    """7 x 7 x C descriptors, one loop step per patch."""
    return np.stack([level[i, :, top:top + 7, left:left + 7].transpose(1, 2, 0).reshape(-1)
                     for i, top, left in zip(*plan, strict=True)])


def plain_swd(fake: np.ndarray, real: np.ndarray, seed: int, projections: int, patches_per_image: int,
              max_descriptors: int) -> dict[str, float]:
    """Normalise with both sets' per-channel mean and std, then average scipy's 1-D Wasserstein
    distance (the integral of |F - G|, another algorithm than sorted differences) per direction."""
    sides = pyramid_sides(*fake.shape[2:])
    count = min(min(len(fake), len(real)) * patches_per_image, max_descriptors)
    result = {}
    for level, (pf, pr) in enumerate(zip(plain_pyramid(fake, len(sides)), plain_pyramid(real, len(sides)),
                                         strict=True)):
        h, w = pf.shape[2:]
        a = plain_patches(pf, patch_plan(len(fake), count, h, w, level_rng(seed, level, "patches")))
        b = plain_patches(pr, patch_plan(len(real), count, h, w, level_rng(seed, level, "patches")))
        both = np.concatenate([a, b]).reshape(-1, 49, fake.shape[1])
        mean, std = both.mean(axis=(0, 1)), both.std(axis=(0, 1))
        a, b = [((x.reshape(-1, 49, fake.shape[1]) - mean) / std).reshape(len(x), -1) for x in (a, b)]
        dirs = random_directions(a.shape[1], projections, level_rng(seed, level, "directions")).double().numpy()
        result[f"swd_{h}"] = 1e3 * np.mean([scipy.stats.wasserstein_distance(a @ d, b @ d) for d in dirs])
    result["swd"] = float(np.mean(list(result.values())))
    return result


# --- agreement with the plain reimplementation ---------------------------------------------------

@pytest.mark.parametrize("shape", [(3, 32, 32), (2, 17, 23), (1, 20, 20)])
def test_pyramid_matches_scipy_convolution(shape):
    x = torch.from_numpy(fresh_rng().uniform(-1, 1, (3, *shape))).float()
    sides = pyramid_sides(*shape[1:], min_side=8)
    ours = laplacian_pyramid(x, len(sides))
    plain = plain_pyramid(x.numpy(), len(sides))
    assert [tuple(level.shape[2:]) for level in ours] == sides
    for a, b in zip(ours, plain, strict=True):
        np.testing.assert_allclose(a.numpy(), b, atol=2e-6)
    # the levels add back up to the image (a Laplacian pyramid loses nothing)
    rebuilt = plain[-1]
    for band in reversed(plain[:-1]):
        up = np.zeros_like(band)
        up[:, :, ::2, ::2] = rebuilt
        rebuilt = band + np.stack([np.stack([scipy.ndimage.convolve(ch, KERNEL * 4, mode="mirror") for ch in img])
                                   for img in up])
    np.testing.assert_allclose(rebuilt, x.numpy(), atol=1e-6)


def test_patches_match_a_loop():
    rng = fresh_rng()
    level = torch.from_numpy(rng.normal(size=(5, 3, 12, 10))).float().contiguous(memory_format=torch.channels_last)
    plan = patch_plan(5, 40, 12, 10, rng)
    np.testing.assert_array_equal(extract_patches(level, *plan).numpy(), plain_patches(level.numpy(), plan))
    np.testing.assert_array_equal(extract_patches(level.contiguous(), *plan).numpy(),
                                  plain_patches(level.numpy(), plan))


def test_sliced_wasserstein_matches_scipy():
    rng = fresh_rng()
    a = torch.from_numpy(rng.normal(size=(500, 20))).float()
    b = torch.from_numpy(rng.standard_t(3, size=(500, 20)) * 1.5 + 0.3).float()
    dirs = random_directions(20, 300, rng)  # more than one chunk of directions
    plain = np.mean([scipy.stats.wasserstein_distance(a.double().numpy() @ d, b.double().numpy() @ d)
                     for d in dirs.double().numpy()])
    assert sliced_wasserstein(a, b, dirs) == pytest.approx(plain, rel=1e-5)


@pytest.mark.parametrize("shape", [(3, 32, 32), (1, 28, 28), (2, 16, 20)])
def test_swd_matches_the_plain_reimplementation(shape):
    rng = fresh_rng()
    fake, real = images(30, shape[0], shape[1], rng)[..., :shape[2]], images(24, *shape[:2], rng)[..., :shape[2]]
    fake = fake + 0.1 * torch.randn(fake.shape, generator=torch.Generator().manual_seed(int(rng.integers(99))))
    seed = int(rng.integers(1000))
    ours = swd(fake, real, seed=seed, projections=200, patches_per_image=20, max_descriptors=400)
    plain = plain_swd(fake.numpy(), real.numpy(), seed, projections=200, patches_per_image=20, max_descriptors=400)
    assert ours.keys() == plain.keys()
    for key in plain:
        assert ours[key] == pytest.approx(plain[key], rel=1e-4), key


# --- what a user relies on -----------------------------------------------------------------------

def test_identical_sets_score_zero_and_independent_draws_score_low():
    rng = fresh_rng()
    a, b, c = images(400, 3, 32, rng), images(400, 3, 32, rng), images(400, 3, 32, rng)
    assert swd(a, a.clone(), seed=3, **FAST)["swd"] == 0.0  # both sets share the patch positions
    same = swd(a, b, seed=3, **FAST)["swd"]
    other_pair = swd(b, c, seed=4, **FAST)["swd"]
    different = swd(a, 0.7 * b + 0.05 * torch.randn(b.shape), seed=3, **FAST)["swd"]
    assert 0 < same < 0.25 * different
    # Another independent pair sits on the same floor, far below a different set. (Compared with
    # `same` directly the two floors are too noisy at these sizes: over 300 draws other_pair / same
    # ran 0.47-1.78, and rel=0.5 failed one draw in 20; other_pair / different was at most 0.21 over 200,
    # mean 0.12, sd 0.02.)
    assert 0 < other_pair < 0.25 * different


def test_grows_with_noise():
    rng = fresh_rng()
    real, fake = images(200, 3, 32, rng), images(200, 3, 32, rng)
    noise = torch.from_numpy(rng.normal(size=fake.shape)).float()
    values = [swd(fake + sigma * noise, real, seed=0, **FAST)["swd"] for sigma in (0.0, 0.05, 0.1, 0.2, 0.4)]
    assert values == sorted(values) and values[-1] > 5 * values[0], values


def test_grows_with_blur():
    rng = fresh_rng()
    real, fake = images(200, 3, 32, rng), images(200, 3, 32, rng)
    blurred = [torch.from_numpy(scipy.ndimage.gaussian_filter(fake.numpy(), (0, 0, s, s), mode="mirror"))
               for s in (0.5, 1.0, 1.5, 2.5)]
    results = [swd(x, real, seed=0, **FAST) for x in [fake, *blurred]]
    for key in ("swd", "swd_32"):  # the finest level feels blur first
        values = [r[key] for r in results]
        assert values == sorted(values) and values[-1] > 3 * values[0], (key, values)


@pytest.mark.parametrize(("shape", "keys"), [
    ((1, 28, 28), ["swd", "swd_28"]),
    ((3, 28, 28), ["swd", "swd_28"]),
    ((1, 32, 32), ["swd", "swd_32", "swd_16"]),
    ((3, 32, 32), ["swd", "swd_32", "swd_16"]),
    ((3, 64, 64), ["swd", "swd_64", "swd_32", "swd_16"]),
    ((1, 64, 48), ["swd", "swd_64", "swd_32"]),
    ((1, 8, 8), ["swd", "swd_8"]),  # smaller than 16 px: one level, the image itself
])
def test_any_size_and_channel_count(shape, keys):
    rng = fresh_rng()
    x = images(40, shape[0], max(shape[1:]), rng)[:, :, :shape[1], :shape[2]]
    y = images(40, shape[0], max(shape[1:]), rng)[:, :, :shape[1], :shape[2]]
    values = swd(x, y, seed=1, patches_per_image=8)
    assert list(values) == keys
    assert all(np.isfinite(v) and v > 0 for v in values.values())
    assert values["swd"] == pytest.approx(np.mean([values[k] for k in keys[1:]]))


def test_same_seed_same_numbers_whatever_the_thread_count():
    rng = fresh_rng()
    x, y = images(200, 3, 32, rng), images(150, 3, 32, rng)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = swd(x, y, seed=5, **FAST)
        torch.set_num_threads(2)
        two = swd(x, y, seed=5, **FAST)
    finally:
        torch.set_num_threads(threads)
    assert one == two
    assert swd(x, y, seed=6, **FAST) != one


def test_constant_channel_and_any_value_range():
    rng = fresh_rng()
    x, y = images(50, 2, 16, rng), images(50, 2, 16, rng)
    x[:, 1], y[:, 1] = 0.5, 0.5
    values = swd(x, y, seed=0)
    assert np.isfinite(values["swd"])
    # descriptors are normalised: the same data in [0, 255] scores the same
    assert swd(127.5 * (x + 1), 127.5 * (y + 1), seed=0)["swd"] == pytest.approx(values["swd"], rel=1e-4)


def test_too_small_images_are_refused():
    with pytest.raises(ValueError, match="7 x 7 patches"):
        swd(torch.zeros(4, 1, 6, 6), torch.zeros(4, 1, 6, 6))
    info = DataInfo((1, 6, 6), (-1.0, 1.0), "image")
    assert not SlicedWasserstein().applies_to(info, None)
    assert SlicedWasserstein().applies_to(DataInfo((1, 8, 8), (-1.0, 1.0), "image"), None)
    assert not SlicedWasserstein().applies_to(DataInfo((2,), None, "points"), None)


# --- the metric plugin ---------------------------------------------------------------------------

def test_metric_reads_pixels_with_the_data_seed():
    rng = fresh_rng()
    x, y = images(60, 3, 32, rng), images(60, 3, 32, rng)
    info = DataInfo((3, 32, 32), (-1.0, 1.0), "image")
    metric = SlicedWasserstein(projections=64, patches_per_image=16)
    values = metric.compute(EvalData(x, y, info, seed=9))
    assert values == swd(x, y, seed=9, projections=64, patches_per_image=16)
    assert list(metric.format(values)) == ["swd", "swd_32", "swd_16"]
    assert metric.labels.get("swd") == "SWD (x1e3, mean of levels)"
    assert metric.labels.get("swd_32") == "SWD 32 px level (x1e3)"
    assert metric.labels.get("fid", "fid") == "fid"
    assert (metric.has_floor, metric.needs_features, metric.by_default) == (True, False, True)


@pytest.mark.parametrize(("option", "value"), [
    ("projections", 0), ("projections", 2.5), ("patches_per_image", 0), ("max_descriptors", 1),
    ("min_side", 6), ("min_side", "big"),
])
def test_bad_options_name_the_option(option, value):
    with pytest.raises(ConfigError, match=rf"metric\.swd\.{option}=") as direct:
        SlicedWasserstein(**{option: value})
    assert "got" in str(direct.value)
    component = Component("metric", "swd", SlicedWasserstein, "SWD", Provider("test"))
    with pytest.raises(ConfigError, match=rf"metric\.swd\.{option}="):
        component.build(**{option: value})
