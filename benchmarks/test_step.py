"""A whole training step, ganforge against the hand-written loop and the GEMM floor.
Run: pytest benchmarks --benchmark-only -k step

Groups (the summary at the end prints the ratios, see conftest.py):

- ``step bN``: baseline (tutorial loop), ganforge (the real Trainer at its tuned thread count),
  floor; at batch 64, 256, 1024.
- ``step overhead b64``: the Trainer's step with its bookkeeping (hooks, logging, progress display)
  against the bare :class:`ganforge.train.step.GanStep` it wraps, at one fixed thread count.
- ``step ablation b64``: what each choice of the step is worth (Adam's form, one D pass or two).
- ``step busy b64``: ganforge and the baseline alone and next to one CPU-bound competitor process.
- ``step bf16 b64``: the Trainer under ``--precision bf16`` against the fp32 tutorial loop (the step
  a user gets by asking for bf16).
- ``dcgan step b64``: the built-in DCGAN pair at 28x28 through the real Trainer (fp32 and bf16)
  against the DCGAN loop as tutorials write it (``baseline_dcgan_step``).

``step bN`` and the last two, which the performance targets read, time their variants in
interleaved rounds (benchmarks/interleaved.py), so a busy minute on a shared machine slows them alike.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
from gan_steps import ablation_step, baseline_dcgan_step, baseline_step, floor_step, ganforge_trainer
from interleaved import interleaved
from quick import QUICK

# CI smoke run: a handful of steps per case, enough to show every case runs, none to time it (on a
# CPU that emulates bf16, a bf16 DCGAN step takes over a second)
WARMUP_STEPS = 40  # the thread tuner's first measurements happen here, as in any run


@pytest.fixture(autouse=True)
def torch_default_threads():
    """Each case starts from torch's default thread count (the baseline runs with it)."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def plan(batch: int) -> tuple[int, int]:
    """(rounds, steps per round): about the same work per case whatever the batch."""
    return (2, 2) if QUICK else (15, max(2, 1024 // batch))


def run(benchmark, step, batch: int) -> None:  # type: ignore[no-untyped-def]
    for _ in range(WARMUP_STEPS if not QUICK else 2):
        step()
    rounds, iterations = plan(batch)
    benchmark.pedantic(step, rounds=rounds, iterations=iterations, warmup_rounds=0 if QUICK else 1)


def ganforge_step(batch, tmp_path, **kwargs):  # type: ignore[no-untyped-def]
    trainer = ganforge_trainer(batch, tmp_path / "run", **kwargs)
    return trainer, lambda: trainer.train(1)


def at_threads(threads: int, step):  # type: ignore[no-untyped-def]
    """``step`` run at ``threads``: variants in interleaved rounds each keep their own count."""
    def run() -> None:
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
        step()
    return run


@pytest.mark.parametrize("batch", [64, 256, 1024])
def test_step(benchmark, batch, tmp_path):
    """The tutorial loop and the GEMM floor at torch's default thread count against the Trainer at
    the count its thread tuner picks, in interleaved rounds. The tuner times the wall clock between
    steps, which other variants' rounds would fill, so it picks in a first Trainer's warm-up and a
    second Trainer runs at its pick."""
    benchmark.group = f"step b{batch}"
    default = torch.get_num_threads()
    tuned = ganforge_trainer(batch, tmp_path / "tuned")
    tuned.train(WARMUP_STEPS if not QUICK else 2)
    chosen, reason = tuned.threads.threads, tuned.threads.reason
    tuned.stop()
    trainer = ganforge_trainer(batch, tmp_path / "run", threads=chosen)
    runners = {"baseline": at_threads(default, baseline_step(batch)),
               "ganforge": at_threads(chosen, lambda: trainer.train(1)),
               "floor": at_threads(default, floor_step(batch))}
    run_interleaved(benchmark, runners, "ganforge", batch, [trainer])
    benchmark.extra_info.update(threads=chosen, thread_choice=reason)


def run_interleaved(benchmark, runners: dict, timed: str, batch: int, trainers: list) -> None:  # type: ignore[no-untyped-def]
    """``runners`` (name -> one step) in interleaved rounds (benchmarks/interleaved.py), after
    WARMUP_STEPS of each; stops the ``trainers`` afterwards."""
    for _ in range(WARMUP_STEPS if not QUICK else 2):
        for step in runners.values():
            step()
    rounds, iterations = plan(batch)
    interleaved(benchmark, runners, timed, rounds=rounds * iterations, warmup_rounds=0 if QUICK else 1)
    benchmark.extra_info["threads"] = torch.get_num_threads()
    for trainer in trainers:
        trainer.stop()


def trainer_runners(baseline, trainers: dict) -> dict:  # type: ignore[no-untyped-def]
    """The tutorial loop and Trainers (name -> Trainer) as runners. Every Trainer runs at torch's
    default thread count, the baseline's: the thread tuner of one would change the threads of the
    others."""
    return {"baseline": baseline, **{name: (lambda t=t: t.train(1)) for name, t in trainers.items()}}


def test_dcgan_step(benchmark, tmp_path):
    """The built-in DCGAN pair through the real Trainer (fp32 and bf16) against the tutorial DCGAN
    loop, batch 64, the three in interleaved rounds."""
    benchmark.group = "dcgan step b64"
    threads = torch.get_num_threads()
    trainers = {name: ganforge_trainer(64, tmp_path / name, gen="dcgan", precision=precision, threads=threads)
                for name, precision in (("ganforge", "fp32"), ("ganforge_bf16", "bf16"))}
    run_interleaved(benchmark, trainer_runners(baseline_dcgan_step(64), trainers), "ganforge", 64,
                    list(trainers.values()))


def test_bf16_step(benchmark, tmp_path):
    """The MLP step a user gets with --precision bf16 through the real Trainer against the fp32
    tutorial loop, batch 64, in interleaved rounds."""
    benchmark.group = "step bf16 b64"
    trainer = ganforge_trainer(64, tmp_path / "run", precision="bf16", threads=torch.get_num_threads())
    run_interleaved(benchmark, trainer_runners(baseline_step(64), {"ganforge_bf16": trainer}), "ganforge_bf16", 64,
                    [trainer])


@pytest.mark.parametrize("variant", ["fp32", "bf16"])
@pytest.mark.parametrize("batch", [64, 256])
def test_step_precision(benchmark, batch, variant, tmp_path):
    """--precision bf16 against fp32 through the real Trainer, at one fixed thread count."""
    benchmark.group = f"step precision b{batch}"
    trainer, step = ganforge_step(batch, tmp_path, threads=min(2, os.cpu_count() or 1), precision=variant)
    run(benchmark, step, batch)
    trainer.stop()


@pytest.mark.parametrize("variant", ["with_bookkeeping", "bare"])
def test_step_overhead(benchmark, variant, tmp_path):
    """Same thread count for both (2, or 1 on a one-core machine), so only the bookkeeping differs."""
    benchmark.group = "step overhead b64"
    trainer, step = ganforge_step(64, tmp_path, threads=min(2, os.cpu_count() or 1))
    run(benchmark, step if variant == "with_bookkeeping" else trainer.step_fn, 64)
    trainer.stop()


@pytest.fixture
def competitor(request):  # type: ignore[no-untyped-def]
    """One CPU-bound process (a Python busy loop) while the case runs, when asked for."""
    if request.param == "alone":
        yield None
        return
    proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize("competitor", ["alone", "busy"], indirect=True)
@pytest.mark.parametrize("variant", ["baseline", "ganforge"])
def test_step_next_to_a_busy_process(benchmark, variant, competitor, tmp_path):
    benchmark.group = "step busy b64"
    if variant == "ganforge":
        trainer, step = ganforge_step(64, tmp_path)
        run(benchmark, step, 64)
        benchmark.extra_info["threads"] = trainer.threads.threads
        trainer.stop()
    else:
        run(benchmark, baseline_step(64), 64)


@pytest.mark.parametrize("variant", ["single_tensor-two_calls", "foreach-pair", "single_tensor-pair", "fused-two_calls",
                                     "fused-pair"])
def test_step_ablation(benchmark, variant):
    """torch's default 2 threads for all, like the baseline."""
    benchmark.group = "step ablation b64"
    adam, d_calls = variant.split("-")
    run(benchmark, ablation_step(64, adam, d_calls == "pair"), 64)
