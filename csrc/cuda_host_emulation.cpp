// The CUDA epilogue kernels run on the CPU, for tests on machines without a GPU.
//
// The launches of cuda/dense_act_kernels.cu are replayed as host loops over the same grid, blocks
// and threads (same launch shapes), each simulated thread calling the same __host__ __device__
// functions of dense_act_kernels.cuh that the __global__ kernels call; the backward's shared-memory
// partial sums are a per-block array, combined after all of the block's threads have run (the
// barrier). Tensors reach the kernels through dense_act_glue.h, as on CUDA.
//
// Registered as torch.ops.ganforge_cuda_host.{dense_act, dense_act_grad_z, dense_act_grad_z_},
// with the schemas of the real ops, for float32 and float64 CPU tensors (half and bfloat16 would
// need CUDA's host types). tests/test_cuda_kernels_on_host.py calls them.
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <torch/library.h>

#include "cuda/dense_act_kernels.cuh"
#include "dense_act_glue.h"

namespace ganforge::cuda {
namespace {

// bias_act_kernel<<<bias_act_blocks(n), kBiasActThreads>>>
template <Act A, typename T>
void emulate_bias_act(T* y, const T* b, int64_t rows, int64_t cols, AccT<T> alpha) {
  const int64_t blocks = bias_act_blocks(rows * cols);
  for (int64_t block = 0; block < blocks; ++block)
    for (int thread = 0; thread < kBiasActThreads; ++thread)
      bias_act_thread<A>(y, b, rows, cols, alpha, static_cast<unsigned>(blocks), kBiasActThreads,
                         static_cast<unsigned>(block), thread);
}

// grad_z_kernel<<<grad_z_blocks(cols), dim3(kCols, kRowGroups)>>>
template <Act A, typename T>
void emulate_grad_z(const T* gy, const T* y, T* gz, T* gb, int64_t rows, int64_t cols, AccT<T> alpha) {
  const int64_t blocks = grad_z_blocks(cols);
  for (int64_t block = 0; block < blocks; ++block) {
    GradZPartials<T> partial;  // the block's __shared__ array
    for (unsigned group = 0; group < kRowGroups; ++group) {
      for (unsigned lane = 0; lane < kCols; ++lane) {
        const int64_t column = grad_z_column(static_cast<unsigned>(block), lane);
        partial[group][lane] = grad_z_partial<A>(gy, y, gz, rows, cols, column, group, alpha);
      }
    }
    // __syncthreads(): every partial sum of the block is written; row-group 0 combines.
    for (unsigned lane = 0; lane < kCols; ++lane)
      grad_z_combine<T>(partial, lane, grad_z_column(static_cast<unsigned>(block), lane), cols, gb);
  }
}

// The epilogue of dense_act_glue.h, with the emulated launches in place of the CUDA ones.
struct HostEmulatedEpilogue {
  struct Guard {
    explicit Guard(c10::Device) {}
  };

  static void check_dtype(const at::Tensor& t, const char* op) {
    TORCH_CHECK(t.device().is_cpu() && (t.scalar_type() == at::kFloat || t.scalar_type() == at::kDouble), op,
                ": the CUDA host emulation runs float32 and float64 CPU tensors, got ", t.scalar_type(), " on ",
                t.device());
  }

  // alpha is rounded to the compute type here, as the CUDA launchers do.
  static void bias_act(const at::Tensor& y, const at::Tensor& b, int64_t act, double alpha) {
    AT_DISPATCH_FLOATING_TYPES(y.scalar_type(), "dense_act_cuda_host", [&] {
      const auto a_c = static_cast<AccT<scalar_t>>(alpha);
      dispatch_act(act, [&](auto a) {
        emulate_bias_act<decltype(a)::value>(y.data_ptr<scalar_t>(), b.defined() ? b.data_ptr<scalar_t>() : nullptr,
                                             y.size(0), y.size(1), a_c);
      });
    });
  }

  static void grad_z(const at::Tensor& g, const at::Tensor& y, const at::Tensor& gz, const at::Tensor& gb, int64_t act,
                     double alpha) {
    AT_DISPATCH_FLOATING_TYPES(y.scalar_type(), "dense_act_grad_z_cuda_host", [&] {
      const auto a_c = static_cast<AccT<scalar_t>>(alpha);
      dispatch_act(act, [&](auto a) {
        emulate_grad_z<decltype(a)::value>(g.data_ptr<scalar_t>(), y.data_ptr<scalar_t>(), gz.data_ptr<scalar_t>(),
                                           gb.data_ptr<scalar_t>(), y.size(0), y.size(1), a_c);
      });
    });
  }
};

}  // namespace
}  // namespace ganforge::cuda

TORCH_LIBRARY(ganforge_cuda_host, m) {
  m.def("dense_act(Tensor x, Tensor weight, Tensor? bias, int act, float alpha) -> Tensor");
  m.def("dense_act_grad_z(Tensor grad, Tensor y, int act, float alpha) -> (Tensor, Tensor)");
  m.def("dense_act_grad_z_(Tensor grad, Tensor(a!) y, int act, float alpha) -> Tensor");
}

TORCH_LIBRARY_IMPL(ganforge_cuda_host, CPU, m) {
  using ganforge::cuda::HostEmulatedEpilogue;
  m.impl("dense_act", &ganforge::dense_act_with<HostEmulatedEpilogue>);
  m.impl("dense_act_grad_z", &ganforge::dense_act_grad_z_with<HostEmulatedEpilogue>);
  m.impl("dense_act_grad_z_", &ganforge::dense_act_grad_z_inplace_with<HostEmulatedEpilogue>);
}
