"""``ganforge doctor``: what this installation can do (versions, op backend, CUDA, plugins)."""

from __future__ import annotations

import argparse
import platform


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("doctor", help="show versions, the fused op backend and plugins")
    p.set_defaults(handler=handle)


def threads_summary() -> str:
    import torch

    from ganforge.runtime.threads import available_cores, candidate_counts

    cores = available_cores()
    tried = ", ".join(map(str, candidate_counts(cores)))
    return (f"{cores} cores available, torch default {torch.get_num_threads()}. `ganforge run` uses "
            f"--threads auto: it times real steps with {tried} threads, keeps the fastest and measures "
            "again when steps slow down (another process took a core) or every 30 s; --threads N fixes it")


def bf16_summary() -> str:
    import torch

    from ganforge.runtime.device import resolve_device
    from ganforge.runtime.precision import native_bf16, resolve_precision

    device = resolve_device("auto")
    auto = resolve_precision("auto", device)
    how = "native" if native_bf16(device) else "emulated by torch (slow)"
    return f"{how} on {device.type} ({torch.backends.cpu.get_cpu_capability()}); --precision auto trains in {auto}"


def handle(args: argparse.Namespace) -> int:
    import torch
    from rich.console import Console

    from ganforge import __version__
    from ganforge.ops import backend
    from ganforge.plugins import load_registry
    from ganforge.runtime.threads import gemm_reproducibility

    pm, registry = load_registry()
    console = Console(highlight=False)
    cuda = torch.version.cuda or "none (CPU build)"
    console.print(f"ganforge   {__version__}")
    console.print(f"python     {platform.python_version()}")
    console.print(f"torch      {torch.__version__} (CUDA {cuda}; GPU available: {torch.cuda.is_available()})")
    console.print(f"op backend {backend()}")
    console.print(f"threads    {threads_summary()}")
    console.print(f"bf16       {bf16_summary()}")
    console.print(f"GEMM bits  {gemm_reproducibility()}")
    plugins = [name for name, _ in pm.list_name_plugin()]
    console.print(f"plugins    {', '.join(plugins)}")
    console.print(f"components {sum(1 for _ in registry)}")
    return 0
