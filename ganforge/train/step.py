"""One GAN training step: ``n_critic`` discriminator updates, then one generator update.

Three choices make it faster than the loop a user writes by hand, each measured
(docs/performance.md):

- The generator runs forward once per step. The last critic update scores ``fake.detach()``; the
  generator update then reuses ``fake`` and its graph (as PyTorch's DCGAN example does) instead of
  drawing and generating a second batch.
- The discriminator scores real and fake samples in one pass when it offers ``forward_pair``
  (one GEMM of 2B rows is cheaper than two of B rows); any other discriminator is called twice.
- During the generator update, D's parameters do not require gradients: the backward pass then
  skips D's weight-gradient GEMMs, which would be wasted work.

With ``--precision fp16`` each backward runs on a scaled loss and each optimiser steps through
its gradient scaler (:meth:`Seam.grad_scaler`); a step the scaler skipped for overflowing
gradients is counted in the :class:`StepResult`.

R1 and R2 are applied here, for every loss, built-in or plugin, with the weights in
``loss.penalties`` (the loss's declared defaults under ``--set loss.r1`` / ``loss.r2``;
:mod:`ganforge.losses.penalties`), added to D's loss with the loss's own term (WGAN-GP's).

With a class-conditional pair (``classes``; :mod:`ganforge.train.conditioning`) the stream gives
labelled batches, the fake batch is drawn with the real batch's classes, and the loss sees D
through :class:`WithLabels`.

With ``augment`` (``--augment``; :mod:`ganforge.train.augment`) every batch D scores, real and
fake, in the D step and the G step, goes through it first (R1/R2 see the augmented reals, as in
ADA), and D's scores of the reals feed ADA's adaptive probability.

With ``skip_nonfinite`` (``--on-nan skip``) each update first checks its loss and gradients and
is skipped when any is NaN or infinite, so one bad batch cannot poison the weights. The check
reads every gradient once, so it is off by default (the trainer's guard then stops the run).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import cast

import torch
from torch import nn

from ganforge.data.base import Batch
from ganforge.losses import GanLoss, discriminator_penalty
from ganforge.losses.regularizers import Scorer
from ganforge.runtime.seam import Seam, no_scaling
from ganforge.train.augment import DiffAugment
from ganforge.train.conditioning import WithLabels


@dataclass(frozen=True)
class StepResult:
    """What one step did. The losses stay on the device: reading them would synchronise with the
    device every step."""

    d_loss: torch.Tensor
    g_loss: torch.Tensor
    skipped: bool = False
    """Whether an update was skipped for a non-finite loss or gradient (``--on-nan skip``)."""
    scaler_skips: int = 0
    """Updates the fp16 gradient scalers skipped for overflow."""


def score_pair(disc: Scorer, real: torch.Tensor, fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(D(real), D(fake))``, in one pass when the discriminator defines ``forward_pair``."""
    pair = getattr(disc, "forward_pair", None)
    if pair is not None:
        return pair(real, fake)
    return disc(real), disc(fake)


