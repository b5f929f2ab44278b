"""The one place that knows about devices and processes: the trainer asks this module for its
device, its share of a batch, gradient averaging across processes and whether it may write.

Under ``torchrun`` (``WORLD_SIZE`` > 1) it joins torch.distributed's process group: ``nccl`` on
CUDA, ``gloo`` on the CPU. ``--batch-size`` stays the global batch: every process draws the same
global batch of data and noise from identically seeded generators and keeps its own slice, so N
processes see exactly the samples one process would, and after each backward the gradients are
averaged with one ``all_reduce`` over a flat buffer per network. With losses that are means over
the batch, N processes then take the same steps as one process with the same seed (up to float
summation order; tests/test_distributed.py).

Why not wrap the networks in ``DistributedDataParallel``: a GAN step uses D twice per step (in
D's update and, with its parameters frozen, in G's), scores real and fake in one ``forward_pair``
call, and the R1/R2/WGAN-GP penalties differentiate D twice (``torch.autograd.grad`` with
``create_graph``), none of which DDP's reducer supports. StyleGAN2-ADA's training loop makes the
same choice: one explicit all-reduce of the flattened gradients per network update.

Only rank 0 writes the run folder (logs, pictures, checkpoints, evaluations) and runs the
plugins' lifecycle hooks; a stop requested on any rank (Ctrl-C, SIGTERM) is agreed on by all
before the next step, so every process stops after the same step and rank 0 saves it.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterable, Iterator

import torch
from torch import nn

from ganforge.errors import ConfigError, PeerLostError
from ganforge.runtime.device import resolve_device
from ganforge.runtime.environment import UNDER_TORCHRUN, check_distributed
from ganforge.runtime.precision import resolve_precision

HALF = {"bf16": torch.bfloat16, "fp16": torch.float16}


def no_scaling(device: torch.device) -> torch.amp.GradScaler:
    """A disabled gradient scaler: ``scale`` returns the loss and ``step`` the plain optimiser step."""
    return torch.amp.GradScaler(device.type, enabled=False)


def join_process_group(backend: str, rank: int, world_size: int) -> None:
    """Join the job's process group. Under torchrun the rendezvous is done and this returns at
    once. Processes started by hand (``WORLD_SIZE``, ``RANK``, ``MASTER_ADDR``/``PORT`` set by the
    user) say that they wait for their peers and give up after ``GANFORGE_RENDEZVOUS_TIMEOUT``
    seconds (300) with a message, instead of waiting silently until killed."""
    import faulthandler
    import sys
    from datetime import timedelta

    import torch.distributed as dist

    # a process killed by a signal (an abort in gloo's C++ threads, a segfault) prints its Python
    # stack: torchrun's summary says only "Signal 6", which does not tell where the process was
    if not faulthandler.is_enabled():
        faulthandler.enable()
    # Imported before the group exists, not by the optimiser's first step after it: torch 2.13's
    # dynamo, imported while a gloo group exists, keeps that group alive past
    # destroy_process_group, and at interpreter exit gloo's worker threads could then free a
    # tensor without the GIL and abort the process ("terminate called without an active
    # exception") after a run that finished well. tests/test_distributed.py pins this.
    import torch._dynamo  # noqa: F401
    if UNDER_TORCHRUN in os.environ:
        dist.init_process_group(backend)
        return
    address, port = os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"])
    timeout = int(os.environ.get("GANFORGE_RENDEZVOUS_TIMEOUT", "300"))
    print(f"process {rank} of {world_size}: waiting up to {timeout} s for the other processes at {address}:{port} "
          f"(GANFORGE_RENDEZVOUS_TIMEOUT)", file=sys.stderr, flush=True)
    try:
        store = dist.TCPStore(address, port, world_size, is_master=rank == 0, timeout=timedelta(seconds=timeout),
                              wait_for_workers=True)
    except (RuntimeError, OSError) as exc:  # DistStoreError / DistNetworkError derive from RuntimeError
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise PeerLostError(f"process {rank} of {world_size}: the other processes did not join at "
                            f"{address}:{port} within {timeout} s ({first}); start all {world_size} with the "
                            f"same MASTER_ADDR/MASTER_PORT and RANK 0 to {world_size - 1}, or use torchrun") from None
    dist.init_process_group(backend, store=store, rank=rank, world_size=world_size)


class Seam:
    """Device, precision and processes for one run. ``Seam(device)`` reads torchrun's environment;
    :meth:`single_process` is the plain one-process seam (benchmarks, tests, notebooks)."""

    @classmethod
    def single_process(cls, device: str | torch.device = "cpu", precision: str = "fp32") -> Seam:
        seam = cls.__new__(cls)
        seam.world_size, seam.rank, seam.distributed, seam._joined = 1, 0, False, False
        seam.device = resolve_device(str(device))
        seam.precision = resolve_precision(precision, seam.device)
        return seam

    def __init__(self, device: str, precision: str = "fp32") -> None:
        check_distributed()  # WORLD_SIZE=abc or RANK missing: one line, not a traceback or a wait
        self.world_size = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ["RANK"]) if self.world_size > 1 else 0
        self.distributed = self.world_size > 1
        self._joined = False
        if self.distributed:
            import torch.distributed as dist

            local = int(os.environ.get("LOCAL_RANK", "0"))
            wanted = resolve_device(device)
            if wanted.type == "cuda":
                torch.cuda.set_device(local)
                self.device = torch.device("cuda", local)
            else:
                self.device = torch.device("cpu")
            if not dist.is_initialized():
                join_process_group("nccl" if self.device.type == "cuda" else "gloo", self.rank, self.world_size)
                self._joined = True
        else:
            self.device = resolve_device(device)
        self.precision = resolve_precision(precision, self.device)  # "auto" -> bf16 or fp32

    def autocast(self) -> contextlib.AbstractContextManager[object]:
        """The forward passes' precision: bf16 or fp16 autocast, or nothing for fp32. Weights,
        gradients and optimiser state stay float32 either way (autocast casts per op)."""
        if self.precision in HALF:
            return torch.autocast(self.device.type, dtype=HALF[self.precision])
        return contextlib.nullcontext()

    def grad_scaler(self) -> torch.amp.GradScaler:
        """A gradient scaler, enabled for fp16 only: float16's exponent is so short that small
        gradients underflow to zero, so the loss is multiplied by a large factor before backward
        and the gradients divided by it before the optimiser step; a step whose gradients
        overflowed is skipped and the factor halved (torch.amp's dynamic loss scaling). bf16 has
        float32's exponent and needs none. One scaler per optimiser: D and G run separate backward
        passes, and each overflows on its own."""
        return torch.amp.GradScaler(self.device.type) if self.precision == "fp16" else no_scaling(self.device)

    @property
    def is_main_process(self) -> bool:
        return self.rank == 0

    @property
    def backend(self) -> str:
        if not self.distributed:
            return "none"
        import torch.distributed as dist

        return str(dist.get_backend())

    @contextlib.contextmanager
    def _collective(self, what: str) -> Iterator[None]:
        """A collective whose peer is gone fails in gloo/nccl with a RuntimeError (a closed
        connection, a timeout); say which process noticed and what the job was doing."""
        try:
            yield
        except RuntimeError as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            first = re.sub(r"\[[^\]]*\.(cc|cpp):\d+\]\s*", "", first).split(". This is typically")[0][:160]
            raise PeerLostError(f"process {self.rank} of {self.world_size}: another process of this torchrun "
                                f"job stopped while this one waited for it ({what}: {first})") from exc

    def check_batch_size(self, batch_size: int) -> None:
        if batch_size % self.world_size:
            raise ConfigError(f"--batch-size {batch_size} is the global batch and must split evenly over the "
                              f"{self.world_size} processes; use a multiple of {self.world_size}")

    def shard(self, batch: torch.Tensor) -> torch.Tensor:
        """This process's slice of a global batch (all of it in a single process)."""
        if not self.distributed:
            return batch
        per = len(batch) // self.world_size
        return batch[self.rank * per:(self.rank + 1) * per]

    def average_gradients(self, params: Iterable[nn.Parameter]) -> None:
        """Replace each gradient by its mean over the processes: one all_reduce of a flat buffer."""
        if not self.distributed:
            return
        import torch.distributed as dist

        grads = [p.grad for p in params if p.grad is not None]
        if not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])
        with self._collective("averaging gradients"):
            dist.all_reduce(flat)
        flat.div_(self.world_size)
        offset = 0
        for g in grads:
            g.copy_(flat[offset:offset + g.numel()].view_as(g))
            offset += g.numel()

    def all_reduce_mean(self, values: torch.Tensor) -> torch.Tensor:
        if not self.distributed:
            return values
        import torch.distributed as dist

        values = values.clone()
        with self._collective("averaging the logged values"):
            dist.all_reduce(values)
        return values / self.world_size

    def agree(self, flag: bool) -> bool:
        """True on every process when ``flag`` is true on any (a stop request, a failure)."""
        if not self.distributed:
            return flag
        import torch.distributed as dist

        t = torch.tensor([1 if flag else 0], device=self.device)
        with self._collective("agreeing on whether to stop"):
            dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item())

    def prepare_model(self, module: nn.Module) -> nn.Module:
        """Move to the device; with several CUDA processes, BatchNorm becomes SyncBatchNorm. On the
        CPU torch has no SyncBatchNorm, so BatchNorm statistics stay per process there."""
        module = module.to(self.device)
        if self.distributed and self.device.type == "cuda":
            module = nn.SyncBatchNorm.convert_sync_batchnorm(module)
        return module

    def close(self, clean: bool = True) -> None:
        """Leave the process group. After a clean run every process first waits for the others:
        a process that tore down gloo's connections while rank 0 was still writing its last
        checkpoint could abort in gloo's C++ threads ("terminate called without an active
        exception"). After a failure nobody waits, and the group is not torn down either: with
        a peer gone, gloo's teardown aborts the same way (measured with a killed host); the
        process's exit closes the connections, and the others learn of it from their next
        collective."""
        if not self._joined:
            return
        self._joined = False
        if not clean:
            return
        import torch.distributed as dist

        with contextlib.suppress(RuntimeError):  # a peer that failed meanwhile reports itself
            dist.barrier()
        dist.destroy_process_group()
