"""``--precision bf16``: autocast around the forward passes (the fused op falls back to its
reference, whose linear runs in bf16); weights, gradients and optimiser state stay float32."""

from __future__ import annotations

import pytest
import torch

from ganforge import RunConfig, Trainer
from ganforge.errors import ConfigError
from ganforge.nn import FusedDense


def config(tmp_path, **kw) -> RunConfig:
    base = dict(data="digits", steps=6, batch_size=16, out=str(tmp_path / "r"), threads=1, sample_every=0,
                precision="bf16", options={"gen": {"hidden": (32, 32), "norm": "batch"}, "disc": {"hidden": (32,)}})
    return RunConfig(**{**base, **kw})


@pytest.mark.parametrize("loss_options", [{}, {"r1": 1.0}])
def test_bf16_trains_with_float32_weights_and_bf16_layers(loss_options, tmp_path, registry, plugin_manager):
    cfg = config(tmp_path, options={**config(tmp_path).options, "loss": loss_options})
    trainer = Trainer(cfg, registry=registry, plugin_manager=plugin_manager)
    dtypes = set()
    for module in trainer.discriminator.modules():
        if isinstance(module, FusedDense):
            module.register_forward_hook(lambda m, i, out: dtypes.add(out.dtype))
    trainer.fit()
    assert torch.bfloat16 in dtypes  # the dense layers ran in bf16
    for p in [*trainer.generator.parameters(), *trainer.discriminator.parameters()]:
        assert p.dtype == torch.float32 and torch.isfinite(p).all()
    state = trainer.opt_g.state_dict()["state"]
    assert all(v.dtype == torch.float32 for s in state.values() for k, v in s.items() if k != "step")


def test_fp16_is_refused_with_a_reason(tmp_path, registry, plugin_manager):
    with pytest.raises(ConfigError, match="fp16"):
        Trainer(config(tmp_path, precision="fp16"), registry=registry, plugin_manager=plugin_manager)


def test_precision_must_be_known(tmp_path):
    with pytest.raises(ConfigError, match="--precision"):
        config(tmp_path, precision="fp8").validate()
