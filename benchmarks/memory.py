"""Peak CPU memory of a callable, from the profiler's allocation events (torch has no CPU
equivalent of ``torch.cuda.max_memory_allocated``)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.profiler import ProfilerActivity, profile


def peak_bytes(fn: Callable[[], object]) -> int:
    """Highest total of bytes torch allocated and had not yet freed while ``fn`` ran.

    Uses the allocation timeline behind ``profile.export_memory_timeline`` (every allocation and
    free with its size, in order); tensors that existed before ``fn`` are not counted.
    """
    from torch.profiler._memory_profiler import Action

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True, record_shapes=True,
                 with_stack=True) as prof:
        fn()
    live = peak = 0
    for _, action, _, size in prof._memory_profile().timeline:
        if action == Action.CREATE:
            live += size
        elif action == Action.DESTROY:
            live -= size
        peak = max(peak, live)
    return peak


def saved_for_backward_bytes(fn: Callable[[], torch.Tensor]) -> int:
    """Bytes autograd keeps for backward while ``fn`` builds its graph (unique storages)."""
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        seen[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    del out
    return sum(seen.values())
