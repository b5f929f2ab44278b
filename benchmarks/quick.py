"""Whether this is the CI's smoke run of the benchmarks (``GANFORGE_BENCH_QUICK=1``): every case
still runs, with a few rounds each, so a broken case fails CI without CI timing anything."""

from __future__ import annotations

import os

QUICK = os.environ.get("GANFORGE_BENCH_QUICK") == "1"
