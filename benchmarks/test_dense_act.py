"""Forward+backward timings of the MLP GAN's layers and whole stacks: fused vs eager vs
torch.compile(eager) vs the GEMM floor. Run: pytest benchmarks --benchmark-only

Each case is a pytest-benchmark group; the summary at the end prints the ratios of the variants
measured in this same run (see conftest.py). Speed claims are ratios, never absolute times.
"""

from __future__ import annotations

import pytest
import torch
from quick import QUICK
from stacks import BATCHES, STACKS, Stack, make_runner

VARIANTS = ("eager", "fused", "compiled", "floor")
LAYERS = [(stack, i, layer) for stack, layers in STACKS.items() for i, layer in enumerate(layers)]


def rounds_for(batch: int) -> tuple[int, int]:
    """(rounds, iterations per round): about the same work per case whatever the batch."""
    iterations = max(1, 512 // batch)
    return (3 if QUICK else 30), iterations


def run_case(benchmark, variant: str, stack: Stack, batch: int) -> None:
    if variant == "compiled" and QUICK:
        pytest.skip("torch.compile variant skipped in GANFORGE_BENCH_QUICK mode (compile time)")
    runner = make_runner(variant, stack)
    rounds, iterations = rounds_for(batch)
    benchmark.pedantic(runner, rounds=rounds, iterations=iterations, warmup_rounds=2)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("name", list(STACKS))
def test_stack_forward_backward(benchmark, name, batch, variant):
    """The whole G (input: noise, no gradient) or D (input: data, no gradient) stack."""
    benchmark.group = f"stack {name} b{batch}"
    run_case(benchmark, variant, Stack.make(STACKS[name], batch), batch)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("stack, index, layer", LAYERS,
                         ids=[f"{s}{i}-{fan[0]}x{fan[1]}-{fan[2]}" for s, i, fan in LAYERS])
def test_layer_forward_backward(benchmark, stack, index, layer, batch, variant):
    """One layer with an input that needs its gradient (any layer but the first of a stack)."""
    benchmark.group = f"layer {stack}{index} {layer[0]}-{layer[1]} {layer[2]} b{batch}"
    run_case(benchmark, variant, Stack.make((layer,), batch, input_grad=True), batch)


CUDA_OK = torch.cuda.is_available()
try:
    from ganforge.ops import backend

    CUDA_OK = CUDA_OK and backend() == "cuda"
except ImportError:  # pragma: no cover
    CUDA_OK = False


@pytest.mark.skipif(not CUDA_OK, reason="needs a CUDA GPU and ganforge._C built with its CUDA kernels")
@pytest.mark.parametrize("variant", ("eager", "fused", "addmm_activation", "compiled", "floor"))
@pytest.mark.parametrize("dtype", (torch.float32, torch.bfloat16, torch.float16), ids=str)
@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("name", list(STACKS))
def test_stack_forward_backward_cuda(benchmark, name, batch, dtype, variant):
    """On the GPU, also against torch._addmm_activation (cuBLASLt's fused GEMM + ReLU)."""
    benchmark.group = f"cuda stack {name} b{batch} {str(dtype).split('.')[-1]}"
    stack = Stack.make(STACKS[name], batch, device="cuda", dtype=dtype)
    runner = make_runner(variant, stack)
    benchmark.pedantic(runner, rounds=50, iterations=10, warmup_rounds=5)


def test_peak_memory_generator_batch_1024(benchmark):
    """Peak bytes of a G forward+backward at batch 1024, fused vs eager (also printed)."""
    from memory import peak_bytes, saved_for_backward_bytes
    from stacks import eager_forward, fused_forward, fwd_bwd

    stack = Stack.make(STACKS["G"], 1024)
    result = {}
    for variant, forward in (("eager", eager_forward), ("fused", fused_forward)):
        runner = fwd_bwd(forward, stack)
        runner()
        result[variant] = (peak_bytes(runner), saved_for_backward_bytes(lambda f=forward: f(stack, stack.x)))
    benchmark.extra_info.update({f"{v}_peak_bytes": p for v, (p, _) in result.items()})
    benchmark.extra_info.update({f"{v}_saved_bytes": s for v, (_, s) in result.items()})
    benchmark.pedantic(lambda: None, rounds=1)
    mib = lambda b: f"{b / 2**20:.2f} MiB"  # noqa: E731
    print(f"\nG fwd+bwd b1024 peak: eager {mib(result['eager'][0])}, fused {mib(result['fused'][0])}; "
          f"saved for backward: eager {mib(result['eager'][1])}, fused {mib(result['fused'][1])}")
    assert result["fused"][0] < result["eager"][0]
