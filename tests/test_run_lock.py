"""One writer per run folder."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ganforge import RunConfig, Trainer
from ganforge.errors import ConfigError


def _trainer(tmp_path, registry, plugin_manager, **kw):
    config = RunConfig(data="ring8", steps=4, batch_size=16, out=str(tmp_path / "r"), sample_every=0, ckpt_every=0,
                       options={"gen": {"hidden": (8,)}, "disc": {"hidden": (8,)}}, **kw)
    return Trainer(config, registry=registry, plugin_manager=plugin_manager)


def test_a_second_writer_is_refused_while_the_first_runs(tmp_path, registry, plugin_manager):
    first = _trainer(tmp_path, registry, plugin_manager)
    first.start()
    second = _trainer(tmp_path, registry, plugin_manager, resume=True)
    with pytest.raises(ConfigError, match="in use by a running ganforge process"):
        second.start()
    first.train(2)
    first.stop()
    second.start()  # free again once the first stopped
    second.stop()


def test_a_killed_holder_leaves_no_stale_lock(tmp_path, registry, plugin_manager):
    code = ("import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT); "
            "fcntl.flock(fd, fcntl.LOCK_EX); os.kill(os.getpid(), 9)")
    (tmp_path / "r").mkdir()
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "r" / ".lock")])
    trainer = _trainer(tmp_path, registry, plugin_manager)
    trainer.fit()
    assert trainer.step == 4
