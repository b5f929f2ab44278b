"""Where a training step's time goes: a recipe's real Trainer under ``torch.profiler``.

    python scripts/profile_step.py --recipe stacked-mnist --steps 100 --threads 1
    python scripts/profile_step.py --recipe stacked-mnist --set gen.width=32 --precision fp32

Trains ``--warmup`` steps first (thread pools, allocator and oneDNN's kernel choice settle), then
profiles ``--steps`` more and prints each kind of work's share of the CPU time spent in torch's
operators (self time, so nothing is counted twice), with the operators behind it. Any ``ganforge
run`` setting can be given with ``--set KEY=VALUE`` or the flags below; the run writes to a
temporary folder.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

KINDS = [  # (kind, pattern on the operator's name), first match wins
    ("convolution", r"conv|mkldnn_convolution|slow_conv"),
    ("dense (GEMM)", r"addmm|^aten::mm$|bmm|matmul|linear|fused_dense"),
    ("optimizer (Adam)", r"adam|_foreach"),
    ("weight average (EMA)", r"lerp"),
    ("normalisation", r"batch_norm|native_batch_norm|layer_norm"),
    ("activations", r"relu|leaky|tanh|sigmoid|softplus|gelu|threshold|clamp"),
    ("precision casts", r"^aten::to$|_to_copy|copy_"),
    ("random numbers", r"normal|uniform|randint|rand|bernoulli"),
]


def kind_of(name: str) -> str:
    for kind, pattern in KINDS:
        if re.search(pattern, name, flags=re.IGNORECASE):
            return kind
    return "other"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", default="stacked-mnist")
    parser.add_argument("--steps", type=int, default=100, help="profiled steps")
    parser.add_argument("--warmup", type=int, default=20, help="steps trained before profiling")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--precision", choices=("fp32", "bf16", "auto"), default=None)
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()

    from torch.profiler import ProfilerActivity, profile

    from ganforge.config import merge_settings, parse_value
    from ganforge.plugins import load_registry
    from ganforge.resolve import resolve_settings
    from ganforge.sweep.grid import Axis
    from ganforge.train.trainer import Trainer

    pm, registry = load_registry()
    given: dict = {"recipe": args.recipe, "threads": args.threads, "sample_every": 0, "ckpt_every": 0,
                   "log_every": 0}
    if args.precision:
        given["precision"] = args.precision
    for text in args.sets:
        key, _, value = text.partition("=")
        given = merge_settings(given, Axis(key, (parse_value(value),)).overlay(parse_value(value)))
    with tempfile.TemporaryDirectory() as folder:
        warm = resolve_settings({**given, "steps": args.warmup, "out": folder}, registry)
        Trainer(warm, registry=registry, plugin_manager=pm).fit()
        config = resolve_settings({**given, "steps": args.warmup + args.steps, "out": folder, "resume": True},
                                  registry)
        trainer = Trainer(config, registry=registry, plugin_manager=pm)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            trainer.fit()
    shares: dict[str, float] = defaultdict(float)
    members: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for event in prof.key_averages():
        if event.key.startswith("aten::") or "::" in event.key:
            kind = kind_of(event.key)
            shares[kind] += event.self_cpu_time_total
            members[kind][event.key] += event.self_cpu_time_total
    total = sum(shares.values())
    print(f"{args.recipe} {' '.join(args.sets)} {trainer.seam.precision}, {args.steps} steps on {config.threads} "
          f"thread(s): {total / 1e3 / args.steps:.1f} ms of operator time per step")
    for kind, value in sorted(shares.items(), key=lambda kv: -kv[1]):
        top = sorted(members[kind].items(), key=lambda kv: -kv[1])[:3]
        names = ", ".join(f"{name.removeprefix('aten::')} {100 * v / total:.0f}%" for name, v in top)
        print(f"  {kind:<22} {100 * value / total:5.1f} %   ({names})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
