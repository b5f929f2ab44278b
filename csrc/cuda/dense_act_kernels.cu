// CUDA epilogue kernels of dense_act. CUDA headers only: nvcc compiles this file without torch
// and without a GPU, which is how CI checks it on machines that have no GPU.
//
// The kernels are thin: they turn blockIdx / threadIdx into arguments of the per-thread functions
// in dense_act_kernels.cuh (shared with the host emulation that tests them without a GPU) and
// hold the one piece of real GPU state, the shared-memory partial sums of the backward.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "dense_act_kernels.cuh"
#include "dense_act_kernels.h"

namespace ganforge::cuda {

// The reduced-precision storage types compute in float.
template <>
struct Convert<__half> {
  GANFORGE_HD static float load(__half v) { return __half2float(v); }
  GANFORGE_HD static __half store(float v) { return __float2half(v); }
};
template <>
struct Convert<__nv_bfloat16> {
  GANFORGE_HD static float load(__nv_bfloat16 v) { return __bfloat162float(v); }
  GANFORGE_HD static __nv_bfloat16 store(float v) { return __float2bfloat16(v); }
};

namespace {

template <typename T, Act A>
__global__ void bias_act_kernel(T* __restrict__ y, const T* __restrict__ b, int64_t rows, int64_t cols, AccT<T> alpha) {
  bias_act_thread<A>(y, b, rows, cols, alpha, gridDim.x, blockDim.x, blockIdx.x, threadIdx.x);
}

// Block shape (kCols, kRowGroups): threadIdx.x is the lane (column), threadIdx.y the row-group.
template <typename T, Act A>
__global__ void grad_z_kernel(const T* __restrict__ gy, const T* y, T* gz, T* __restrict__ gb, int64_t rows,
                              int64_t cols, AccT<T> alpha) {  // gz may alias y (in-place backward): no restrict
  __shared__ GradZPartials<T> partial;
  const int64_t column = grad_z_column(blockIdx.x, threadIdx.x);
  partial[threadIdx.y][threadIdx.x] = grad_z_partial<A>(gy, y, gz, rows, cols, column, threadIdx.y, alpha);
  __syncthreads();
  if (threadIdx.y == 0) grad_z_combine<T>(partial, threadIdx.x, column, cols, gb);
}

template <typename T>
cudaError_t bias_act(T* y, const T* b, int64_t rows, int64_t cols, int64_t act, double alpha, cudaStream_t s) {
  const int64_t blocks = bias_act_blocks(rows * cols);
  if (blocks == 0) return cudaSuccess;
  const bool known = dispatch_act(act, [&](auto a) {
    bias_act_kernel<T, decltype(a)::value>
        <<<static_cast<unsigned>(blocks), kBiasActThreads, 0, s>>>(y, b, rows, cols, static_cast<AccT<T>>(alpha));
  });
  return known ? cudaGetLastError() : cudaErrorInvalidValue;
}

template <typename T>
cudaError_t grad_z(const T* gy, const T* y, T* gz, T* gb, int64_t rows, int64_t cols, int64_t act, double alpha,
                   cudaStream_t s) {
  const int64_t blocks = grad_z_blocks(cols);
  if (blocks == 0) return cudaSuccess;
  const dim3 threads(kCols, kRowGroups);
  const bool known = dispatch_act(act, [&](auto a) {
    grad_z_kernel<T, decltype(a)::value>
        <<<static_cast<unsigned>(blocks), threads, 0, s>>>(gy, y, gz, gb, rows, cols, static_cast<AccT<T>>(alpha));
  });
  return known ? cudaGetLastError() : cudaErrorInvalidValue;
}

}  // namespace

cudaError_t launch_bias_act(DType dtype, void* y, const void* b, int64_t rows, int64_t cols, int64_t act,
                            double alpha, cudaStream_t stream) {
  switch (dtype) {
    case DType::Float32: return bias_act(static_cast<float*>(y), static_cast<const float*>(b), rows, cols, act, alpha, stream);
    case DType::Float64: return bias_act(static_cast<double*>(y), static_cast<const double*>(b), rows, cols, act, alpha, stream);
    case DType::Float16: return bias_act(static_cast<__half*>(y), static_cast<const __half*>(b), rows, cols, act, alpha, stream);
    case DType::BFloat16:
      return bias_act(static_cast<__nv_bfloat16*>(y), static_cast<const __nv_bfloat16*>(b), rows, cols, act, alpha, stream);
  }
  return cudaErrorInvalidValue;
}

cudaError_t launch_grad_z(DType dtype, const void* gy, const void* y, void* gz, void* gb, int64_t rows, int64_t cols,
                          int64_t act, double alpha, cudaStream_t stream) {
  switch (dtype) {
    case DType::Float32:
      return grad_z(static_cast<const float*>(gy), static_cast<const float*>(y), static_cast<float*>(gz),
                    static_cast<float*>(gb), rows, cols, act, alpha, stream);
    case DType::Float64:
      return grad_z(static_cast<const double*>(gy), static_cast<const double*>(y), static_cast<double*>(gz),
                    static_cast<double*>(gb), rows, cols, act, alpha, stream);
    case DType::Float16:
      return grad_z(static_cast<const __half*>(gy), static_cast<const __half*>(y), static_cast<__half*>(gz),
                    static_cast<__half*>(gb), rows, cols, act, alpha, stream);
    case DType::BFloat16:
      return grad_z(static_cast<const __nv_bfloat16*>(gy), static_cast<const __nv_bfloat16*>(y),
                    static_cast<__nv_bfloat16*>(gz), static_cast<__nv_bfloat16*>(gb), rows, cols, act, alpha, stream);
  }
  return cudaErrorInvalidValue;
}

}  // namespace ganforge::cuda
