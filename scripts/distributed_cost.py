"""What the gradient all-reduce costs next to a training step, under torchrun with gloo on the CPU.

    python -m torch.distributed.run --nproc_per_node 2 scripts/distributed_cost.py

For the mnist recipe's networks (G 100-256-512-1024-784 with BatchNorm, D 784-512-256-1) it
times, in each process, whole training steps through the real Trainer at global batch 64 and
256 and, separately, the two all-reduces a step makes (G's and D's flattened gradients), and
prints rank 0's medians and their ratio. Run it on an otherwise idle machine: two processes on
two cores leave nothing for anything else.
"""

from __future__ import annotations

import statistics
import tempfile
import time

import torch

from ganforge import RunConfig, Trainer


def median_ms(fn, repeats: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def main() -> None:
    import os

    import torch.distributed as dist

    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        dist.init_process_group("gloo")  # one group for both trainers (the seam leaves it open)
    rows = []
    for batch in (64, 256):
        with tempfile.TemporaryDirectory() as tmp:
            config = RunConfig(recipe="mnist", data="mnist", steps=10**6, batch_size=batch, threads=1,
                               out=f"{tmp}/run", log_every=0, sample_every=0, ckpt_every=0, ema=0.999,
                               lr_g=2e-4, lr_d=2e-4, betas=(0.5, 0.999), options={"gen": {"norm": "batch"}})
            trainer = Trainer(config)
            trainer.start()
            trainer.train(20)  # warm up
            step = median_ms(lambda t=trainer: t.train(1), 60)
            params = [p for m in (trainer.generator, trainer.discriminator) for p in m.parameters()]
            for p in params:
                p.grad = torch.zeros_like(p)
            reduce = median_ms(lambda t=trainer: (t.seam.average_gradients(t.generator.parameters()),
                                                  t.seam.average_gradients(t.discriminator.parameters())), 60)
            trainer.stop()
        rows.append((batch, step, reduce))
    if trainer.seam.is_main_process:
        print(f"{trainer.seam.world_size} processes, backend {trainer.seam.backend}, 1 thread each")
        print(f"{'global batch':>12} {'step ms':>9} {'all-reduce ms':>14} {'share of step':>14}")
        for batch, step, reduce in rows:
            print(f"{batch:12d} {step:9.2f} {reduce:14.2f} {reduce / step:13.0%}")


if __name__ == "__main__":
    main()
