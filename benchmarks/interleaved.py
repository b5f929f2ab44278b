"""Variants of one group timed in interleaved rounds, so that their ratio holds on a shared machine.

pytest-benchmark times one case after another: on a 2-core machine whose neighbours come and go,
a variant timed in a quiet minute and its baseline in a busy one gave ratios that moved by 0.2-0.3
between runs (docs/performance.md). Here one case times every variant of its group round by round:
pytest-benchmark times ``timed`` as usual, and before each of its rounds (in its untimed setup)
each other variant runs once, timed here, so a slow minute slows every variant alike. The others'
times go into the case's ``extra_info["interleaved"]`` (seconds per call, every round), which
conftest.py's tables read next to ``timed``'s own statistics.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping


def interleaved(benchmark, runners: Mapping[str, Callable[[], object]], timed: str, *,  # type: ignore[no-untyped-def]
                rounds: int, warmup_rounds: int = 1) -> None:
    """Time ``runners[timed]`` with pytest-benchmark and the other runners once before each of its
    rounds; ``warmup_rounds`` rounds of every runner first, untimed."""
    others = {name: run for name, run in runners.items() if name != timed}
    for _ in range(warmup_rounds):
        for run in runners.values():
            run()
    times: dict[str, list[float]] = {name: [] for name in others}

    def setup() -> None:
        for name, run in others.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)

    benchmark.extra_info["timed_variant"] = timed
    benchmark.extra_info["interleaved"] = times
    benchmark.pedantic(runners[timed], setup=setup, rounds=rounds, iterations=1, warmup_rounds=0)


def variant_times(bench: object, statistic: str = "min") -> dict[str, float]:
    """Every variant's time in one case of pytest-benchmark's session (``bench``): the timed one's
    from its statistics, the interleaved ones' from ``extra_info``; ``statistic`` is min or median."""
    extra = getattr(bench, "extra_info", None) or {}
    stats = getattr(bench, "stats", None)
    out: dict[str, float] = {}
    if "timed_variant" in extra and stats is not None:
        out[extra["timed_variant"]] = getattr(stats, statistic)
    pick = min if statistic == "min" else statistics.median
    for name, values in (extra.get("interleaved") or {}).items():
        if values:
            out[name] = pick(values)
    return out
