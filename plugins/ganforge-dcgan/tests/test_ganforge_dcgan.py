"""The plugin's own tests: ganforge's conformance checks for every supported shape, and a short
training run through ganforge's Trainer on the bundled MNIST digits."""

from __future__ import annotations

import ganforge_dcgan
import pytest
import torch

from ganforge import RunConfig, Trainer
from ganforge.errors import ConfigError
from ganforge.plugins import build_registry, get_plugin_manager
from ganforge.testing import check_discriminator, check_generator

SHAPES = [(1, 28, 28), (3, 28, 28), (1, 32, 32), (3, 32, 32), (3, 64, 64)]


@pytest.mark.parametrize("shape", SHAPES)
def test_generator_conforms(shape):
    check_generator(ganforge_dcgan.DCGANGenerator, sample_shape=shape, width=8)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("spectral_norm", [False, True])
def test_discriminator_conforms(shape, spectral_norm):
    check_discriminator(ganforge_dcgan.DCGANDiscriminator, sample_shape=shape, width=8, spectral_norm=spectral_norm)


def test_layers_follow_the_paper():
    g = ganforge_dcgan.DCGANGenerator(z_dim=100, sample_shape=(3, 64, 64))
    convs = [m for m in g.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    assert [(c.in_channels, c.out_channels, c.stride[0]) for c in convs] == \
        [(512, 256, 2), (256, 128, 2), (128, 64, 2), (64, 3, 2)]
    d = ganforge_dcgan.DCGANDiscriminator(sample_shape=(3, 64, 64))
    convs = [m for m in d.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [(3, 64), (64, 128), (128, 256), (256, 512)]
    assert not isinstance(d.net[1], torch.nn.BatchNorm2d)  # none at the input layer


@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 30, 30), (2, 32, 32), (3, 32, 16)])
def test_unsupported_shapes_say_what_to_do(shape):
    with pytest.raises(ConfigError, match="data.size"):
        ganforge_dcgan.DCGANGenerator(z_dim=4, sample_shape=shape)


def test_trains_on_bundled_mnist_through_the_registry(tmp_path):
    pm = get_plugin_manager(entry_points=False, extra=[ganforge_dcgan])
    registry = build_registry(pm)
    config = RunConfig(gen="dcgan-bn", data="mnist", steps=3, batch_size=16, out=str(tmp_path / "run"), threads=1,
                       sample_every=0, options={"gen": {"width": 8}, "disc": {"width": 8}})
    trainer = Trainer(config, registry=registry, plugin_manager=pm)
    assert trainer.config.disc == "dcgan-bn"
    trainer.fit()
    assert (tmp_path / "run" / "samples" / "step_0000003.png").exists()
