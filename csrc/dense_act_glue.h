// The tensor side of the dense_act ops, written once for every backend: argument checks, the GEMM,
// what is made contiguous, what is allocated. A backend only supplies the epilogue kernels. The CPU
// and CUDA ops use it, and so does the CUDA host emulation, which is how a machine without a GPU
// tests the exact path a CUDA call takes from tensors to kernel arguments.
//
// An Epilogue is a struct with:
//   Guard                          constructed from the inputs' device around allocation and launch
//   check_dtype(t, op)             rejects dtypes the kernels lack
//   bias_act(y, b, act, alpha)     y = act(y + b) in place; y contiguous, b contiguous or undefined
//   grad_z(g, y, gz, gb, act, a)   gz = g * act'(y), gb = column sums of gz; all contiguous, gz may be y
#pragma once

#include <optional>
#include <tuple>

#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <ATen/ops/mm.h>

#include "checks.h"

namespace ganforge {

template <typename Epilogue>
at::Tensor dense_act_with(const at::Tensor& x, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                          int64_t act, double alpha) {
  check_inputs(x, weight, bias, act);
  Epilogue::check_dtype(x, "dense_act");
  const typename Epilogue::Guard guard(x.device());
  at::Tensor y = at::mm(x, weight.t());  // contiguous (batch, out_features)
  const bool has_bias = bias.has_value() && bias->defined();
  const at::Tensor b = has_bias ? bias->contiguous() : at::Tensor();
  Epilogue::bias_act(y, b, act, alpha);
  return y;
}

template <typename Epilogue>
std::tuple<at::Tensor, at::Tensor> dense_act_grad_z_with(const at::Tensor& grad, const at::Tensor& y, int64_t act,
                                                         double alpha) {
  constexpr const char* op = "dense_act_grad_z";
  check_grad_z_args(grad, y, act, op);
  Epilogue::check_dtype(y, op);
  const typename Epilogue::Guard guard(y.device());
  const at::Tensor g = grad.contiguous(), yc = y.contiguous();
  at::Tensor gz = at::empty_like(yc, at::MemoryFormat::Contiguous);
  at::Tensor gb = at::empty({y.size(1)}, y.options());
  Epilogue::grad_z(g, yc, gz, gb, act, alpha);
  return {gz, gb};
}

// y becomes dZ (the kernels read each element before writing it); returns the bias gradient.
template <typename Epilogue>
at::Tensor dense_act_grad_z_inplace_with(const at::Tensor& grad, const at::Tensor& y, int64_t act, double alpha) {
  constexpr const char* op = "dense_act_grad_z_";
  check_grad_z_args(grad, y, act, op);
  check_overwritable(y, op);
  Epilogue::check_dtype(y, op);
  const typename Epilogue::Guard guard(y.device());
  const at::Tensor g = grad.contiguous();
  at::Tensor gb = at::empty({y.size(1)}, y.options());
  Epilogue::grad_z(g, y, y, gb, act, alpha);
  return gb;
}

}  // namespace ganforge
