// The activation table of the compiled op: one ActTraits<A> per activation holds every formula the
// CPU kernels, the CUDA kernels and the C++ autograd use, and dispatch_act is the one place a
// runtime code becomes a compile-time Act. Codes must match ganforge/ops/activations.py.
//
// Every derivative is written in terms of the activation's OUTPUT y, which is why the op saves
// only x, W and y for backward (no pre-activation tensor).
//
// This header needs neither ATen nor CUDA: nvcc compiles it into the kernels and g++ into the CPU
// extension. The forms over at::vec::Vectorized (CPU kernels) and at::Tensor (autograd) are
// templates, so they are only compiled where those types exist.
#pragma once

#include <cmath>
#include <cstdint>
#include <type_traits>
#include <utility>

#if defined(__CUDACC__)
#define GANFORGE_HD __host__ __device__ __forceinline__
#else
#define GANFORGE_HD inline
#endif

namespace ganforge {

// Codes 0..kNumActs-1, contiguous: dispatch_act enumerates them.
enum class Act : int64_t { None = 0, Relu = 1, LeakyRelu = 2, Tanh = 3, Sigmoid = 4 };
constexpr int64_t kNumActs = 5;

// Per activation:
//   kName                     the name Python uses (ganforge/ops/activations.py)
//   kPiecewiseLinear          the CPU forward applies it in its bias pass; otherwise the CPU
//                             forward adds the bias, then calls forward_inplace (ATen's kernel)
//   forward(z, alpha)         act(z), scalar (CPU tails, CUDA)
//   grad_z(g, y, alpha)       g * act'(z) from y = act(z), scalar (CPU tails, CUDA)
//   grad_z_vec(g, y, alpha)   the same over at::vec::Vectorized (CPU kernels' main loop)
//   forward_vec(z, alpha)     act(z) over Vectorized, for the piecewise-linear ones
//   grad_z_tensor(g, y, a)    the same with differentiable ATen ops (double backward)
//   forward_inplace(y)        ATen's in-place kernel, for the others
template <Act A>
struct ActTraits;

template <>
struct ActTraits<Act::None> {
  static constexpr const char* kName = "none";
  static constexpr bool kPiecewiseLinear = true;
  template <typename T> GANFORGE_HD static T forward(T z, T) { return z; }
  template <typename T> GANFORGE_HD static T grad_z(T g, T, T) { return g; }
  template <typename V> static V forward_vec(V z, V) { return z; }
  template <typename V> static V grad_z_vec(V g, V, V) { return g; }
  template <typename Tensor> static Tensor grad_z_tensor(const Tensor& g, const Tensor&, double) { return g; }
};

template <>
struct ActTraits<Act::Relu> {
  static constexpr const char* kName = "relu";
  static constexpr bool kPiecewiseLinear = true;
  template <typename T> GANFORGE_HD static T forward(T z, T) { return z > T(0) ? z : T(0); }
  template <typename T> GANFORGE_HD static T grad_z(T g, T y, T) { return y > T(0) ? g : T(0); }
  // clamp_min and the compare are found by argument-dependent lookup in at::vec.
  template <typename V> static V forward_vec(V z, V) { return clamp_min(z, V(0)); }
  template <typename V> static V grad_z_vec(V g, V y, V) { return g & (y > V(0)); }  // the mask is all-ones where y > 0
  template <typename Tensor> static Tensor grad_z_tensor(const Tensor& g, const Tensor& y, double) {
    return g * (y > 0).to(y.scalar_type());
  }
};

template <>
struct ActTraits<Act::LeakyRelu> {
  static constexpr const char* kName = "leaky_relu";
  static constexpr bool kPiecewiseLinear = true;
  // y > 0 exactly where z > 0 (alpha > 0), so the output picks the slope.
  template <typename T> GANFORGE_HD static T forward(T z, T alpha) { return z > T(0) ? z : z * alpha; }
  template <typename T> GANFORGE_HD static T grad_z(T g, T y, T alpha) { return y > T(0) ? g : g * alpha; }
  template <typename V> static V forward_vec(V z, V alpha) { return V::blendv(z * alpha, z, z > V(0)); }
  template <typename V> static V grad_z_vec(V g, V y, V alpha) { return V::blendv(g * alpha, g, y > V(0)); }
  template <typename Tensor> static Tensor grad_z_tensor(const Tensor& g, const Tensor& y, double alpha) {
    return g.where(y > 0, g * alpha);
  }
};

template <>
struct ActTraits<Act::Tanh> {
  static constexpr const char* kName = "tanh";
  static constexpr bool kPiecewiseLinear = false;
  template <typename T> GANFORGE_HD static T forward(T z, T) {
    using std::tanh;  // float stays float on the host too (nvcc maps it to the device tanhf)
    return tanh(z);
  }
  // One expression for scalars and Vectorized (which broadcasts T(1)).
  template <typename T> GANFORGE_HD static T grad_z(T g, T y, T) { return g * (T(1) - y * y); }
  template <typename V> static V grad_z_vec(V g, V y, V alpha) { return grad_z(g, y, alpha); }
  template <typename Tensor> static Tensor grad_z_tensor(const Tensor& g, const Tensor& y, double) {
    return g * (1 - y * y);
  }
  // ATen's in-place kernel (MKL VML where available) measured 6x faster than a SLEEF loop here.
  template <typename Tensor> static void forward_inplace(const Tensor& y) { y.tanh_(); }
};

template <>
struct ActTraits<Act::Sigmoid> {
  static constexpr const char* kName = "sigmoid";
  static constexpr bool kPiecewiseLinear = false;
  template <typename T> GANFORGE_HD static T forward(T z, T) {
    using std::exp;
    return T(1) / (T(1) + exp(-z));
  }
  template <typename T> GANFORGE_HD static T grad_z(T g, T y, T) { return g * (y * (T(1) - y)); }
  template <typename V> static V grad_z_vec(V g, V y, V alpha) { return grad_z(g, y, alpha); }
  template <typename Tensor> static Tensor grad_z_tensor(const Tensor& g, const Tensor& y, double) {
    return g * (y * (1 - y));
  }
  template <typename Tensor> static void forward_inplace(const Tensor& y) { y.sigmoid_(); }
};

// The compile-time Act handed to dispatch_act's callback: `ActTraits<decltype(a)::value>`.
template <Act A>
using ActConstant = std::integral_constant<Act, A>;

namespace detail {
template <std::size_t I, typename F>
bool call_if(int64_t code, F& f) {
  if (code != static_cast<int64_t>(I)) return false;
  f(ActConstant<static_cast<Act>(I)>{});
  return true;
}

template <typename F, std::size_t... I>
bool dispatch_act(int64_t code, F& f, std::index_sequence<I...>) {
  return (call_if<I>(code, f) || ...);
}
}  // namespace detail

// Calls f(ActConstant<A>{}) for the activation whose code is `code` and returns true; returns
// false, calling nothing, for an unknown code. Every switch over activation codes goes through
// here, so a new activation only needs its enum value, its ActTraits and kNumActs.
template <typename F>
bool dispatch_act(int64_t code, F&& f) {
  return detail::dispatch_act(code, f, std::make_index_sequence<static_cast<std::size_t>(kNumActs)>{});
}

// The name of an activation code ("unknown" for any other), for messages and for the Python side
// to check that its table has the same codes.
inline const char* act_name(int64_t code) {
  const char* name = "unknown";
  dispatch_act(code, [&](auto a) { name = ActTraits<decltype(a)::value>::kName; });
  return name;
}

}  // namespace ganforge
