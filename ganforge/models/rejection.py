"""Discriminator rejection sampling (Azadi et al. 2019): keep a generator's samples in proportion to
how much more often the data has them than the generator does.

A critic trained to tell real samples from the generator's (logistic loss, the generator frozen)
estimates ``log p_data(x) / p_g(x)`` by its logit. Accepting each generated sample with probability
``min(1, exp(logit - cap))`` draws from ``p_g * ratio``, which is ``p_data`` wherever the ratio is
below ``exp(cap)``: modes the generator under-draws are kept more often, over-drawn ones less. The
cap is a quantile of the logits (the paper's maximum accepts almost nothing once a few samples are
far more real than the rest); samples above it are all kept, so the correction is partial there.

The run's own discriminator is no such critic: it was trained against a moving generator, often on
packs of samples and with augmentation, and ends near chance. So the critic is fitted afresh, as
the paper does, from the run's discriminator architecture with one sample per logit.
:class:`RejectionSampled` wraps the generator, so everything that draws from a generator (``ganforge
eval``, ``ganforge sample``) draws the accepted samples without knowing.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ganforge.data import GanDataset
from ganforge.models.sampling import draw

CAP_SAMPLES = 10_000
"""Generated samples whose logits set the cap (its quantile)."""
MAX_DRAWS = 100
"""Rounds of candidates before giving up: an acceptance rate below 1 % means a critic that tells
every fake from the data, whose ratios say nothing about modes."""


def fit_critic(critic: nn.Module, generator: nn.Module, z_dim: int, dataset: GanDataset,
               steps: int, batch_size: int = 64, lr: float = 2e-4, seed: int = 0, bf16: bool = False) -> nn.Module:
    """Train ``critic`` (one logit per sample) to tell ``dataset``'s samples (label 1) from the
    frozen ``generator``'s (label 0) with the logistic loss; returns it in eval mode. ``bf16``:
    its forward passes under bf16 autocast (weights and Adam stay float32), as a bf16 run trains."""
    rng = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(critic.parameters(), lr=lr, betas=(0.5, 0.999))
    target = torch.cat([torch.ones(batch_size), torch.zeros(batch_size)])
    batches = iter(dataset.batches(batch_size, rng))
    device = next(critic.parameters()).device
    critic.train()
    for _ in range(steps):
        real = next(batches)
        fake = draw(generator, torch.randn(batch_size, z_dim, generator=rng))
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = critic(torch.cat([real, fake])).float().view(-1)
        loss = F.binary_cross_entropy_with_logits(logits, target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return critic.eval()


def fingerprint(generator: nn.Module, recipe: dict[str, Any]) -> str:
    """A hex digest of the generator's weights and of ``recipe`` (how a critic is fitted: its
    architecture, data, steps, seed, precision): two critics with one fingerprint come out the same,
    so a saved one can stand in for a refit. The weights, not a checkpoint's name, are hashed: a
    rewound and retrained run reuses step numbers."""
    digest = hashlib.sha256(json.dumps(recipe, sort_keys=True, default=str).encode())
    for name, tensor in sorted(generator.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


@torch.no_grad()
def logits_of(critic: nn.Module, samples: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    return torch.cat([critic(chunk).float().view(-1) for chunk in samples.split(batch_size)])


class RejectionSampled(nn.Module):
    """``generator`` whose samples pass a rejection step: ``forward(z)`` returns ``len(z)`` accepted
    samples, the first candidates made from ``z``, the rest from noise of its own seeded RNG (the
    same ``z`` and seed give the same samples)."""

    def __init__(self, generator: nn.Module, critic: nn.Module, z_dim: int, quantile: float,
                 seed: int = 0) -> None:
        super().__init__()
        if not 0.0 < quantile <= 1.0:
            raise ValueError(f"the cap's quantile must be in (0, 1], got {quantile}")
        self.generator, self.critic, self.z_dim = generator, critic, z_dim
        self.rng = torch.Generator().manual_seed(seed)
        device = next(generator.parameters()).device
        probe = draw(generator, torch.randn(CAP_SAMPLES, z_dim, generator=self.rng).to(device), 1000)
        self.cap = float(torch.quantile(logits_of(critic, probe), quantile))
        self.accepted = 0
        self.drawn = 0

    @property
    def acceptance(self) -> float:
        """The share of candidates kept so far."""
        return self.accepted / self.drawn if self.drawn else float("nan")

    @torch.no_grad()
    def forward(self, z: torch.Tensor) -> torch.Tensor:
        kept: list[torch.Tensor] = []
        count, candidates = 0, z
        for _ in range(MAX_DRAWS):
            samples = self.generator(candidates).float()
            logit = self.critic(samples).float().view(-1)
            chance = torch.exp((logit - self.cap).clamp(max=0.0)).cpu()  # the RNG lives on the CPU
            keep = torch.rand(len(samples), generator=self.rng) < chance
            kept.append(samples[keep.to(samples.device)])
            self.drawn += len(samples)
            self.accepted += len(kept[-1])
            count += len(kept[-1])
            if count >= len(z):
                return torch.cat(kept)[: len(z)]
            candidates = torch.randn(len(z), self.z_dim, generator=self.rng).to(z.device)
        raise RuntimeError(f"rejection sampling kept {count} of {self.drawn} candidates: the critic tells "
                           f"nearly every generated sample from the data; lower the cap's quantile")
