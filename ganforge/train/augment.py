"""Differentiable augmentation of everything the discriminator sees (``--augment``).

Why: with little data the discriminator memorises the training images, its scores stop telling
the generator anything, and training collapses. DiffAugment (Zhao et al. 2020, "Differentiable
Augmentation for Data-Efficient GAN Training") transforms *every* input of D, real and fake,
in the D step and in the G step, with operations that are differentiable, so G is trained
through them. Augmenting only the reals teaches G to draw augmented images; augmenting only in
the D step leaves G facing a D that never saw its raw samples.

The operations are DiffAugment's (its ``DiffAugment_pytorch.py``), each drawn per sample:

- ``translation``: shift by up to 1/8 of the image size on each axis, padded with zeros;
- ``cutout``: zero a square of half the image size at a random place;
- ``color``: brightness + U(-0.5, 0.5), saturation x U(0, 2), contrast x U(0.5, 1.5).

Each operation is applied to a sample with probability ``p`` (``--augment-p``, default 1, which
is DiffAugment). ``--augment-p ada`` adapts ``p`` as ADA does (Karras et al. 2020, "Training
GANs with Limited Data"): from ``r_t = E[sign(D(real))]`` over four steps, ``p`` moves up when
``r_t`` is above ``--augment-target`` (D is overfitting) and down otherwise, by as much as lets
it go from 0 to 1 in ``--augment-ramp`` images.

The random draws come from the augmentation's own generator, seeded from the run's seed, drawn
on the CPU for the whole global batch (then sliced per process like the noise), so they are the
same with any thread count and device; its state and ``p`` are part of the checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from ganforge.data.base import DataInfo
from ganforge.errors import UsageError
from ganforge.settings import AUGMENTATIONS

TRANSLATION_RATIO = 0.125  # DiffAugment's rand_translation
CUTOUT_RATIO = 0.5  # DiffAugment's rand_cutout
ADA_INTERVAL = 4  # steps between adjustments of p (StyleGAN2-ADA's ada_interval)
SEED_OFFSET = 0x41554731  # the augmentation's generator: seed + this, apart from the data's seed + 1

Draw = Callable[[tuple[int, ...]], torch.Tensor]


def translation(x: torch.Tensor, rand: Draw, ratio: float = TRANSLATION_RATIO) -> torch.Tensor:
    """Shift each sample by whole pixels, at most ``ratio`` of its size on each axis, filling
    with zeros: ``S_y @ x @ S_x^T`` with one-hot shift matrices, exact (one non-zero term per
    output pixel) and differentiable in ``x``, its backward two more products (a gather's
    backward, a scatter-add, was four times slower on the CPU)."""
    n, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = (rand((n, 1, 1)) * (2 * sh + 1)).floor().long().to(x.device) - sh  # in [-sh, sh]
    dx = (rand((n, 1, 1)) * (2 * sw + 1)).floor().long().to(x.device) - sw
    rows, cols = torch.arange(h, device=x.device), torch.arange(w, device=x.device)
    shift_y = (rows.view(1, h, 1) + dy == rows.view(1, 1, h)).to(x.dtype)  # out row i reads row i + dy
    shift_x = (cols.view(1, 1, w) + dx == cols.view(1, w, 1)).to(x.dtype)  # out col k reads col k + dx
    return shift_y.unsqueeze(1) @ x @ shift_x.unsqueeze(1)


def cutout(x: torch.Tensor, rand: Draw, ratio: float = CUTOUT_RATIO) -> torch.Tensor:
    """Zero a square of ``ratio`` of the image's size centred at a random place (clipped at the
    borders), one per sample: a multiplication by a mask, differentiable in ``x``."""
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    oy = (rand((n, 1, 1)) * (h + (1 - ch % 2))).floor().long().to(x.device)
    ox = (rand((n, 1, 1)) * (w + (1 - cw % 2))).floor().long().to(x.device)
    rows = torch.arange(h, device=x.device).view(1, h, 1)
    cols = torch.arange(w, device=x.device).view(1, 1, w)
    inside_y = (rows >= oy - ch // 2) & (rows < oy - ch // 2 + ch)
    inside_x = (cols >= ox - cw // 2) & (cols < ox - cw // 2 + cw)
    mask = ~(inside_y & inside_x)
    return x * mask.unsqueeze(1).to(x.dtype)


def color(x: torch.Tensor, rand: Draw) -> torch.Tensor:
    """Brightness + U(-0.5, 0.5), then saturation x U(0, 2) around each pixel's channel mean,
    then contrast x U(0.5, 1.5) around the image's mean (DiffAugment's order and ranges)."""
    n = x.shape[0]
    x = x + (rand((n, 1, 1, 1)).to(x.device, x.dtype) - 0.5)
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (rand((n, 1, 1, 1)).to(x.device, x.dtype) * 2) + mean
    mean = x.mean(dim=[1, 2, 3], keepdim=True)
    return (x - mean) * (rand((n, 1, 1, 1)).to(x.device, x.dtype) + 0.5) + mean


OPERATIONS: dict[str, Callable[[torch.Tensor, Draw], torch.Tensor]] = {
    "translation": translation, "cutout": cutout, "color": color}
assert tuple(OPERATIONS) == AUGMENTATIONS  # the settings table names them without importing torch


def policy_names(names: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """``("translation,cutout", "color")`` -> the operations in DiffAugment's order (colour,
    translation, cutout), each once; an unknown name is a usage error naming the valid ones."""
    wanted = {part.strip() for name in names for part in name.split(",") if part.strip()}
    unknown = sorted(wanted - set(OPERATIONS))
    if unknown:
        raise UsageError(f"--augment: unknown augmentation {', '.join(unknown)}; use some of "
                         f"{', '.join(AUGMENTATIONS)} (e.g. --augment translation,cutout,color)")
    return tuple(name for name in ("color", "translation", "cutout") if name in wanted)


class DiffAugment:
    """The augmentation of D's inputs: call it on every batch D scores (``augment(x)``), and
    give it D's scores of the reals (:meth:`observe`) for ADA.

    ``processes`` and ``shard`` make each process draw the whole batch's parameters and keep its
    slice, so N processes augment as one process would; ``reduce`` averages ADA's count over them."""

    def __init__(self, names: tuple[str, ...] | list[str], seed: int, *, p: float | str = 1.0,
                 target: float = 0.6, ramp_images: int = 100_000, processes: int = 1,
                 shard: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 reduce: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        self.names = policy_names(names)
        self.adaptive = p == "ada"
        self.p = 0.0 if self.adaptive else float(p)
        self.target, self.ramp_images = float(target), int(ramp_images)
        self.processes, self.shard, self.reduce = processes, shard, reduce
        self.generator = torch.Generator().manual_seed(seed + SEED_OFFSET)
        self.r_t: float | None = None  # the last interval's overfitting measure (ADA)
        self._signs: torch.Tensor | None = None  # sum of sign(D(real)) and its count this interval
        self._steps = 0

    def _rand(self, local: int) -> Draw:
        """Uniform draws whose first axis is the batch: drawn for the global batch, sliced."""
        sliced = self.shard is not None and self.processes > 1

        def draw(shape: tuple[int, ...]) -> torch.Tensor:
            values = torch.rand((local * self.processes, *shape[1:]), generator=self.generator)
            return self.shard(values) if sliced and self.shard is not None else values

        return draw

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` with each operation applied to each sample with probability ``p``."""
        if self.p <= 0:
            return x
        rand = self._rand(x.shape[0])
        for name in self.names:
            changed = OPERATIONS[name](x, rand)
            if self.p < 1:
                chosen = (rand((x.shape[0],)) < self.p).to(x.device).view(-1, *([1] * (x.dim() - 1)))
                changed = torch.where(chosen, changed, x)
            x = changed
        return x

    def observe(self, real_logits: torch.Tensor) -> None:
        """ADA: count ``sign(D(real))`` and every ``ADA_INTERVAL`` steps move ``p`` toward the
        value at which ``r_t`` meets the target. The sum stays on the device between updates."""
        if not self.adaptive:
            return
        signs = torch.stack([real_logits.detach().float().sign().sum(),
                             torch.tensor(float(real_logits.numel()), device=real_logits.device)])
        self._signs = signs if self._signs is None else self._signs.to(signs.device) + signs
        self._steps += 1
        if self._steps % ADA_INTERVAL == 0:
            total = self._signs if self.reduce is None else self.reduce(self._signs)
            total_sum, count = (float(v) for v in total.cpu())
            self.adjust(total_sum / count, images=round(count) * self.processes)
            self._signs = None

    def adjust(self, r_t: float, images: int) -> None:
        """Move ``p`` by ``images / ramp_images`` up when ``r_t`` exceeds the target, else down."""
        self.r_t = r_t
        step = images / self.ramp_images
        self.p = min(1.0, max(0.0, self.p + (step if r_t > self.target else -step)))

    def logs(self) -> dict[str, float]:
        """What metrics.jsonl records: ``augment_p``, and ADA's last ``augment_rt``."""
        values = {"augment_p": self.p}
        if self.r_t is not None:
            values["augment_rt"] = self.r_t
        return values

    def state_dict(self) -> dict[str, Any]:
        signs = None if self._signs is None else self._signs.cpu()
        return {"p": self.p, "r_t": self.r_t, "rng": self.generator.get_state(), "signs": signs,
                "steps": self._steps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.p, self.r_t, self._steps = float(state["p"]), state["r_t"], int(state["steps"])
        self.generator.set_state(state["rng"])
        self._signs = None if state["signs"] is None else state["signs"]


def build_augment(names: tuple[str, ...], info: DataInfo, seed: int, *, p: float | str, target: float,
                  ramp_images: int, data_name: str, processes: int = 1,
                  shard: Callable[[torch.Tensor], torch.Tensor] | None = None,
                  reduce: Callable[[torch.Tensor], torch.Tensor] | None = None) -> DiffAugment | None:
    """The run's augmentation, or ``None`` without ``--augment`` (usage errors named here)."""
    if not names:
        if p == "ada":
            raise UsageError("--augment-p ada adapts the probability of an augmentation: add --augment "
                             "translation,cutout,color (or some of them)")
        return None
    if info.modality != "image" or len(info.sample_shape) != 3:
        raise UsageError(f"--augment transforms images, but --data {data_name} gives {info.modality} of shape "
                         f"{tuple(info.sample_shape)}: leave --augment out for this data set")
    return DiffAugment(names, seed, p=p, target=target, ramp_images=ramp_images, processes=processes,
                       shard=shard, reduce=reduce)
