// The per-thread work of the CUDA epilogue kernels, as __host__ __device__ functions: the
// __global__ kernels in dense_act_kernels.cu only turn blockIdx/threadIdx into arguments and call
// these, and csrc/cuda_host_emulation.cpp calls the same functions from host loops over the same
// grid, so the kernels' code is tested on machines without a GPU. No CUDA headers: g++ compiles
// this too. The half / bfloat16 conversions live in the .cu (specialisations of Convert).
//
// Forward: a grid-stride elementwise pass y = act(y + b) over the GEMM's output.
// Backward: blocks own kCols columns; kRowGroups row-groups of threads each walk their rows in
// order, and the partial sums are combined in a fixed order through shared memory, so the bias
// gradient is bitwise reproducible.
#pragma once

#include <cstdint>

#include "../activations.h"

namespace ganforge::cuda {

// Compute type: double stays double (for gradcheck), everything else computes in float. alpha
// arrives in it too, so a float64 leaky_relu uses the very slope the autograd's formulas use.
template <typename T> struct Acc { using type = float; };
template <> struct Acc<double> { using type = double; };
template <typename T> using AccT = typename Acc<T>::type;

// Storage <-> compute type. The .cu specialises it for __half and __nv_bfloat16.
template <typename T>
struct Convert {
  using C = typename Acc<T>::type;
  GANFORGE_HD static C load(T v) { return static_cast<C>(v); }
  GANFORGE_HD static T store(C v) { return static_cast<T>(v); }
};

// ---------------------------------------------------------------------------------------------
// Launch shapes, shared by the launchers and the host emulation
// ---------------------------------------------------------------------------------------------

constexpr int kBiasActThreads = 256;
constexpr int64_t kBiasActMaxBlocks = 65535;  // beyond this the grid-stride loop takes over
constexpr int kCols = 32;                     // columns per block: one warp reads 32 consecutive elements of a row
constexpr int kRowGroups = 8;                 // threads per column, each summing every 8th row

// Blocks of the forward launch for n elements; 0 means there is nothing to launch.
inline int64_t bias_act_blocks(int64_t n) {
  const int64_t blocks = (n + kBiasActThreads - 1) / kBiasActThreads;
  return blocks < kBiasActMaxBlocks ? blocks : kBiasActMaxBlocks;
}

// Blocks of the backward launch (block shape kCols x kRowGroups); 0 means nothing to launch.
inline int64_t grad_z_blocks(int64_t cols) { return (cols + kCols - 1) / kCols; }

// ---------------------------------------------------------------------------------------------
// Forward: y (rows x cols, contiguous) = act(y + b) in place; b may be null
// ---------------------------------------------------------------------------------------------

template <Act A, typename T>
GANFORGE_HD void bias_act_element(T* __restrict__ y, const T* __restrict__ b, int64_t i, int64_t cols,
                                  AccT<T> alpha) {
  AccT<T> z = Convert<T>::load(y[i]);
  if (b != nullptr) z += Convert<T>::load(b[i % cols]);
  y[i] = Convert<T>::store(ActTraits<A>::forward(z, alpha));
}

// Thread `thread` of block `block` (1-D grid of grid_dim blocks of block_dim threads): elements
// i, i + stride, ... of the grid-stride loop, i being the thread's global index.
template <Act A, typename T>
GANFORGE_HD void bias_act_thread(T* __restrict__ y, const T* __restrict__ b, int64_t rows, int64_t cols,
                                 AccT<T> alpha, unsigned grid_dim, unsigned block_dim, unsigned block,
                                 unsigned thread) {
  const int64_t n = rows * cols;
  const int64_t stride = static_cast<int64_t>(grid_dim) * block_dim;
  for (int64_t i = block * static_cast<int64_t>(block_dim) + thread; i < n; i += stride)
    bias_act_element<A>(y, b, i, cols, alpha);
}

// ---------------------------------------------------------------------------------------------
// Backward: gz = gy * act'(y) and gb = column sums of gz (all rows x cols, contiguous)
// ---------------------------------------------------------------------------------------------

// The column of thread `lane` of block `block`.
GANFORGE_HD int64_t grad_z_column(unsigned block, unsigned lane) { return static_cast<int64_t>(block) * kCols + lane; }

// Thread (lane, group) before the barrier: gz on rows group, group + kRowGroups, ... of its column,
// in row order; returns their sum (0 past the last column). gz may alias y (in-place backward):
// each element is read before it is written, by the same thread, hence no __restrict__ on them.
template <Act A, typename T>
GANFORGE_HD AccT<T> grad_z_partial(const T* __restrict__ gy, const T* y, T* gz, int64_t rows, int64_t cols,
                                   int64_t column, unsigned group, AccT<T> alpha) {
  AccT<T> sum = 0;
  if (column < cols) {
    for (int64_t r = group; r < rows; r += kRowGroups) {
      const int64_t i = r * cols + column;
      const AccT<T> d = ActTraits<A>::grad_z(Convert<T>::load(gy[i]), Convert<T>::load(y[i]), alpha);
      gz[i] = Convert<T>::store(d);
      sum += d;
    }
  }
  return sum;
}

// The block's partial sums, partial[group][lane], in shared memory on the GPU.
template <typename T>
using GradZPartials = AccT<T>[kRowGroups][kCols];

// Thread (lane, 0) after the barrier: the column's total, groups added in a fixed order.
template <typename T>
GANFORGE_HD void grad_z_combine(const GradZPartials<T>& partial, unsigned lane, int64_t column, int64_t cols,
                                T* __restrict__ gb) {
  if (column >= cols) return;
  AccT<T> total = 0;
  for (int g = 0; g < kRowGroups; ++g) total += partial[g][lane];
  gb[column] = Convert<T>::store(total);
}

}  // namespace ganforge::cuda
