"""Refuse, in one line, work that cannot fit in this machine's memory, before allocating it.

An allocation of terabytes (``-n 100000000000``, ``--z-dim 1e11``, ``gen.hidden=1e9``) either
fails deep inside torch with a C++ message or, worse, succeeds lazily and swaps the machine to a
halt. The checks here are estimates made from the request (bytes = elements x 4) against the
memory the kernel says is available; they only refuse what clearly cannot fit.
"""

from __future__ import annotations

import os

from ganforge.errors import ConfigError

BYTES_PER_VALUE = 4  # float32


def available_memory() -> int:
    """Bytes the kernel reports as available (MemAvailable), or the physical total elsewhere."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 1 << 62  # unknown: refuse nothing


def require_memory(values: int, what: str, fix: str) -> None:
    """Raise :class:`ConfigError` when ``values`` float32 numbers cannot fit in available memory."""
    needed, have = values * BYTES_PER_VALUE, available_memory()
    if needed > have:
        raise ConfigError(f"{what} needs about {_size(needed)} of memory, but {_size(have)} is available; {fix}")


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"
