// CUDA glue of dense_act: cuBLAS GEMM through ATen, then the epilogue kernels in
// cuda/dense_act_kernels.cu. Compiled only into the CUDAExtension (GANFORGE_WITH_CUDA).
#ifdef GANFORGE_WITH_CUDA

#include <ATen/ATen.h>
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "cuda/dense_act_kernels.h"

namespace ganforge {

void check_inputs(const at::Tensor& x, const at::Tensor& weight, const std::optional<at::Tensor>& bias, int64_t act);
void check_act(int64_t act);

namespace {

cuda::DType cuda_dtype(const at::Tensor& t) {
  switch (t.scalar_type()) {
    case at::kFloat: return cuda::DType::Float32;
    case at::kDouble: return cuda::DType::Float64;
    case at::kHalf: return cuda::DType::Float16;
    case at::kBFloat16: return cuda::DType::BFloat16;
    default:
      TORCH_CHECK(false, "dense_act: the CUDA kernel supports float32, float64, float16 and bfloat16, got ",
                  t.scalar_type());
  }
}

void check_launch(cudaError_t err, const char* what) {
  TORCH_CHECK(err == cudaSuccess, what, ": CUDA kernel launch failed: ", cudaGetErrorString(err));
}

at::Tensor dense_act_cuda(const at::Tensor& x, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                          int64_t act, double alpha) {
  check_inputs(x, weight, bias, act);
  const c10::cuda::CUDAGuard guard(x.device());
  const auto dtype = cuda_dtype(x);
  at::Tensor y = at::mm(x, weight.t());
  const bool has_bias = bias.has_value() && bias->defined();
  const at::Tensor b = has_bias ? bias->contiguous() : at::Tensor();
  check_launch(cuda::launch_bias_act(dtype, y.data_ptr(), has_bias ? b.data_ptr() : nullptr, y.size(0), y.size(1),
                                     act, static_cast<float>(alpha), c10::cuda::getCurrentCUDAStream()),
               "dense_act");
  return y;
}

std::tuple<at::Tensor, at::Tensor> dense_act_grad_z_cuda(const at::Tensor& grad, const at::Tensor& y, int64_t act,
                                                         double alpha) {
  check_act(act);
  TORCH_CHECK(grad.sizes() == y.sizes() && y.dim() == 2, "dense_act_grad_z: expected grad of shape ", y.sizes(),
              " like the output, got ", grad.sizes());
  TORCH_CHECK(grad.scalar_type() == y.scalar_type(), "dense_act_grad_z: dtype mismatch: grad is ",
              grad.scalar_type(), " but output is ", y.scalar_type());
  const c10::cuda::CUDAGuard guard(y.device());
  const at::Tensor g = grad.contiguous(), yc = y.contiguous();
  at::Tensor gz = at::empty_like(yc, at::MemoryFormat::Contiguous);
  at::Tensor gb = at::empty({y.size(1)}, y.options());
  check_launch(cuda::launch_grad_z(cuda_dtype(y), g.data_ptr(), yc.data_ptr(), gz.data_ptr(), gb.data_ptr(),
                                   yc.size(0), yc.size(1), act, static_cast<float>(alpha),
                                   c10::cuda::getCurrentCUDAStream()),
               "dense_act_grad_z");
  return {gz, gb};
}

at::Tensor dense_act_grad_z_inplace_cuda(const at::Tensor& grad, const at::Tensor& y, int64_t act, double alpha) {
  check_act(act);
  TORCH_CHECK(grad.sizes() == y.sizes() && y.dim() == 2, "dense_act_grad_z_: expected grad of shape ", y.sizes(),
              " like the output, got ", grad.sizes());
  TORCH_CHECK(grad.scalar_type() == y.scalar_type(), "dense_act_grad_z_: dtype mismatch: grad is ",
              grad.scalar_type(), " but output is ", y.scalar_type());
  TORCH_CHECK(y.is_contiguous(), "dense_act_grad_z_: expected a contiguous y to overwrite");
  const c10::cuda::CUDAGuard guard(y.device());
  const at::Tensor g = grad.contiguous();
  at::Tensor gb = at::empty({y.size(1)}, y.options());
  check_launch(cuda::launch_grad_z(cuda_dtype(y), g.data_ptr(), y.data_ptr(), y.data_ptr(), gb.data_ptr(), y.size(0),
                                   y.size(1), act, static_cast<float>(alpha), c10::cuda::getCurrentCUDAStream()),
               "dense_act_grad_z_");
  return gb;
}

}  // namespace
}  // namespace ganforge

TORCH_LIBRARY_IMPL(ganforge, CUDA, m) {
  m.impl("dense_act", &ganforge::dense_act_cuda);
  m.impl("dense_act_grad_z", &ganforge::dense_act_grad_z_cuda);
  m.impl("dense_act_grad_z_", &ganforge::dense_act_grad_z_inplace_cuda);
}

#endif  // GANFORGE_WITH_CUDA
