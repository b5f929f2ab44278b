"""Print speed ratios after a benchmark run: every variant against eager and against the GEMM floor
measured in the same run (pytest-benchmark groups hold the variants of one case)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

TARGET_VS_FLOOR = 1.05


def _stats(config):  # type: ignore[no-untyped-def]
    session = getattr(config, "_benchmarksession", None)
    if session is None:
        return {}
    groups: dict[str, dict[str, float]] = {}
    for bench in session.benchmarks:
        variant = bench["params"].get("variant") if bench.get("params") else None
        if variant is None or not bench.stats:
            continue
        groups.setdefault(bench["group"], {})[variant] = bench.stats.min
    return groups


def pytest_terminal_summary(terminalreporter, config):  # type: ignore[no-untyped-def]
    groups = _stats(config)
    if not groups:
        return
    write = terminalreporter.write_line
    write("")
    write("dense_act ratios (min time over rounds; < 1 is faster than the reference)")
    write(f"{'case':34s} {'eager ms':>9s} {'fused/eager':>11s} {'fused/floor':>11s} "
          f"{'eager/floor':>11s} {'compiled/eager':>14s} {'fused/addmm_act':>15s}")
    for group in sorted(groups, key=lambda g: (not g.startswith(("stack", "cuda")), g)):
        t = groups[group]
        if "eager" not in t or "fused" not in t:
            continue
        floor = t.get("floor")
        ratio = lambda a, b: f"{t[a] / t[b]:.3f}" if a in t and b in t else "-"  # noqa: E731
        vs_floor = f"{t['fused'] / floor:.3f}" if floor else "-"
        flag = ""
        if floor and group.startswith(("stack", "cuda stack")):
            ok = t["fused"] <= t["eager"] and t["fused"] / floor <= TARGET_VS_FLOOR
            flag = "  ok" if ok else f"  (target: <= eager and <= {TARGET_VS_FLOOR}x floor)"
        write(f"{group:34s} {t['eager'] * 1e3:9.3f} {ratio('fused', 'eager'):>11s} {vs_floor:>11s} "
              f"{ratio('eager', 'floor'):>11s} {ratio('compiled', 'eager'):>14s} "
              f"{ratio('fused', 'addmm_activation'):>15s}{flag}")