class GanStep:
    """Callable that runs one training step and returns its :class:`StepResult`.

    ``seam`` (device, precision, processes) defaults to one process on ``device``."""

    def __init__(self, generator: nn.Module, discriminator: nn.Module, loss: GanLoss,
                 opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer, batches: Iterator[Batch],
                 *, batch_size: int, z_dim: int, n_critic: int, device: torch.device,
                 skip_nonfinite: bool = False, seam: Seam | None = None,
                 scalers: Mapping[str, torch.amp.GradScaler] | None = None, classes: int = 0,
                 augment: DiffAugment | None = None) -> None:
        self.G, self.D, self.loss = generator, discriminator, loss
        self.classes = classes
        self.augment = augment
        self.opt_g, self.opt_d = opt_g, opt_d
        self.batches = batches
        self.batch_size, self.z_dim, self.n_critic, self.device = batch_size, z_dim, n_critic, device
        self.skip_nonfinite = skip_nonfinite
        self.seam = seam if seam is not None else Seam.single_process(device)
        disabled = no_scaling(device)
        self.scaler_d = (scalers or {}).get("d", disabled)
        self.scaler_g = (scalers or {}).get("g", disabled)
        self.skipped = False  # this call's counts, returned in its StepResult
        self.scaler_skips = 0

    def _apply(self, optimizer: torch.optim.Optimizer, loss: torch.Tensor, scaler: torch.amp.GradScaler) -> None:
        """``optimizer.step()`` on the gradients averaged over the processes (under torchrun),
        unless ``skip_nonfinite`` and the loss or a gradient is not finite. Averaging the still
        scaled gradients first means an overflow in any process reaches all of them, so every
        process's scaler skips the same steps."""
        if self.seam.distributed:
            self.seam.average_gradients(p for group in optimizer.param_groups for p in group["params"])
            if self.skip_nonfinite:
                loss = self.seam.all_reduce_mean(loss.detach())  # every process must skip alike
        if self.skip_nonfinite:
            # Under fp16 an overflowing gradient is the scaler's to handle (it lowers its factor);
            # only a non-finite loss is a bad batch then.
            grads = [] if scaler.is_enabled() else [
                p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
            norm = torch.nn.utils.get_total_norm(grads) if grads else loss.new_zeros(())
            if not bool(torch.isfinite(loss) & torch.isfinite(norm)):
                self.skipped = True
                optimizer.zero_grad(set_to_none=True)
                return
        if not scaler.is_enabled():
            optimizer.step()
            return
        before = scaler.get_scale()
        scaler.step(optimizer)
        scaler.update()
        if scaler.get_scale() < before:  # the scaler found inf/NaN gradients and skipped the step
            self.scaler_skips += 1

    def noise(self, labels: torch.Tensor | None = None) -> torch.Tensor:
        """This process's slice of the global batch's noise (all of it in one process): every
        process draws the same global noise, so N processes see what one process would. With
        ``labels`` (conditional training), noise that draws those classes."""
        z = torch.randn(self.batch_size, self.z_dim, device=self.device)
        if labels is None:
            return self._shard(z)
        uniform = self._shard(torch.rand(self.batch_size, device=self.device))
        # the conditional protocol's method (ganforge.train.conditioning), unknown to nn.Module
        noise_of_class = cast(Callable[..., torch.Tensor], self.G.noise_of_class)
        return noise_of_class(self._shard(z), labels, uniform)

    def _shard(self, batch: torch.Tensor) -> torch.Tensor:
        return self.seam.shard(batch)

    def real_batch(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """This process's slice of the next real batch, and its labels (conditional training)."""
        batch = next(self.batches)
        if self.classes:  # a conditional run's stream is labelled
            x, labels = cast(tuple[torch.Tensor, torch.Tensor], batch)
        else:
            x, labels = cast(torch.Tensor, batch), None
        x = self._shard(x).to(self.device, non_blocking=True)
        return x, None if labels is None else self._shard(labels).to(self.device, non_blocking=True)

    def augmented(self, x: torch.Tensor) -> torch.Tensor:
        """What D sees of a batch: ``x`` through ``--augment`` (differentiably), or ``x``."""
        return x if self.augment is None else self.augment(x)

    def scorer(self, labels: torch.Tensor | None) -> nn.Module | WithLabels:
        """D as the loss calls it: itself, or for conditional training D with the batch's labels."""
        return self.D if labels is None else WithLabels(self.D, labels)

    def __call__(self) -> StepResult:
        G, loss = self.G, self.loss
        self.skipped = False
        self.scaler_skips = 0
        fake = d_loss = None
        for i in range(self.n_critic):
            real, labels = self.real_batch()
            real = self.augmented(real)  # every input of D, real and fake, in both steps (DiffAugment)
            D = self.scorer(labels)
            with self.seam.autocast():
                if i == self.n_critic - 1:
                    fake = G(self.noise(labels))  # its graph is kept for the generator update below
                    fake_d = fake.detach()
                else:
                    with torch.no_grad():
                        fake_d = G(self.noise(labels))
                fake_d = self.augmented(fake_d)
                real_logits, fake_logits = score_pair(D, real, fake_d)
                d_loss = loss.d_loss(real_logits.float(), fake_logits.float())  # losses in float32
                penalty = discriminator_penalty(loss, D, real, fake_d)  # its own term, R1, R2
                if penalty is not None:
                    d_loss = d_loss + penalty.float()
            self.opt_d.zero_grad(set_to_none=True)
            self.scaler_d.scale(d_loss).backward()
            self._apply(self.opt_d, d_loss, self.scaler_d)
            loss.after_d_step(self.D)
            if self.augment is not None:
                self.augment.observe(real_logits)  # ADA's overfitting measure
        assert fake is not None and d_loss is not None  # n_critic >= 1: the loop ran

        self.D.requires_grad_(False)
        try:
            with self.seam.autocast():
                if getattr(loss, "g_needs_real", False):  # relativistic losses compare with D(real)
                    with torch.no_grad():
                        real_logits = D(real).float()
                    g_loss = loss.g_loss(D(self.augmented(fake)).float(), real_logits)
                else:
                    g_loss = loss.g_loss(D(self.augmented(fake)).float())
            self.opt_g.zero_grad(set_to_none=True)
            self.scaler_g.scale(g_loss).backward()
            self._apply(self.opt_g, g_loss, self.scaler_g)
        finally:
            self.D.requires_grad_(True)
        return StepResult(d_loss.detach(), g_loss.detach(), self.skipped, self.scaler_skips)
