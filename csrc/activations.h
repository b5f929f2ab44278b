// The activation table of the compiled op. Codes must match ganforge/ops/activations.py.
// Every derivative is written in terms of the activation's OUTPUT y, which is why the op saves
// only x, W and y for backward (no pre-activation tensor).
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define GANFORGE_HD __host__ __device__ __forceinline__
#else
#define GANFORGE_HD inline
#endif

namespace ganforge {

enum class Act : int64_t { None = 0, Relu = 1, LeakyRelu = 2, Tanh = 3, Sigmoid = 4 };
constexpr int64_t kNumActs = 5;

inline const char* act_name(int64_t code) {
  switch (code) {
    case 0: return "none";
    case 1: return "relu";
    case 2: return "leaky_relu";
    case 3: return "tanh";
    case 4: return "sigmoid";
    default: return "unknown";
  }
}

// d act / d z from y = act(z). Plain arithmetic: compilers vectorise it; usable on host and device.
template <Act A, typename T>
GANFORGE_HD T grad_from_output(T y, T alpha) {
  if constexpr (A == Act::None) return T(1);
  if constexpr (A == Act::Relu) return y > T(0) ? T(1) : T(0);
  if constexpr (A == Act::LeakyRelu) return y > T(0) ? T(1) : alpha;
  if constexpr (A == Act::Tanh) return T(1) - y * y;
  if constexpr (A == Act::Sigmoid) return y * (T(1) - y);
  return T(1);
}

}  // namespace ganforge
