"""Which precision a run computes in, and whether the device computes bf16 natively.

bf16 autocast pays only where the hardware does bf16 arithmetic: a CUDA GPU from Ampere on, or a
CPU with AVX512-BF16 or AMX, where oneDNN runs bf16 convolutions and GEMMs. Elsewhere torch
emulates them: on an AVX2 CPU the Stacked MNIST recipe's step took 1.56 s in bf16 against 0.13 s
in fp32. So a recipe asks for ``auto`` (bf16 where native, fp32 elsewhere) rather than for bf16,
and an explicit ``--precision bf16`` on such a CPU gets a one-line warning saying so.
"""

from __future__ import annotations

import torch


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` does bf16 arithmetic in hardware (torch's own test for each device)."""
    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported(including_emulation=False))
    if device.type == "cpu":
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return False


def resolve_precision(name: str, device: torch.device) -> str:
    """``auto`` -> bf16 where ``device`` computes it natively, else fp32; any other name as given."""
    if name == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    return name


def emulation_warning(name: str, device: torch.device) -> str | None:
    """One line for a bf16 run on a CPU without native bf16 (slow, not wrong), else ``None``."""
    if name != "bf16" or device.type != "cpu" or native_bf16(device):
        return None
    return ("--precision bf16: this CPU has no native bf16 (AVX512-BF16 or AMX), so torch emulates it and "
            "convolutions run about 10x slower than in fp32; use --precision auto (fp32 here) or fp32")
