"""The default plugin: registers every built-in component through the public hooks.

Third-party plugins look exactly like this module (see ``plugins/`` for installable examples).
"""

from __future__ import annotations

from ganforge.data.digits import Digits
from ganforge.data.folder import ImageFolder
from ganforge.data.mixtures import MIXTURE_DEFAULTS, grid25, ring8
from ganforge.data.mnist import MNIST
from ganforge.data.stacked_mnist import StackedMNIST
from ganforge.hookspecs import Register, hookimpl
from ganforge.losses import (
    MinimaxLoss,
    NonSaturatingLoss,
    WassersteinGPLoss,
    WassersteinLoss,
)
from ganforge.metrics.builtin_metrics import FID, KID, PRDC, InceptionScore, Legible, Modes
from ganforge.metrics.stacked_modes import StackedModes
from ganforge.metrics.swd import SlicedWasserstein
from ganforge.models import (
    DCGANDiscriminator,
    DCGANGenerator,
    MLPDiscriminator,
    MLPGenerator,
    ResidualDiscriminator,
    ResidualGenerator,
)


@hookimpl
def ganforge_register_generators(register: Register) -> None:
    register("mlp", MLPGenerator, "MLP generator z-256-512-1024-data, ReLU, fused dense+act")
    register("dcgan", DCGANGenerator, "DCGAN generator (Radford 2016): transposed convolutions, BatchNorm, ReLU, "
             "tanh; 28/32/64 px, 1 or 3 channels; options width (64), classes")
    register("resnet", ResidualGenerator, "Residual generator as in R3GAN's StackedMNIST ablation: no "
             "normalisation, fix-up init, bilinear upsampling; 28/32/64 px; options width (32), classes")


@hookimpl
def ganforge_register_discriminators(register: Register) -> None:
    register("mlp", MLPDiscriminator, "MLP discriminator data-512-256-1, LeakyReLU 0.2, logits; "
             "options spectral_norm, pack (PacGAN), maxout, classes (projection, class-conditional)")
    register("dcgan", DCGANDiscriminator, "DCGAN discriminator, strided convolutions, LeakyReLU 0.2, no BatchNorm; "
             "options width (64), spectral_norm, mbstd (group), classes (projection), pack (PacGAN)")
    register("resnet", ResidualDiscriminator, "Residual discriminator as in R3GAN's StackedMNIST ablation: no "
             "normalisation, fix-up init, average-pool downsampling; options width (32), spectral_norm, mbstd, "
             "classes, pack")


@hookimpl
def ganforge_register_losses(register: Register) -> None:
    from ganforge.losses import RelativisticPairingLoss

    register("minimax", MinimaxLoss, "Saturating minimax GAN (Goodfellow 2014): G min log(1-D(G(z))); "
             "optional R1/R2: loss.r1, loss.r2")
    register("nonsat", NonSaturatingLoss, "Non-saturating GAN: G max log D(G(z)); optional R1/R2: loss.r1, loss.r2")
    register("wasserstein", WassersteinLoss, "WGAN, weight clipping 0.01, n_critic 5, RMSprop 5e-5")
    register("wgan-gp", WassersteinGPLoss, "WGAN-GP, penalty 10, n_critic 5, Adam 1e-4 (0, 0.9)")
    register("rpgan", RelativisticPairingLoss, "R3GAN's relativistic pairing loss + R1 + R2 (gamma 0.01), "
             "Adam 2e-4 (0, 0.99)")


@hookimpl
def ganforge_register_datasets(register: Register) -> None:
    register("mnist", MNIST, "MNIST digits: 5,000 bundled; data.digits=70000 all of MNIST (shipped); "
             "data.root / $GANFORGE_DATA your IDX files")
    register("ring8", ring8, "8 Gaussians on the unit circle, std 0.01 (PacGAN)", defaults=MIXTURE_DEFAULTS)
    register("grid25", grid25, "25 Gaussians on {-4,-2,0,2,4}^2, std 0.05 (PacGAN)", defaults=MIXTURE_DEFAULTS)
    register("folder", ImageFolder, "your images: PNG/JPEG under data.root, resized and cropped to data.size, "
             "data.channels 1 or 3; subfolders are classes")
    register("digits", Digits, "scikit-learn's 8x8 digits (1,797 images), for fast tests")
    register("stacked-mnist", StackedMNIST, "3 MNIST digits as R,G,B (1,000 modes), drawn fresh per batch; "
             "data.size=28|32, data.digits=5000|70000, data.pool=train|all, data.root for IDX files (PacGAN, R3GAN)")


@hookimpl
def ganforge_register_metrics(register: Register) -> None:
    register("fid", FID, "Frechet distance of extractor features (Heusel 2017); lower is better")
    register("kid", KID, "Kernel distance, unbiased MMD^2, cubic kernel (Binkowski 2018)")
    register("prdc", PRDC, "Precision/recall (k=3) and density/coverage (k=5)")
    register("is", InceptionScore, "Inception-style score from the MNIST classifier, 10 splits")
    register("legible", Legible, "Share of samples the MNIST classifier reads with p >= 0.9; their digit classes")
    register("modes", Modes, "PacGAN mode coverage: modes, % high quality, reverse KL")
    register("swd", SlicedWasserstein, "Sliced Wasserstein distance of Laplacian-pyramid 7x7 patches "
             "(Karras 2018), x1e3; any image, no extractor")
    register("stacked-modes", StackedModes, "Stacked-MNIST modes covered (of 1,000) and KL(modes || uniform), "
             "PacGAN's protocol; real-stack floor with classifier accuracy")


@hookimpl
def ganforge_register_extractors(register: Register) -> None:
    from ganforge.metrics.lenet import LeNetExtractor
    from ganforge.metrics.random_features import RandomConvExtractor

    register("lenet-mnist", LeNetExtractor, "LeNet trained on the bundled MNIST digits (98.2% held out)")
    register("random-conv", RandomConvExtractor, "Untrained conv net, fixed-seed weights, 512-d (Naeem 2020); "
             "any image >= 8x8 px; its numbers compare only across ganforge runs")
