"""``ganforge export RUN -o generator.pt2``: the run's generator as a ``torch.export`` program.

The program holds standard ATen ops only: the fused dense + activation op is traced through its
pure-PyTorch reference (the same numbers, see tests/test_ops.py), so the file loads and runs
with plain PyTorch, ganforge not installed::

    program = torch.export.load("generator.pt2")
    samples = program.module()(torch.randn(16, z_dim))      # any batch size

The generator is the weight average (EMA) when the run kept one, as in ``sample`` and ``eval``,
in eval mode (BatchNorm uses its running statistics). ``ganforge.json`` inside the file records
z_dim, the sample shape and value range, the step and the source run.
"""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ganforge.cli.args import non_negative_int

    p = sub.add_parser("export", help="write a run's generator as a torch.export program (.pt2)",
                       description="Write the generator of a run as a torch.export program that loads "
                                   "without ganforge.")
    p.add_argument("run_dir", help="a run folder written by `ganforge run`")
    p.add_argument("-o", "--output", required=True, help="output file, ending in .pt2")
    p.add_argument("--no-ema", dest="ema", action="store_false",
                   help="export the last generator weights, not their average")
    p.add_argument("--step", type=non_negative_int, default=None, help="export the checkpoint of this step")
    p.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    import torch

    from ganforge.errors import UsageError
    from ganforge.ops.dense_act import reference_ops
    from ganforge.plugins import load_registry
    from ganforge.run.destination import check_output_file, check_space, replacing
    from ganforge.train.restore import load_run

    out = Path(args.output)
    if out.suffix != ".pt2":
        raise UsageError(f"-o {out}: torch.export programs are saved as .pt2; use a name such as generator.pt2")
    check_output_file(out, "-o", example="generator.pt2")  # before any work: one line, exit 2
    _, registry = load_registry()
    run = load_run(args.run_dir, registry, ema=args.ema, step=args.step)
    generator = run.generator.cpu().eval()
    example = torch.randn(2, run.z_dim)
    with reference_ops(), torch.no_grad():
        try:
            program = torch.export.export(generator, (example,), dynamic_shapes=({0: torch.export.Dim.DYNAMIC},))
        except Exception as exc:  # a plugin generator torch.export cannot trace
            raise UsageError(f"torch.export cannot trace the generator {run.config.gen!r}: "
                             f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}") from None
    meta = {"z_dim": run.config.z_dim, "sample_shape": list(run.info.sample_shape),
            "value_range": list(run.info.value_range) if run.info.value_range else None,
            "modality": run.info.modality, "step": run.step, "ema": run.averaged, "run": str(args.run_dir),
            "generator": run.config.gen}
    # Serialised in memory, then written by Python: torch's own file writer aborts the process
    # (a C++ stack dump, exit 134) when the disk fills.
    buffer = io.BytesIO()
    torch.export.save(program, buffer, extra_files={"ganforge.json": json.dumps(meta)})
    check_space(out, buffer.getbuffer().nbytes, "-o")
    with replacing(out, "-o") as partial:
        partial.write_bytes(buffer.getbuffer())
    print(f"wrote {out}: generator {run.config.gen!r} at step {run.step} ({'EMA' if run.averaged else 'last'} "
          f"weights), z_dim {run.config.z_dim} -> {tuple(run.info.sample_shape)}; load it with "
          f"torch.export.load(path).module()")
    return 0
