"""The thread count: measured choice, re-measurement when the machine gets busy, a fixed override,
and results that do not depend on it."""

from __future__ import annotations

import pytest
import torch

from ganforge import RunConfig
from ganforge.errors import ConfigError
from ganforge.runtime import threads as threads_module
from ganforge.runtime.threads import ThreadTuner, candidate_counts, gemm_reproducibility, parse_threads


class FakeClock:
    """A clock whose step time depends on the thread count, like a real machine's."""

    def __init__(self, step_ms: dict[int, float]) -> None:
        self.now, self.step_ms = 0.0, dict(step_ms)

    def __call__(self) -> float:
        return self.now

    def run_steps(self, tuner: ThreadTuner, n: int) -> None:
        for _ in range(n):
            self.now += self.step_ms[torch.get_num_threads()] / 1e3
            tuner.step_done()


@pytest.fixture
def two_cores(monkeypatch):
    before = torch.get_num_threads()
    monkeypatch.setattr(threads_module, "available_cores", lambda: 2)
    yield
    torch.set_num_threads(before)


def test_auto_keeps_the_fastest_count_and_remeasures_when_steps_slow_down(two_cores):
    clock = FakeClock({1: 10.0, 2: 6.0})  # a quiet machine: two threads are faster
    tuner = ThreadTuner(clock=clock)
    tuner.start()
    assert tuner.probing
    clock.run_steps(tuner, 2 * (tuner.probe_steps + 1))
    assert not tuner.probing and tuner.threads == 2 and torch.get_num_threads() == 2
    assert "1: 10.00 ms" in tuner.reason and "2: 6.00 ms" in tuner.reason

    clock.step_ms = {1: 11.0, 2: 80.0}  # a competitor arrives: spinning threads collapse
    clock.run_steps(tuner, tuner.probe_steps)
    assert tuner.probing and "slowed down" in tuner.reason
    clock.run_steps(tuner, 2 * (tuner.probe_steps + 1))
    assert tuner.threads == 1 and torch.get_num_threads() == 1

    clock.step_ms = {1: 10.0, 2: 6.0}  # it leaves: only the periodic check can notice
    clock.run_steps(tuner, int(tuner.period_s / 0.010) + 1)
    assert tuner.probing and "periodic" in tuner.reason
    clock.run_steps(tuner, 2 * (tuner.probe_steps + 1))
    assert tuner.threads == 2


def test_a_fixed_count_is_never_changed_and_restore_gives_torch_its_count_back(two_cores):
    before = torch.get_num_threads()
    clock = FakeClock({1: 50.0, 2: 6.0, 3: 1.0})
    tuner = ThreadTuner(requested=3, clock=clock)
    tuner.start()
    clock.run_steps(tuner, 100)
    assert torch.get_num_threads() == 3 and tuner.reason == "--threads 3" and not tuner.probing
    tuner.restore()
    assert torch.get_num_threads() == before


def test_candidates_cover_powers_of_two_and_every_core():
    assert candidate_counts(1) == [1]
    assert candidate_counts(2) == [1, 2]
    assert candidate_counts(6) == [1, 2, 4, 6]
    assert candidate_counts(8) == [1, 2, 4, 8]


@pytest.mark.parametrize("value, expected", [("auto", 0), ("0", 0), (None, 0), ("3", 3), (2, 2)])
def test_parse_threads(value, expected):
    assert parse_threads(value) == expected


@pytest.mark.parametrize("value", ["-1", "many", "1.5", "100000"])
def test_parse_threads_refuses_nonsense(value):
    with pytest.raises(ConfigError, match="--threads must be 'auto' or a number of threads from 1 to"):
        parse_threads(value)


def test_gemms_are_thread_count_invariant_in_this_process():
    if not torch.backends.mkl.is_available():
        pytest.skip("torch is built without MKL")
    assert gemm_reproducibility().startswith("strict")


def _weights_after_training(threads: int, out, make_trainer, norm: str) -> list[torch.Tensor]:
    # Layers wide enough that MKL splits the GEMMs across threads when it has two.
    norm, conditional, _ = norm.partition("+classes")
    options = {"gen": {"hidden": (512, 512), "norm": norm}, "disc": {"hidden": (512, 512)}}
    if conditional:
        options["gen"]["classes"] = options["disc"]["classes"] = 10
    config = RunConfig(data="digits", steps=8, batch_size=128, out=str(out), threads=threads, log_every=4,
                       sample_every=0, ckpt_every=0, options=options)
    trainer = make_trainer(config)
    trainer.fit()
    return [t.detach().clone() for module in (trainer.generator, trainer.discriminator)
            for t in module.state_dict().values()]


@pytest.mark.parametrize("norm", ["none", "batch", "batch+classes"])
def test_one_and_two_threads_train_bit_identical_weights(norm, tmp_path, make_trainer):
    """With and without BatchNorm in G (ganforge's BatchNorm1d reduces in a fixed order), and
    class-conditional (the projection's embedding and its gradient)."""
    one = _weights_after_training(1, tmp_path / "one", make_trainer, norm)
    two = _weights_after_training(2, tmp_path / "two", make_trainer, norm)
    assert all(torch.equal(a, b) for a, b in zip(one, two, strict=True))


def test_metrics_report_steps_per_second_and_threads(tiny_points_config, make_trainer):
    from ganforge.run.folder import read_metrics

    trainer = make_trainer(tiny_points_config)
    trainer.fit()
    rows = read_metrics(trainer.folder.metrics)
    assert all(r["steps_per_s"] > 0 and r["threads"] >= 1 for r in rows)
