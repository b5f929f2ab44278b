"""Example third-party ganforge plugin: three more adversarial losses.

Install with ``pip install ./plugins/ganforge-losses``; then ``ganforge list`` shows ``hinge``,
``lsgan`` and ``ragan`` and ``ganforge run --loss hinge`` uses them. This file is the whole plugin.

Each loss declares the optimiser settings of the paper that introduced or popularised it as its
``defaults``; ``--lr-g``, ``--betas`` and the other flags still override them.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from ganforge import hookimpl
from ganforge.losses import GanLoss


class HingeLoss(GanLoss):
    """Hinge loss (Lim & Ye 2017; used by SAGAN and BigGAN).

    Defaults are SAGAN's (Zhang et al. 2019, "Self-Attention Generative Adversarial Networks",
    Sec. 5): Adam with beta1 = 0, beta2 = 0.9 and the two-time-scale learning rates of Heusel et
    al. (2017), 4e-4 for D and 1e-4 for G, one D step per G step.
    """

    defaults: ClassVar[dict[str, Any]] = {
        "n_critic": 1, "optimizer": "adam", "lr_g": 1e-4, "lr_d": 4e-4, "betas": (0.0, 0.9),
    }

    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()

    def g_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:
        return -fake_logits.mean()


class LeastSquaresLoss(GanLoss):
    """Least-squares GAN (Mao et al. 2017) with targets a=0 (fake), b=1 (real), c=1.

    Mao et al. build on DCGAN's implementation and keep its Adam with beta1 = 0.5; 2e-4 is the
    learning rate of their handwritten-Chinese-character runs (their LSUN scene runs used 1e-3).
    These equal ganforge's own DCGAN defaults; they are declared so the choice is explicit.
    """

    defaults: ClassVar[dict[str, Any]] = {
        "n_critic": 1, "optimizer": "adam", "lr_g": 2e-4, "lr_d": 2e-4, "betas": (0.5, 0.999),
    }

    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        return 0.5 * ((real_logits - 1) ** 2).mean() + 0.5 * (fake_logits**2).mean()

    def g_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:
        return 0.5 * ((fake_logits - 1) ** 2).mean()


class RelativisticAverageLoss(GanLoss):
    """Relativistic average standard GAN, RaSGAN (Jolicoeur-Martineau 2018, arXiv:1807.00734).

    D judges whether a real sample is more realistic than the *average* fake and vice versa:
    with C the critic's logits, D~(x_r) = sigmoid(C(x_r) - E C(x_f)) and
    D~(x_f) = sigmoid(C(x_f) - E C(x_r)),

        L_D = -E log D~(x_r) - E log(1 - D~(x_f))
        L_G = -E log D~(x_f) - E log(1 - D~(x_r))

    written with softplus for stability. Unlike the standard GAN, G's loss also depends on the real
    logits (``g_needs_real``): G gains by lowering how real the real data looks relative to fakes.

    Defaults are the paper's standard, DCGAN-style setup for its CIFAR-10 experiments: Adam,
    lr 2e-4 for both networks, betas (0.5, 0.999), one D step per G step (its "stable" runs; the
    exact flags are in the "DCGAN setup" block of the author's ``code/stable.sh``,
    github.com/AlexiaJM/RelativisticGAN).
    """

    defaults: ClassVar[dict[str, Any]] = {
        "n_critic": 1, "optimizer": "adam", "lr_g": 2e-4, "lr_d": 2e-4, "betas": (0.5, 0.999),
    }
    g_needs_real: ClassVar[bool] = True

    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        return (F.softplus(-(real_logits - fake_logits.mean())).mean()
                + F.softplus(fake_logits - real_logits.mean()).mean())

    def g_loss(self, fake_logits: torch.Tensor, real_logits: torch.Tensor | None = None) -> torch.Tensor:
        if real_logits is None:
            raise ValueError("ragan's g_loss needs real_logits (the loss sets g_needs_real = True)")
        return (F.softplus(-(fake_logits - real_logits.mean())).mean()
                + F.softplus(real_logits - fake_logits.mean()).mean())


@hookimpl
def ganforge_register_losses(register) -> None:  # type: ignore[no-untyped-def]
    register("hinge", HingeLoss)
    register("lsgan", LeastSquaresLoss)
    register("ragan", RelativisticAverageLoss)
