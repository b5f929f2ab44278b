#!/usr/bin/env bash
# One command for a machine with an NVIDIA GPU, nvcc and PyTorch but no internet:
#
#   tools/gpu_check.sh OUT_DIR
#
# builds ganforge._C with its CUDA kernels, runs every test marked `cuda`, benchmarks dense_act on
# the GPU (fused vs eager vs torch._addmm_activation vs the GEMM floor; fp32 and bf16; batch 64 to
# 64k), trains the mnist recipe for 2,000 steps and, when a `dcgan` generator is registered, a
# DCGAN for 1,000 steps, and writes OUT_DIR/summary.json and OUT_DIR/gpu_check.log. Each step is
# timed and bounded; one failing step is recorded and the others still run; the exit status is
# 0 only when every step passed.
#
# Environment:
#   PYTHON               the interpreter (default: .venv/bin/python if it exists, else python3)
#   GPU_CHECK_DRY_RUN=1  the same pipeline on the CPU with tiny sizes (no CUDA build, a few steps):
#                        how tests/test_gpu_check.py tests it on machines without a GPU
#   GPU_CHECK_SKIP_BUILD=1  use the ganforge._C already built in the checkout
set -u -o pipefail

if [ $# -ne 1 ]; then
  echo "usage: tools/gpu_check.sh OUT_DIR   (GPU_CHECK_DRY_RUN=1 for the CPU dry run)" >&2
  exit 2
fi
OUT=$(mkdir -p "$1" && cd "$1" && pwd) || { echo "gpu_check: cannot create $1" >&2; exit 2; }
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 2
if [ -z "${PYTHON:-}" ]; then
  if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
DRY=${GPU_CHECK_DRY_RUN:-0}
LOG="$OUT/gpu_check.log"
STEPS="$OUT/steps.tsv"
: >"$LOG"
: >"$STEPS"
export PYTHONUNBUFFERED=1 PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"

if [ "$DRY" = 1 ]; then
  DEVICE=cpu; MNIST_STEPS=20; DCGAN_STEPS=4; BATCHES="64 256"; BENCH_ITERS=3
  DCGAN_EXTRA=(--set gen.width=8 --set disc.width=8 --batch-size 16)
  TRAIN_TIMEOUT=300; TEST_TIMEOUT=300
else
  DEVICE=cuda; MNIST_STEPS=2000; DCGAN_STEPS=1000; BATCHES="64 256 1024 4096 16384 65536"; BENCH_ITERS=20
  DCGAN_EXTRA=()
  TRAIN_TIMEOUT=240; TEST_TIMEOUT=180
fi

# step NAME TIMEOUT_S COMMAND...: runs the command with its output in the log; records status and seconds.
step() {
  local name=$1 limit=$2; shift 2
  local t0 rc
  t0=$(date +%s.%N)
  echo "=== $name: $*" >>"$LOG"
  timeout "$limit" "$@" >>"$LOG" 2>&1
  rc=$?
  printf '%s\t%s\t%s\n' "$name" "$rc" "$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b - a}')" >>"$STEPS"
  echo "=== $name: exit $rc" >>"$LOG"
  echo "gpu_check: $name exit $rc"
  return 0
}

skip() {  # skip NAME REASON
  printf '%s\tskipped\t0\t%s\n' "$1" "$2" >>"$STEPS"
  echo "=== $1: skipped ($2)" >>"$LOG"
  echo "gpu_check: $1 skipped ($2)"
}

step environment 60 bash -c "nvidia-smi || echo 'no nvidia-smi'; nvcc --version || echo 'no nvcc'; \
  $PYTHON -c 'import torch; print(torch.__version__, torch.version.cuda, torch.cuda.is_available())'"

if [ "${GPU_CHECK_SKIP_BUILD:-0}" = 1 ]; then
  skip build "GPU_CHECK_SKIP_BUILD=1"
elif [ "$DRY" = 1 ]; then
  step build 900 env GANFORGE_CUDA=0 MAX_JOBS="$(nproc)" "$PYTHON" setup.py build_ext --inplace
else
  step build 420 env GANFORGE_CUDA=1 MAX_JOBS="$(nproc)" "$PYTHON" setup.py build_ext --inplace
fi
step backend 60 "$PYTHON" -c "
from ganforge.ops import backend; import sys
b = backend(); print('backend', b)
sys.exit(0 if b == ('cpp' if '$DRY' == '1' else 'cuda') else 1)"

step cuda_tests "$TEST_TIMEOUT" "$PYTHON" -m pytest -q -p no:cacheprovider -m cuda tests \
  --junitxml="$OUT/cuda_tests.xml"

step benchmark 300 "$PYTHON" - "$OUT/bench.json" "$DEVICE" "$BENCH_ITERS" $BATCHES <<'PY'
"""dense_act on the device: median ms of G and D stacks fwd+bwd per variant, dtype and batch."""
import json, statistics, sys, time
sys.path.insert(0, "benchmarks")
import torch
from stacks import STACKS, Stack, make_runner
out, device, iters, batches = sys.argv[1], sys.argv[2], int(sys.argv[3]), [int(b) for b in sys.argv[4:]]
rows = []
for dtype in (torch.float32, torch.bfloat16):
    for batch in batches:
        for name, layers in STACKS.items():
            row = {"stack": name, "batch": batch, "dtype": str(dtype).removeprefix("torch."), "ms": {}}
            for variant in ("eager", "fused", "addmm_activation", "floor"):
                try:
                    run = make_runner(variant, Stack.make(layers, batch, device=device, dtype=dtype))
                    for _ in range(3):
                        run()
                    times = []
                    for _ in range(iters):
                        t0 = time.perf_counter(); run(); times.append(time.perf_counter() - t0)
                    row["ms"][variant] = 1e3 * statistics.median(times)
                except Exception as exc:  # one failing variant is recorded, not fatal
                    row.setdefault("errors", {})[variant] = f"{type(exc).__name__}: {exc}"[:300]
            ms = row["ms"]
            row["ratios"] = {f"{v}/eager": ms[v] / ms["eager"] for v in ms if "eager" in ms and v != "eager"}
            if "fused" in ms and "floor" in ms:
                row["ratios"]["fused/floor"] = ms["fused"] / ms["floor"]
            print(json.dumps(row))
            rows.append(row)
json.dump(rows, open(out, "w"), indent=1)
sys.exit(1 if any("errors" in r for r in rows) else 0)
PY

GANFORGE=("$PYTHON" -m ganforge)
step train_mnist "$TRAIN_TIMEOUT" "${GANFORGE[@]}" run --recipe mnist --steps "$MNIST_STEPS" --device "$DEVICE" \
  --sample-every 0 --ckpt-every 0 --out "$OUT/runs/mnist"

GENERATORS=$("${GANFORGE[@]}" list --kind generator 2>>"$LOG")  # captured: grep -q would cut the pipe
if grep -qw dcgan <<<"$GENERATORS"; then
  step train_dcgan "$TRAIN_TIMEOUT" "${GANFORGE[@]}" run --data mnist --gen dcgan --disc dcgan --loss nonsat \
    --steps "$DCGAN_STEPS" --device "$DEVICE" --sample-every 0 --ckpt-every 0 "${DCGAN_EXTRA[@]}" \
    --out "$OUT/runs/dcgan"
else
  skip train_dcgan "no dcgan generator registered (ganforge list --kind generator)"
fi

"$PYTHON" - "$OUT" "$DRY" <<'PY'
"""summary.json: each step's status and seconds, the test counts, the benchmark rows, the runs' last metrics."""
import json, sys, xml.etree.ElementTree as ET
from pathlib import Path
out, dry = Path(sys.argv[1]), sys.argv[2] == "1"
steps = {}
for line in (out / "steps.tsv").read_text().splitlines():
    name, rc, secs, *why = line.split("\t")
    status = "skipped" if rc == "skipped" else ("ok" if rc == "0" else "failed")
    steps[name] = {"status": status, "exit": None if rc == "skipped" else int(rc), "seconds": round(float(secs), 1)}
    if why:
        steps[name]["reason"] = why[0]
summary = {"dry_run": dry, "ok": all(s["status"] != "failed" for s in steps.values()), "steps": steps}
junit = out / "cuda_tests.xml"
if junit.exists():
    suite = ET.parse(junit).getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    summary["cuda_tests"] = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
bench = out / "bench.json"
summary["benchmark"] = json.loads(bench.read_text()) if bench.exists() else None
runs = {}
for run in ("mnist", "dcgan"):
    metrics = out / "runs" / run / "metrics.jsonl"
    if metrics.exists():
        lines = [json.loads(l) for l in metrics.read_text().splitlines() if l.strip()]
        runs[run] = {"last": lines[-1] if lines else None, "lines": len(lines)}
summary["runs"] = runs
try:
    import torch
    summary["device"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    summary["torch"] = torch.__version__
except Exception as exc:
    summary["device"] = f"unknown ({exc})"
(out / "summary.json").write_text(json.dumps(summary, indent=1))
print(f"gpu_check: {'ok' if summary['ok'] else 'FAILED'}; summary in {out / 'summary.json'}, log in {out / 'gpu_check.log'}")
sys.exit(0 if summary["ok"] else 1)
PY
