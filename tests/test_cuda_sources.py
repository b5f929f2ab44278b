"""The CUDA sources compile on any machine with nvcc, GPU or not (tools/check_cuda_sources.sh)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow  # nvcc builds every kernel for two architectures: about half a minute
@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not installed: CUDA sources cannot be compiled")
def test_cuda_sources_compile_with_nvcc():
    result = subprocess.run(["bash", str(ROOT / "tools" / "check_cuda_sources.sh")], capture_output=True, text=True,
                            env={**os.environ, "PYTHON": sys.executable}, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "CUDA sources compile" in result.stdout
    assert "sm_80" in result.stdout and "sm_90" in result.stdout  # the kernels are built for several GPUs
    assert "dense_act_kernels.cuh" in result.stdout  # the per-thread header compiles without CUDA
