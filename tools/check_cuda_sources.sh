#!/usr/bin/env bash
# Compile the CUDA sources without a GPU, so an error in CUDA code is caught on any machine with
# nvcc: the kernels with nvcc -c for each architecture in ARCHS (CUDA headers only; ptxas runs, so
# device code is fully compiled), their per-thread header with g++ alone (the host emulation in
# the CPU extension compiles it without CUDA), and the torch glue with g++ -fsyntax-only.
# The CPU torch wheel lacks one generated header (c10/cuda/impl/cuda_cmake_macros.h); a stub
# stands in for it. Exits 0 with a message when nvcc is absent.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
NVCC=${NVCC:-$(command -v nvcc || true)}
if [ -z "$NVCC" ]; then echo "nvcc not found: CUDA sources not compiled"; exit 0; fi
ARCHS=${ARCHS:-"80 90"}  # Ampere (A100) and Hopper (H100/H200)
gencode=()
for arch in $ARCHS; do gencode+=(-gencode "arch=compute_$arch,code=sm_$arch"); done
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
for cu in csrc/cuda/*.cu; do
  "$NVCC" -std=c++17 -O2 -Werror all-warnings "${gencode[@]}" -Icsrc -c "$cu" -o "$tmp/$(basename "$cu").o"
done
for cuh in csrc/cuda/*.cuh; do
  echo "#include \"$PWD/$cuh\"" | g++ -std=c++17 -Wall -Wextra -Werror -fsyntax-only -x c++ -
done
cuda_home=$(dirname "$(dirname "$(readlink -f "$NVCC")")")
[ -d "$cuda_home/include" ] || cuda_home=/usr/local/cuda
mkdir -p "$tmp/stub/c10/cuda/impl"
printf '#pragma once\n#define C10_CUDA_BUILD_SHARED_LIBS\n' > "$tmp/stub/c10/cuda/impl/cuda_cmake_macros.h"
incs=$("$PY" -c "import sysconfig, torch.utils.cpp_extension as c; print(' '.join('-I'+p for p in c.include_paths()), '-I'+sysconfig.get_paths()['include'])")
g++ -std=c++20 -fsyntax-only -DGANFORGE_WITH_CUDA $incs -I"$tmp/stub" -I"$cuda_home/include" -I/usr/local/cuda/include csrc/dense_act_cuda.cpp
echo "CUDA sources compile (sm_${ARCHS// /, sm_}): $(ls csrc/cuda/*.cu csrc/cuda/*.cuh | tr '\n' ' ')csrc/dense_act_cuda.cpp"
