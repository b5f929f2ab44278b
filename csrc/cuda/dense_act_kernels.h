// Launchers for the CUDA epilogue kernels. Plain C++ types only, so the torch glue
// (csrc/dense_act_cuda.cpp) and the kernels (dense_act_kernels.cu, CUDA headers only) meet here.
#pragma once

#include <cstdint>

#include <cuda_runtime_api.h>

namespace ganforge::cuda {

enum class DType : int { Float32 = 0, Float64 = 1, Float16 = 2, BFloat16 = 3 };

// y (rows x cols, row-major, contiguous) = act(y + b) in place; b may be null. alpha is rounded to
// the kernel's compute type (float, or double for float64).
cudaError_t launch_bias_act(DType dtype, void* y, const void* b, int64_t rows, int64_t cols, int64_t act,
                            double alpha, cudaStream_t stream);

// gz = gy * act'(y) (all rows x cols, contiguous) and gb[c] = sum over rows of gz[:, c], in one
// kernel; the sum runs in a fixed order (float accumulation), so it is deterministic. gz may be y
// (in place): each element is read before it is written, by the same thread.
cudaError_t launch_grad_z(DType dtype, const void* gy, const void* y, void* gz, void* gb, int64_t rows,
                          int64_t cols, int64_t act, double alpha, cudaStream_t stream);

}  // namespace ganforge::cuda
