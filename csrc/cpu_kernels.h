// The CPU epilogue kernels, compiled once per instruction set (cpu_kernels_*.cpp) so ATen's
// Vectorized uses real AVX2 / AVX-512 registers, and chosen at run time by what the CPU supports
// (the same scheme as ATen's own DispatchStub).
#pragma once

#include <cstdint>

#include <c10/util/BFloat16.h>

namespace ganforge {

// y (rows x cols, row-major) = act(y + b) in place, in one pass, for the piecewise-linear acts
// (none / relu / leaky_relu); for tanh and sigmoid the pass adds only the bias and the caller then
// runs ATen's in-place kernel (ActTraits::forward_inplace). b may be null; scalar is float or double.
template <typename scalar_t>
using BiasActFn = void (*)(scalar_t* y, const scalar_t* b, int64_t rows, int64_t cols, int64_t act, scalar_t alpha);

// gz = gy * act'(y) and gb = column sums of gz, in one pass; gb is deterministic.
// The bfloat16 builds (bias_act_bf16, grad_z_bf16) compute in float32 (alpha, the bias-gradient
// sums) and round each stored value once.
template <typename scalar_t>
using GradZFn = void (*)(const scalar_t* gy, const scalar_t* y, scalar_t* gz, scalar_t* gb, int64_t rows,
                         int64_t cols, int64_t act, scalar_t alpha);

#define GANFORGE_DECLARE_KERNELS(ns)                                                                   \
  namespace ns {                                                                                       \
  void bias_act_f32(float*, const float*, int64_t, int64_t, int64_t, float);                          \
  void bias_act_f64(double*, const double*, int64_t, int64_t, int64_t, double);                       \
  void grad_z_f32(const float*, const float*, float*, float*, int64_t, int64_t, int64_t, float);      \
  void grad_z_f64(const double*, const double*, double*, double*, int64_t, int64_t, int64_t, double); \
  void bias_act_bf16(c10::BFloat16*, const c10::BFloat16*, int64_t, int64_t, int64_t, float);          \
  void grad_z_bf16(const c10::BFloat16*, const c10::BFloat16*, c10::BFloat16*, c10::BFloat16*, int64_t,  \
                   int64_t, int64_t, float);                                                           \
  }

GANFORGE_DECLARE_KERNELS(cpu_default)
GANFORGE_DECLARE_KERNELS(cpu_avx2)
GANFORGE_DECLARE_KERNELS(cpu_avx512)

}  // namespace ganforge
