// Argument checks of the dense_act ops, shared by the CPU glue, the CUDA glue and the CUDA host
// emulation, so every backend rejects the same calls with the same messages. Every message names
// the op, the argument and what was expected. The fake (meta) implementations in
// ganforge/ops/dense_act.py mirror these checks for torch.compile.
#pragma once

#include <optional>
#include <string>

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include "activations.h"

namespace ganforge {

// "0..4 (none, relu, leaky_relu, tanh, sigmoid)", from the table itself.
inline std::string act_choices() {
  std::string names;
  for (int64_t code = 0; code < kNumActs; ++code) names += std::string(code ? ", " : "") + act_name(code);
  return "0.." + std::to_string(kNumActs - 1) + " (" + names + ")";
}

inline void check_act(int64_t act, const char* op) {
  TORCH_CHECK(act >= 0 && act < kNumActs, op, ": unknown activation code ", act, "; expected ", act_choices());
}

inline void check_same_dtype_and_device(const at::Tensor& a, const char* a_name, const at::Tensor& b,
                                        const char* b_name, const char* op) {
  TORCH_CHECK(a.scalar_type() == b.scalar_type(), op, ": dtype mismatch: ", a_name, " is ", a.scalar_type(), " but ",
              b_name, " is ", b.scalar_type());
  TORCH_CHECK(a.device() == b.device(), op, ": device mismatch: ", a_name, " is on ", a.device(), " but ", b_name,
              " is on ", b.device());
}

// dense_act(x, weight, bias, act, alpha)
inline void check_inputs(const at::Tensor& x, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                         int64_t act) {
  constexpr const char* op = "dense_act";
  check_act(act, op);
  TORCH_CHECK(x.dim() == 2, op, ": expected x of rank 2 (batch, in_features), got rank ", x.dim(), " with shape ",
              x.sizes());
  TORCH_CHECK(weight.dim() == 2, op, ": expected weight of rank 2 (out_features, in_features), got shape ",
              weight.sizes());
  TORCH_CHECK(x.size(1) == weight.size(1), op, ": x has ", x.size(1), " in_features but weight expects ",
              weight.size(1), " (weight shape ", weight.sizes(), ")");
  check_same_dtype_and_device(x, "x", weight, "weight", op);
  TORCH_CHECK(at::isFloatingType(x.scalar_type()), op, ": expected a floating-point dtype, got ", x.scalar_type());
  if (bias.has_value() && bias->defined()) {
    TORCH_CHECK(bias->dim() == 1 && bias->size(0) == weight.size(0), op, ": expected bias of shape (", weight.size(0),
                ",) to match weight's out_features, got shape ", bias->sizes());
    check_same_dtype_and_device(x, "x", *bias, "bias", op);
  }
}

// dense_act_grad_z(grad, y, act, alpha) and its in-place form dense_act_grad_z_ (op names the one called).
inline void check_grad_z_args(const at::Tensor& grad, const at::Tensor& y, int64_t act, const char* op) {
  check_act(act, op);
  TORCH_CHECK(y.dim() == 2, op, ": expected the output y of rank 2, got shape ", y.sizes());
  TORCH_CHECK(grad.sizes() == y.sizes(), op, ": expected grad of shape ", y.sizes(), " like the output, got ",
              grad.sizes());
  check_same_dtype_and_device(grad, "grad", y, "output", op);
}

// The in-place form writes dZ over y through a raw pointer: y must be one dense block.
inline void check_overwritable(const at::Tensor& y, const char* op) {
  TORCH_CHECK(y.is_contiguous(), op, ": expected a contiguous y to overwrite");
}

}  // namespace ganforge
