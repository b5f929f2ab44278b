"""Sliced Wasserstein distance between Laplacian-pyramid patches (Karras et al. 2018, "Progressive
Growing of GANs", appendix D): a multi-scale comparison of local image statistics that needs no
pretrained network, so it reads images of any size and channel count offline.

How ganforge computes it, per data set (fakes and reals):

1. A Laplacian pyramid of every image, with the 5-tap binomial filter [1, 4, 6, 4, 1] / 16 (in
   both directions, mirrored borders) to go down and up: a level for each side H, H/2, H/4, ...
   while the smaller side is at least ``min_side`` (16, Karras's rule: 64 px -> 64, 32, 16; 32 px
   -> 32, 16; 28 px -> 28). The finest levels are band-pass, the last one is the blurred residual.
   An image smaller than ``min_side`` gets one level, the image itself (8 x 8 digits -> 8).
2. From each level, random 7 x 7 patches: 7 x 7 x C descriptors. Karras takes 128 per image and
   level (2.1 M per level for 16,384 images); ganforge takes ``patches_per_image`` per image but
   at most ``max_descriptors`` per level and set, spread evenly over the images (10,000 images:
   13 each). Fakes and reals use the same patch positions (the same random stream), so two
   identical sets score exactly 0.
3. Each descriptor is normalised per colour channel with the mean and standard deviation of that
   level's descriptors of *both* sets together. (Karras's code normalises each set by its own
   statistics, which makes the metric blind to a global shift of brightness or contrast.)
4. The sliced Wasserstein distance: ``projections`` random unit directions (Karras: 4 x 128 = 512),
   each set projected on each, and the 1-D Wasserstein-1 distance of the projections, which for
   two sets of the same size is the mean absolute difference of the sorted values; averaged over
   directions, multiplied by 1e3 (Karras's tables do the same).

The result: ``swd_<side>`` for each level (side = the level's height in px) and ``swd``, their mean.
Lower is better. An estimate from finite samples is biased upwards: by about 1 / sqrt(descriptor
count) at the fine levels, by the number of images at the coarse ones (a 16 x 16 residual holds
few independent patches per image). Hence the real-vs-real floor; with the defaults and 10,000
samples both it (two halves of 5,000) and the main value read 2^17 descriptors per level and set.
Memory: two sets of 2^17 x 49C float32 descriptors per level (about 150 MB per level at C = 3).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from ganforge.data import DataInfo, GanDataset
from ganforge.metrics.base import EvalData, Metric
from ganforge.options import Rule, check_options

PATCH = 7
"""Side of the square patches (Karras's ``nhood_size``)."""
BINOMIAL = (1 / 16, 4 / 16, 6 / 16, 4 / 16, 1 / 16)
"""The 5-tap filter of each direction; cv2.pyrDown's and Karras's 5 x 5 kernel is its outer product."""
SCALE = 1e3
"""Values are reported x 1e3, as in Karras's tables."""
CHUNK_IMAGES = 500
"""Images whose pyramid is built at once: bounds the memory of 10,000 large images."""
CHUNK_DIRECTIONS = 128
"""Directions projected and sorted at once (Karras's ``dirs_per_repeat``): bounds the memory."""


def pyramid_sides(height: int, width: int, min_side: int = 16) -> list[tuple[int, int]]:
    """(height, width) of each pyramid level, finest first: the image, then halves (an odd side
    rounds up) while the smaller side stays at least ``min_side``. An image smaller than that is
    its own single level."""
    sides = [(height, width)]
    while min(half := ((sides[-1][0] + 1) // 2, (sides[-1][1] + 1) // 2)) >= min_side:
        sides.append(half)
    return sides


def _blur(x: torch.Tensor, gain: float = 1.0, stride: int = 1) -> torch.Tensor:
    """The binomial filter (times ``gain``) on every channel, mirrored at the borders (scipy's
    ``mode="mirror"``, torch's ``"reflect"``), keeping every ``stride``-th row and column. A
    depthwise conv on channels-last memory: several times faster on the CPU than the same filter
    on (N * C, 1, H, W), and each output sums its taps in one order whatever the thread count."""
    channels = x.shape[1]
    taps = torch.tensor(BINOMIAL, dtype=x.dtype)
    kernel = (torch.outer(taps, taps) * gain).expand(channels, 1, 5, 5).contiguous(memory_format=torch.channels_last)
    return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), kernel, stride=stride, groups=channels)


def pyr_down(x: torch.Tensor) -> torch.Tensor:
    """Blur, keep every other row and column (an odd side rounds up), like cv2.pyrDown."""
    return _blur(x, stride=2)


def pyr_up(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Back to ``size``: zeros between the samples, blurred with gain 4 (each output pixel gets a
    quarter of the taps), like cv2.pyrUp with ``dstsize``."""
    up = x.new_zeros(x.shape[0], *size, x.shape[1]).permute(0, 3, 1, 2)  # channels-last, no copy
    up[:, :, ::2, ::2] = x
    return _blur(up, gain=4.0)


def laplacian_pyramid(x: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """``levels`` images per input, finest first: band-pass differences, then the residual; each
    in channels-last memory (as :func:`extract_patches` reads them)."""
    pyramid = [x.contiguous(memory_format=torch.channels_last)]
    for _ in range(levels - 1):
        smaller = pyr_down(pyramid[-1])
        pyramid[-1] = pyramid[-1] - pyr_up(smaller, (pyramid[-1].shape[2], pyramid[-1].shape[3]))
        pyramid.append(smaller)
    return pyramid


def patch_plan(n_images: int, count: int, height: int, width: int,
               rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where ``count`` patches are taken: (image, top, left), int64 arrays sorted by image. Images
    are used evenly (a random order, cycled), so no image gives two more patches than another."""
    order = rng.permutation(n_images)
    image = np.sort(order[np.arange(count) % n_images])
    top = rng.integers(0, height - PATCH + 1, size=count)
    left = rng.integers(0, width - PATCH + 1, size=count)
    return image, top, left


def extract_patches(level: torch.Tensor, image: np.ndarray, top: np.ndarray, left: np.ndarray) -> torch.Tensor:
    """The 7 x 7 patches of ``level`` (N, C, H, W) at (image, top, left): (count, 49 * C),
    flattened in (row, column, channel) order: one gather from a strided view of the
    channels-last memory, where each patch row is 7 * C consecutive numbers."""
    n, channels, height, width = level.shape
    nhwc = level.permute(0, 2, 3, 1)
    if not nhwc.is_contiguous():
        nhwc = nhwc.contiguous()
    row, pixel = width * channels, channels
    windows = nhwc.as_strided((n, height - PATCH + 1, width - PATCH + 1, PATCH, PATCH, channels),
                              (height * row, row, pixel, row, pixel, 1))
    patches = windows[torch.from_numpy(image), torch.from_numpy(top), torch.from_numpy(left)]
    return patches.reshape(len(image), -1)


def pyramid_descriptors(images: torch.Tensor, sides: list[tuple[int, int]],
                        plans: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> list[torch.Tensor]:
    """Each level's descriptors at ``plans`` (one per level, as :func:`patch_plan` gives, sorted
    by image), building the pyramid of ``CHUNK_IMAGES`` images at a time."""
    out = [torch.empty(len(plan[0]), images.shape[1] * PATCH * PATCH) for plan in plans]
    for start in range(0, len(images), CHUNK_IMAGES):
        stop = min(start + CHUNK_IMAGES, len(images))
        chunk = images[start:stop].to(dtype=torch.float32, device="cpu")
        for level, (image, top, left), desc in zip(laplacian_pyramid(chunk, len(sides)), plans, out, strict=True):
            lo, hi = np.searchsorted(image, [start, stop])
            if hi > lo:
                desc[lo:hi] = extract_patches(level, image[lo:hi] - start, top[lo:hi], left[lo:hi])
    return out


def channel_stats(sets: list[torch.Tensor], channels: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Each colour channel's mean and standard deviation over all descriptors of ``sets`` and
    their 49 positions (Karras's normalisation), repeated per descriptor entry: two (49 * C,)
    tensors. A constant channel gets a deviation of 1 (it is only centred). Sums in float64 with
    numpy, which is many times faster here than torch and adds in one order on any thread count."""
    rows = sum(len(x) for x in sets) * PATCH * PATCH
    first = sum(np.sum(x.numpy(), axis=0, dtype=np.float64) for x in sets)
    mean = np.reshape(first, (-1, channels)).sum(axis=0) / rows
    centre = np.tile(mean, PATCH * PATCH).astype(np.float32)  # two passes: exact for a near-constant channel
    second = sum(np.sum(np.square(x.numpy() - centre), axis=0, dtype=np.float64) for x in sets)
    var = np.reshape(second, (-1, channels)).sum(axis=0) / rows
    std = np.where(var > 0, np.sqrt(var), 1.0)
    return (torch.from_numpy(np.tile(mean, PATCH * PATCH)).float(),
            torch.from_numpy(np.tile(std, PATCH * PATCH)).float())


def random_directions(dim: int, count: int, rng: np.random.Generator) -> torch.Tensor:
    """``count`` random unit vectors of length ``dim``, uniform on the sphere: (count, dim)."""
    d = rng.standard_normal((count, dim))
    return torch.from_numpy(d / np.linalg.norm(d, axis=1, keepdims=True)).float()


def sliced_wasserstein(a: torch.Tensor, b: torch.Tensor, directions: torch.Tensor) -> float:
    """Mean over ``directions`` (P, D) of the 1-D Wasserstein-1 distance between the projections of
    ``a`` and ``b`` (two (M, D) sets of the same size): mean |sort(a.d) - sort(b.d)|. Unscaled."""
    if a.shape != b.shape:
        raise ValueError(f"sliced_wasserstein needs two sets of the same shape, got {tuple(a.shape)} "
                         f"and {tuple(b.shape)}")
    total = 0.0
    for i in range(0, len(directions), CHUNK_DIRECTIONS):
        d = directions[i:i + CHUNK_DIRECTIONS]
        # numpy's sort (SIMD on x86) is many times faster than torch.sort on the CPU
        pa, pb = (d @ a.T).numpy(), (d @ b.T).numpy()
        pa.sort(axis=1)
        pb.sort(axis=1)
        np.subtract(pa, pb, out=pa)
        total += float(np.abs(pa, out=pa).sum(axis=1, dtype=np.float64).sum())
    return total / (len(directions) * len(a))


STREAMS = {"patches": 0, "directions": 1}


def level_rng(seed: int, level: int, stream: str) -> np.random.Generator:
    """The random numbers of one pyramid level (0: finest) for ``"patches"`` (the plan both sets
    share) or ``"directions"``: independent streams, so a level's numbers do not depend on how
    many numbers another level drew."""
    return np.random.default_rng([seed, level, STREAMS[stream]])


def swd(fake: torch.Tensor, real: torch.Tensor, *, seed: int = 0, projections: int = 512,
        patches_per_image: int = 128, max_descriptors: int = 2 ** 17, min_side: int = 16) -> dict[str, float]:
    """``{"swd_<side>": ..., "swd": mean}``, x 1e3, between two sets of (N, C, H, W) images (any
    range: descriptors are normalised). The same inputs and seed give the same numbers."""
    if fake.ndim != 4 or real.ndim != 4 or fake.shape[1:] != real.shape[1:]:
        raise ValueError(f"SWD needs two sets of (N, C, H, W) images of one shape, got {tuple(fake.shape)} "
                         f"and {tuple(real.shape)}")
    channels, height, width = fake.shape[1:]
    if min(height, width) < PATCH:
        raise ValueError(f"SWD takes {PATCH} x {PATCH} patches; images of {height} x {width} px are too small")
    n = min(len(fake), len(real))
    if n < 1:
        raise ValueError(f"SWD needs samples on both sides, got {len(fake)} and {len(real)}")
    sides = pyramid_sides(height, width, min_side)
    count = min(n * patches_per_image, max_descriptors)
    plans: dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {"fake": [], "real": []}
    for level, (h, w) in enumerate(sides):
        for which, size in (("fake", len(fake)), ("real", len(real))):
            plans[which].append(patch_plan(size, count, h, w, level_rng(seed, level, "patches")))  # one stream for both
    fake_desc = pyramid_descriptors(fake, sides, plans["fake"])
    real_desc = pyramid_descriptors(real, sides, plans["real"])
    values = {}
    for level, ((h, _), a, b) in enumerate(zip(sides, fake_desc, real_desc, strict=True)):
        # Normalising both sets by one mean and deviation, then projecting on d, is projecting the
        # raw descriptors on d / std, less one constant for both sets that cancels in the sorted
        # differences: so no normalised copy is made.
        _, std = channel_stats([a, b], channels)
        directions = random_directions(a.shape[1], projections, level_rng(seed, level, "directions"))
        values[f"swd_{h}"] = SCALE * sliced_wasserstein(a, b, directions / std)
    return {"swd": float(np.mean(list(values.values()))), **values}


class _LevelLabels(dict[str, str]):
    """Labels of ``swd`` and of every ``swd_<side>`` key, whichever sides the data has."""

    def get(self, key: str, default: str | None = None) -> str | None:  # type: ignore[override]
        side = key.removeprefix("swd_")
        if key not in self and key.startswith("swd_") and side.isdigit():
            return f"SWD {side} px level (x1e3)"
        return super().get(key, default)


def _at_least(least: int, what: str, example: int) -> Rule:
    return Rule(f"{what}, at least {least}", lambda v: v >= least, str(example))


Projections = Annotated[int, _at_least(1, "a number of random directions", 512)]
PatchesPerImage = Annotated[int, _at_least(1, "a number of patches per image and level", 128)]
MaxDescriptors = Annotated[int, _at_least(2, "a number of patches per level and set", 2 ** 17)]
MinSide = Annotated[int, _at_least(PATCH, "a side in pixels", 16)]


class SlicedWasserstein(Metric):
    """Sliced Wasserstein distance of Laplacian-pyramid 7 x 7 patches (Karras et al. 2018),
    x 1e3, per level and averaged; lower is better. Reads pixels: no extractor, no weights."""

    modalities: ClassVar[tuple[str, ...]] = ("image",)
    has_floor: ClassVar[bool] = True
    needs_features: ClassVar[bool] = False
    labels: ClassVar[dict[str, str]] = _LevelLabels(swd="SWD (x1e3, mean of levels)")

    def __init__(self, projections: Projections = 512, patches_per_image: PatchesPerImage = 128,
                 max_descriptors: MaxDescriptors = 2 ** 17, min_side: MinSide = 16) -> None:
        check_options(SlicedWasserstein, {"projections": projections, "patches_per_image": patches_per_image,
                                          "max_descriptors": max_descriptors, "min_side": min_side}, "metric.swd")
        self.projections, self.patches_per_image = projections, patches_per_image
        self.max_descriptors, self.min_side = max_descriptors, min_side

    def applies_to(self, info: DataInfo, dataset: GanDataset | None) -> bool:
        """Images of at least 7 x 7 px (one patch), any channel count."""
        shape = tuple(info.sample_shape)
        return info.modality in self.modalities and len(shape) == 3 and min(shape[1:]) >= PATCH

    def compute(self, data: EvalData) -> dict[str, float]:
        return swd(data.fake, data.real, seed=data.seed, projections=self.projections,
                   patches_per_image=self.patches_per_image, max_descriptors=self.max_descriptors,
                   min_side=self.min_side)

    def format(self, values: Mapping[str, float], *, spread: bool = True) -> dict[str, str]:
        """The mean first, then the levels from fine to coarse, 4 significant digits."""
        shown = super().format(values, spread=spread)
        return {key: shown[key] for key in sorted(shown, key=lambda k: (k != "swd", -int(k[4:] or 0)))}

    def describe(self) -> dict[str, object]:
        return {"projections": self.projections, "patches_per_image": self.patches_per_image,
                "max_descriptors": self.max_descriptors, "min_side": self.min_side}
