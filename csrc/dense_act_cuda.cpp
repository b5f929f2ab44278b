// CUDA glue of dense_act: cuBLAS GEMM through ATen, then the epilogue kernels in
// cuda/dense_act_kernels.cu. Compiled only into the CUDAExtension (GANFORGE_WITH_CUDA).
#ifdef GANFORGE_WITH_CUDA

#include <ATen/core/Tensor.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "cuda/dense_act_kernels.h"
#include "dense_act_glue.h"

namespace ganforge {
namespace {

cuda::DType cuda_dtype(const at::Tensor& t) {
  switch (t.scalar_type()) {
    case at::kFloat: return cuda::DType::Float32;
    case at::kDouble: return cuda::DType::Float64;
    case at::kHalf: return cuda::DType::Float16;
    case at::kBFloat16: return cuda::DType::BFloat16;
    default: TORCH_CHECK(false, "dense_act: unreachable: unchecked dtype ", t.scalar_type());
  }
}

void check_launch(cudaError_t err, const char* what) {
  TORCH_CHECK(err == cudaSuccess, what, ": CUDA kernel launch failed: ", cudaGetErrorString(err));
}

// The CUDA epilogue of dense_act_glue.h: the launchers of cuda/dense_act_kernels.cu on the current
// stream of the inputs' device.
struct CudaEpilogue {
  using Guard = c10::cuda::CUDAGuard;

  static void check_dtype(const at::Tensor& t, const char* op) {
    const auto s = t.scalar_type();
    TORCH_CHECK(s == at::kFloat || s == at::kDouble || s == at::kHalf || s == at::kBFloat16, op,
                ": the CUDA kernel supports float32, float64, float16 and bfloat16, got ", s);
  }

  static void bias_act(const at::Tensor& y, const at::Tensor& b, int64_t act, double alpha) {
    check_launch(cuda::launch_bias_act(cuda_dtype(y), y.data_ptr(), b.defined() ? b.data_ptr() : nullptr, y.size(0),
                                       y.size(1), act, alpha, c10::cuda::getCurrentCUDAStream()),
                 "dense_act");
  }

  static void grad_z(const at::Tensor& g, const at::Tensor& y, const at::Tensor& gz, const at::Tensor& gb, int64_t act,
                     double alpha) {
    check_launch(cuda::launch_grad_z(cuda_dtype(y), g.data_ptr(), y.data_ptr(), gz.data_ptr(), gb.data_ptr(),
                                     y.size(0), y.size(1), act, alpha, c10::cuda::getCurrentCUDAStream()),
                 "dense_act_grad_z");
  }
};

}  // namespace
}  // namespace ganforge

TORCH_LIBRARY_IMPL(ganforge, CUDA, m) {
  m.impl("dense_act", &ganforge::dense_act_with<ganforge::CudaEpilogue>);
  m.impl("dense_act_grad_z", &ganforge::dense_act_grad_z_with<ganforge::CudaEpilogue>);
  m.impl("dense_act_grad_z_", &ganforge::dense_act_grad_z_inplace_with<ganforge::CudaEpilogue>);
}

#endif  // GANFORGE_WITH_CUDA
