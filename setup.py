"""Build entry: compiles ganforge._C (C++ always, CUDA when available) unless GANFORGE_NO_EXT=1.

- ``GANFORGE_NO_EXT=1``: install without compiling; the op falls back to pure PyTorch.
- ``GANFORGE_CUDA=1``: force a CUDAExtension (needs nvcc); by default CUDA is built when the
  installed torch has CUDA and nvcc is found.
Build with ``pip install --no-build-isolation -e .`` so the installed torch is used.
"""

from __future__ import annotations

import glob
import os
import shutil

from setuptools import setup


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def extensions() -> tuple[list, dict]:
    if _flag("GANFORGE_NO_EXT"):
        return [], {}
    import torch
    from torch.utils.cpp_extension import BuildExtension, CppExtension, CUDAExtension

    # dense_act.cpp and the baseline kernels first: the linker keeps the first copy of any inline
    # function, and that copy must not need AVX (the wider builds only add their own namespaces).
    # cuda_host_emulation.cpp runs the CUDA kernels' code on the CPU for the tests (any build).
    sources = ["csrc/dense_act.cpp", "csrc/cpu_kernels_default.cpp", "csrc/cpu_kernels_avx2.cpp",
               "csrc/cpu_kernels_avx512.cpp", "csrc/dense_act_cuda.cpp", "csrc/cuda_host_emulation.cpp"]
    # -g0: Python's own build flags ask for debug info, which made the module 15 MB instead of 0.8 MB.
    cxx = ["-O3", "-g0", "-fopenmp"]
    want_cuda = _flag("GANFORGE_CUDA") or (torch.version.cuda is not None and shutil.which("nvcc") is not None
                                            and os.environ.get("GANFORGE_CUDA", "") != "0")
    if want_cuda:
        ext = CUDAExtension("ganforge._C", sources + sorted(glob.glob("csrc/cuda/*.cu")),
                            extra_compile_args={"cxx": cxx + ["-DGANFORGE_WITH_CUDA"], "nvcc": ["-O3"]},
                            extra_link_args=["-fopenmp"])
    else:
        ext = CppExtension("ganforge._C", sources, extra_compile_args={"cxx": cxx}, extra_link_args=["-fopenmp"])
    return [ext], {"build_ext": BuildExtension.with_options(use_ninja=True)}


ext_modules, cmdclass = extensions()
setup(ext_modules=ext_modules, cmdclass=cmdclass)
