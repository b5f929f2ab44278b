"""One writer per run folder."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ganforge.errors import ConfigError

RUN = dict(steps=4, batch_size=16, z_dim=2, log_every=100, sample_every=0, ckpt_every=0, hidden=(8,))


def test_a_second_writer_is_refused_while_the_first_runs(small_config, make_trainer):
    first = make_trainer(small_config(**RUN))
    first.start()
    second = make_trainer(small_config(**RUN, resume=True))
    with pytest.raises(ConfigError, match="in use by a running ganforge process"):
        second.start()
    first.train(2)
    first.stop()
    second.start()  # free again once the first stopped
    second.stop()


def test_a_killed_holder_leaves_no_stale_lock(tmp_path, small_config, make_trainer):
    code = ("import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT); "
            "fcntl.flock(fd, fcntl.LOCK_EX); os.kill(os.getpid(), 9)")
    (tmp_path / "run").mkdir()
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "run" / ".lock")])
    trainer = make_trainer(small_config(**RUN))
    trainer.fit()
    assert trainer.step == 4
