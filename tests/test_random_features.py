"""The random-conv feature space: the same weights everywhere, any image shape, and PRDC that sees
missing modes and noise (Naeem et al. 2020's claim for untrained embeddings, checked on digits)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ganforge.errors import ConfigError
from ganforge.metrics.prdc import prdc
from ganforge.metrics.random_features import FEATURE_DIM, RandomConvExtractor, RandomConvNet, fingerprint

# The weights' SHA-256 (shapes, then little-endian float32 bytes). A change here changes every
# number computed in this space: give the new space a new extractor name instead.
FINGERPRINT_RGB = "be52c839c75bd7ff617cce0980c491d83f9486c7fd766c56bf6e83e826c800b9"
FINGERPRINT_GREY = "cf34894ded0931ecde6774dfcd3e7597688a60ee7464975c85bb0e70ab7afdca"


def test_the_weights_are_a_fixed_constant_drawn_without_the_global_rng():
    before = torch.random.get_rng_state()
    torch.manual_seed(12345)  # the global RNG's state must not matter ...
    assert fingerprint(3) == FINGERPRINT_RGB and fingerprint(1) == FINGERPRINT_GREY
    torch.manual_seed(0)
    assert fingerprint(3) == FINGERPRINT_RGB
    state = torch.random.get_rng_state()
    RandomConvNet(3)
    assert torch.equal(torch.random.get_rng_state(), state)  # ... nor be moved by drawing the weights
    torch.random.set_rng_state(before)


def test_the_weights_are_he_uniform_and_layers_after_the_first_do_not_depend_on_the_channels():
    rgb, grey = RandomConvNet(3).weights(), RandomConvNet(1).weights()
    for a, b in zip(rgb[1:], grey[1:], strict=True):
        assert torch.equal(a, b)
    first = rgb[0]
    assert first.dtype == torch.float32 and first.abs().max() < (2 / 1.04 * 3 / 27) ** 0.5
    assert first.std().item() == pytest.approx((2 / 1.04 / 27) ** 0.5, rel=0.1)


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("size", [16, 28, 32, 64])
def test_features_of_any_channel_count_and_size(channels, size):
    x = torch.rand(5, channels, size, size, generator=torch.Generator().manual_seed(size)) * 2 - 1
    extractor = RandomConvExtractor(batch_size=2)
    features = extractor.features(x)
    assert features.shape == (5, FEATURE_DIM) and features.dtype == torch.float32
    assert torch.isfinite(features).all() and features.std(0).gt(0).any()
    batched = RandomConvExtractor().features(x)  # batching changes them by round-off only
    assert torch.allclose(features, batched, rtol=1e-5, atol=1e-6)
    assert not features[0].equal(features[1])


def test_odd_shapes_and_channel_counts_are_read_and_tiny_images_refused():
    extractor = RandomConvExtractor()
    assert extractor.features(torch.zeros(2, 4, 8, 13)).shape == (2, FEATURE_DIM)
    assert extractor.features(torch.zeros(0, 3, 32, 32)).shape == (0, FEATURE_DIM)
    assert extractor.reads((3, 8, 8)) and not extractor.reads((3, 7, 32)) and not extractor.reads((2,))
    with pytest.raises(ConfigError, match="at least 8 pixels"):
        extractor.features(torch.zeros(2, 3, 4, 4))


def test_it_gives_no_class_probabilities_and_metrics_that_need_them_say_so():
    from ganforge.data import DataInfo
    from ganforge.metrics.base import EvalData
    from ganforge.metrics.builtin_metrics import InceptionScore

    assert not hasattr(RandomConvExtractor(), "probabilities")
    x = torch.zeros(20, 3, 16, 16)
    data = EvalData(x, x, DataInfo(sample_shape=(3, 16, 16), value_range=(-1.0, 1.0), modality="image"),
                    extractor=RandomConvExtractor())
    with pytest.raises(ConfigError, match="class probabilities"):
        InceptionScore().compute(data)


# -- what the features see ---------------------------------------------------------------------

def tinted_digits(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """4,000 of the bundled MNIST digits on a ``size`` canvas, each in a colour of its own, in
    [-1, 1]; and their labels."""
    from ganforge.data.mnist import load_bundled

    images, labels = load_bundled()
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))[:4000]
    x = torch.from_numpy(images).float().div(255).unsqueeze(1)[order]
    inner, border = size - size // 8, size // 16
    x = F.interpolate(x, size=(inner, inner), mode="bilinear", align_corners=False)
    x = F.pad(x, (border, size - inner - border, border, size - inner - border))
    tint = 0.4 + 0.6 * torch.rand(len(x), 3, 1, 1, generator=torch.Generator().manual_seed(1))
    return x * tint * 2 - 1, torch.from_numpy(labels)[order]


@pytest.mark.parametrize("size", [32, 64])
def test_prdc_in_random_features_sees_missing_modes_and_noise(size):
    images, labels = tinted_digits(size)
    features = RandomConvExtractor().features(images)
    real, other = features[:2000], features[2000:]
    floor = prdc(real, other)  # two halves of the same distribution
    assert floor["precision"] > 0.7 and floor["recall"] > 0.7
    assert 0.85 < floor["density"] < 1.15 and floor["coverage"] > 0.9

    one = prdc(real, other[:1].repeat(2000, 1))  # total collapse: one image repeated
    assert one["recall"] < 0.05 and one["coverage"] < 0.05

    half = prdc(real, other[labels[2000:] < 5])  # digits 0-4 only: half the modes missing
    assert half["coverage"] < floor["coverage"] - 0.2 and half["recall"] < floor["recall"] - 0.08
    assert half["precision"] > floor["precision"] - 0.05  # what is there is still real-looking

    noise = 0.3 * torch.randn(images[2000:].shape, generator=torch.Generator().manual_seed(2))
    noisy = prdc(real, RandomConvExtractor().features((images[2000:] + noise).clamp(-1, 1)))
    assert noisy["precision"] < floor["precision"] / 2 and noisy["density"] < floor["density"] / 2
