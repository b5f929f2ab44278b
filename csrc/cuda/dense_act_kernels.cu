// CUDA epilogue kernels of dense_act. CUDA headers only: nvcc compiles this file without torch
// and without a GPU, which is how CI checks it on machines that have no GPU.
//
// Forward: one elementwise pass y = act(y + b) over the GEMM's output (cuBLAS does the GEMM).
// Backward: one kernel computes gz = gy * act'(y) and the bias gradient. Blocks own 32 columns;
// 8 row-groups of threads each walk their rows in order and the 8 partial sums are combined in a
// fixed order through shared memory, so the bias gradient is bitwise reproducible.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "../activations.h"
#include "dense_act_kernels.h"

namespace ganforge::cuda {
namespace {

// Compute type: double stays double (for gradcheck), everything else computes in float.
template <typename T> struct Acc { using type = float; };
template <> struct Acc<double> { using type = double; };

template <typename C, typename T> __device__ __forceinline__ C load(T v) { return static_cast<C>(v); }
template <> __device__ __forceinline__ float load<float, __half>(__half v) { return __half2float(v); }
template <> __device__ __forceinline__ float load<float, __nv_bfloat16>(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename T, typename C> __device__ __forceinline__ T store(C v) { return static_cast<T>(v); }
template <> __device__ __forceinline__ __half store<__half, float>(float v) { return __float2half(v); }
template <> __device__ __forceinline__ __nv_bfloat16 store<__nv_bfloat16, float>(float v) { return __float2bfloat16(v); }

template <Act A, typename C>
__device__ __forceinline__ C activate(C z, C alpha) {
  if constexpr (A == Act::Relu) return z > C(0) ? z : C(0);
  if constexpr (A == Act::LeakyRelu) return z > C(0) ? z : z * alpha;
  if constexpr (A == Act::Tanh) return tanh(z);
  if constexpr (A == Act::Sigmoid) return C(1) / (C(1) + exp(-z));
  return z;
}

template <typename T, Act A>
__global__ void bias_act_kernel(T* __restrict__ y, const T* __restrict__ b, int64_t rows, int64_t cols, float alpha) {
  using C = typename Acc<T>::type;
  const int64_t n = rows * cols;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n; i += stride) {
    C z = load<C>(y[i]);
    if (b != nullptr) z += load<C>(b[i % cols]);
    y[i] = store<T>(activate<A, C>(z, static_cast<C>(alpha)));
  }
}

constexpr int kCols = 32;      // columns per block: one warp reads 32 consecutive elements of a row
constexpr int kRowGroups = 8;  // threads per column, each summing every 8th row

template <typename T, Act A>
__global__ void grad_z_kernel(const T* __restrict__ gy, const T* y, T* gz, T* __restrict__ gb, int64_t rows,
                              int64_t cols, float alpha) {  // gz may alias y (in-place backward): no restrict
  using C = typename Acc<T>::type;
  __shared__ C partial[kRowGroups][kCols];
  const int64_t c = static_cast<int64_t>(blockIdx.x) * kCols + threadIdx.x;
  C sum = C(0);
  if (c < cols) {
    for (int64_t r = threadIdx.y; r < rows; r += kRowGroups) {
      const int64_t i = r * cols + c;
      const C d = load<C>(gy[i]) * grad_from_output<A, C>(load<C>(y[i]), static_cast<C>(alpha));
      gz[i] = store<T>(d);
      sum += d;
    }
  }
  partial[threadIdx.y][threadIdx.x] = sum;
  __syncthreads();
  if (threadIdx.y == 0 && c < cols) {
    C total = C(0);
    for (int g = 0; g < kRowGroups; ++g) total += partial[g][threadIdx.x];  // fixed order
    gb[c] = store<T>(total);
  }
}

template <typename T>
cudaError_t bias_act(T* y, const T* b, int64_t rows, int64_t cols, int64_t act, float alpha, cudaStream_t s) {
  const int64_t n = rows * cols;
  if (n == 0) return cudaSuccess;
  const int threads = 256;
  const int blocks = static_cast<int>(std::min<int64_t>((n + threads - 1) / threads, 65535));
  switch (static_cast<Act>(act)) {
    case Act::None: bias_act_kernel<T, Act::None><<<blocks, threads, 0, s>>>(y, b, rows, cols, alpha); break;
    case Act::Relu: bias_act_kernel<T, Act::Relu><<<blocks, threads, 0, s>>>(y, b, rows, cols, alpha); break;
    case Act::LeakyRelu: bias_act_kernel<T, Act::LeakyRelu><<<blocks, threads, 0, s>>>(y, b, rows, cols, alpha); break;
    case Act::Tanh: bias_act_kernel<T, Act::Tanh><<<blocks, threads, 0, s>>>(y, b, rows, cols, alpha); break;
    case Act::Sigmoid: bias_act_kernel<T, Act::Sigmoid><<<blocks, threads, 0, s>>>(y, b, rows, cols, alpha); break;
    default: return cudaErrorInvalidValue;
  }
  return cudaGetLastError();
}

template <typename T>
cudaError_t grad_z(const T* gy, const T* y, T* gz, T* gb, int64_t rows, int64_t cols, int64_t act, float alpha,
                   cudaStream_t s) {
  if (cols == 0) return cudaSuccess;
  const dim3 threads(kCols, kRowGroups);
  const dim3 blocks(static_cast<unsigned>((cols + kCols - 1) / kCols));
  switch (static_cast<Act>(act)) {
    case Act::None: grad_z_kernel<T, Act::None><<<blocks, threads, 0, s>>>(gy, y, gz, gb, rows, cols, alpha); break;
    case Act::Relu: grad_z_kernel<T, Act::Relu><<<blocks, threads, 0, s>>>(gy, y, gz, gb, rows, cols, alpha); break;
    case Act::LeakyRelu: grad_z_kernel<T, Act::LeakyRelu><<<blocks, threads, 0, s>>>(gy, y, gz, gb, rows, cols, alpha); break;
    case Act::Tanh: grad_z_kernel<T, Act::Tanh><<<blocks, threads, 0, s>>>(gy, y, gz, gb, rows, cols, alpha); break;
    case Act::Sigmoid: grad_z_kernel<T, Act::Sigmoid><<<blocks, threads, 0, s>>>(gy, y, gz, gb, rows, cols, alpha); break;
    default: return cudaErrorInvalidValue;
  }
  return cudaGetLastError();
}

}  // namespace

cudaError_t launch_bias_act(DType dtype, void* y, const void* b, int64_t rows, int64_t cols, int64_t act,
                            float alpha, cudaStream_t stream) {
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
                          int64_t act, float alpha, cudaStream_t stream) {
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
