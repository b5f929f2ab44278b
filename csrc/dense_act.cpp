// ganforge::dense_act: y = act(x @ W^T + b) as one op, with a CPU kernel and C++ autograd.
//
// Forward: one GEMM through ATen's BLAS, then bias + activation in one pass over the output.
// Backward: one pass computes dZ = dY * act'(Y) together with the bias gradient (a deterministic
// column-blocked reduction), then the two GEMMs. Only x, W and the output y are saved.
// When the backward itself must be differentiable (create_graph=True, as in WGAN-GP or R1), the
// autograd function switches to the ATen form of the same formulas (ActTraits::grad_z_tensor in
// activations.h), so double backward works. The tensor side of the ops (checks, GEMM, allocation)
// is dense_act_glue.h, shared with the CUDA glue.
#include <string>
#include <type_traits>
#include <vector>

#include <ATen/FunctionalTensorWrapper.h>
#include <ATen/autocast_mode.h>
#include <ATen/TensorSubclassLikeUtils.h>
#include <torch/autograd.h>
#include <torch/csrc/autograd/functions/utils.h>
#include <torch/library.h>
#include <torch/python.h>

#include "activations.h"
#include "checks.h"
#include "cpu_kernels.h"
#include "dense_act_glue.h"

namespace ganforge {

using at::Tensor;

// ---------------------------------------------------------------------------------------------
// CPU kernels: the widest instruction set this CPU supports (see cpu_kernels.h)
// ---------------------------------------------------------------------------------------------

enum class Isa { Default, Avx2, Avx512 };

Isa detect_isa() {
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
    return Isa::Avx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Isa::Avx2;
#endif
  return Isa::Default;
}

const Isa kIsa = detect_isa();

const char* isa_name() {
  switch (kIsa) {
    case Isa::Avx512: return "avx512";
    case Isa::Avx2: return "avx2";
    default: return "default";
  }
}

// The build of a kernel for the widest instruction set this CPU has.
template <typename Fn>
Fn by_isa(Fn avx512, Fn avx2, Fn fallback) {
  return kIsa == Isa::Avx512 ? avx512 : kIsa == Isa::Avx2 ? avx2 : fallback;
}
#define GANFORGE_PICK(kernel) by_isa(cpu_avx512::kernel, cpu_avx2::kernel, cpu_default::kernel)

template <typename scalar_t>
BiasActFn<scalar_t> pick_bias_act() {
  if constexpr (std::is_same_v<scalar_t, float>) return GANFORGE_PICK(bias_act_f32);
  else return GANFORGE_PICK(bias_act_f64);
}

template <typename scalar_t>
GradZFn<scalar_t> pick_grad_z() {
  if constexpr (std::is_same_v<scalar_t, float>) return GANFORGE_PICK(grad_z_f32);
  else return GANFORGE_PICK(grad_z_f64);
}

// The CPU epilogue of dense_act_glue.h.
struct CpuEpilogue {
  struct Guard {
    explicit Guard(c10::Device) {}
  };

  static void check_dtype(const Tensor& t, const char* op) {
    const auto s = t.scalar_type();
    TORCH_CHECK(s == at::kFloat || s == at::kDouble || s == at::kBFloat16, op,
                ": the CPU kernel supports float32, float64 and bfloat16, got ", s,
                "; convert with .float() (float16 runs on CUDA)");
  }

  static void bias_act(const Tensor& y, const Tensor& b, int64_t act, double alpha) {
    dispatch_act(act, [&](auto a) {
      constexpr Act A = decltype(a)::value;
      using Traits = ActTraits<A>;
      // The pass adds the bias and applies a piecewise-linear act, so it has nothing to do for the
      // identity or for tanh / sigmoid without a bias; those two then run ATen's kernel.
      const bool pass_has_work = b.defined() || (Traits::kPiecewiseLinear && A != Act::None);
      if (pass_has_work && y.scalar_type() == at::kBFloat16) {
        GANFORGE_PICK(bias_act_bf16)(y.data_ptr<at::BFloat16>(), b.defined() ? b.data_ptr<at::BFloat16>() : nullptr,
                                     y.size(0), y.size(1), act, static_cast<float>(alpha));
      } else if (pass_has_work) {
        AT_DISPATCH_FLOATING_TYPES(y.scalar_type(), "dense_act_cpu", [&] {
          pick_bias_act<scalar_t>()(y.data_ptr<scalar_t>(), b.defined() ? b.data_ptr<scalar_t>() : nullptr,
                                    y.size(0), y.size(1), act, static_cast<scalar_t>(alpha));
        });
      }
      if constexpr (!Traits::kPiecewiseLinear) Traits::forward_inplace(y);
    });
  }

  // One pass computes gz and the bias gradient (see cpu_kernels.inc); gz may be y.
  static void grad_z(const Tensor& g, const Tensor& y, const Tensor& gz, const Tensor& gb, int64_t act,
                     double alpha) {
    if (y.scalar_type() == at::kBFloat16) {
      GANFORGE_PICK(grad_z_bf16)(g.data_ptr<at::BFloat16>(), y.data_ptr<at::BFloat16>(), gz.data_ptr<at::BFloat16>(),
                                 gb.data_ptr<at::BFloat16>(), y.size(0), y.size(1), act, static_cast<float>(alpha));
      return;
    }
    AT_DISPATCH_FLOATING_TYPES(y.scalar_type(), "dense_act_grad_z_cpu", [&] {
      pick_grad_z<scalar_t>()(g.data_ptr<scalar_t>(), y.data_ptr<scalar_t>(), gz.data_ptr<scalar_t>(),
                              gb.data_ptr<scalar_t>(), y.size(0), y.size(1), act, static_cast<scalar_t>(alpha));
    });
  }
};

// ---------------------------------------------------------------------------------------------
// Autograd
// ---------------------------------------------------------------------------------------------

Tensor call_forward(const Tensor& x, const Tensor& w, const std::optional<Tensor>& b, int64_t act, double alpha) {
  static auto op = c10::Dispatcher::singleton().findSchemaOrThrow("ganforge::dense_act", "").typed<decltype(call_forward)>();
  return op.call(x, w, b, act, alpha);
}

Tensor call_grad_z_inplace(const Tensor& g, const Tensor& y, int64_t act, double alpha) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("ganforge::dense_act_grad_z_", "")
                       .typed<decltype(call_grad_z_inplace)>();
  return op.call(g, y, act, alpha);
}

std::tuple<Tensor, Tensor> call_grad_z(const Tensor& g, const Tensor& y, int64_t act, double alpha) {
  static auto op =
      c10::Dispatcher::singleton().findSchemaOrThrow("ganforge::dense_act_grad_z", "").typed<decltype(call_grad_z)>();
  return op.call(g, y, act, alpha);
}

// g * act'(y) with differentiable ATen ops: used when the backward must itself be differentiated.
Tensor differentiable_grad_z(const Tensor& g, const Tensor& y, int64_t act, double alpha) {
  check_act(act, "dense_act");
  Tensor gz;
  dispatch_act(act, [&](auto a) { gz = ActTraits<decltype(a)::value>::grad_z_tensor(g, y, alpha); });
  return gz;
}

// The backward node, written like PyTorch's generated ones (e.g. AddmmBackward0) rather than with
// torch::autograd::Function, for one reason: memory. The engine tells a node, before calling it,
// whether its saved tensors will be released (will_release_variables: no retain_graph). Then the
// saved output Y is dropped as soon as dZ exists, and when nothing else holds Y's buffer, dZ is
// written into it, so backward allocates one activation-sized tensor less per layer than eager.
struct DenseActBackward final : public torch::autograd::Node {
  torch::autograd::SavedVariable x_, weight_, y_;
  int64_t act_ = 0;
  double alpha_ = 0.2;
  bool has_bias_ = false;
  bool releasing_ = false;

  std::string name() const override { return "DenseActBackward"; }
  void will_release_variables() override { releasing_ = true; }
  void release_variables() override {
    x_.reset_data();
    weight_.reset_data();
    y_.reset_data();
  }

  torch::autograd::variable_list apply(torch::autograd::variable_list&& grads) override {
    torch::autograd::variable_list out(3);
    Tensor gy = std::move(grads[0]);
    if (!gy.defined()) return out;
    const bool need_x = should_compute_output(0), need_w = should_compute_output(1);
    const bool need_b = has_bias_ && should_compute_output(2);
    Tensor y = y_.unpack(getptr());  // checks that y was not modified in place since forward
    Tensor gz, gb;
    if (at::GradMode::is_enabled()) {  // create_graph=True: keep every step differentiable
      gz = differentiable_grad_z(gy, y, act_, alpha_);
      if (need_b) gb = gz.sum(0);
    } else if (static_cast<Act>(act_) == Act::None) {
      gz = gy;
      if (need_b) gb = gy.sum(0);
    } else {
      if (releasing_) y_.reset_data();
      if (releasing_ && exclusively_owned(y) && gy.sizes() == y.sizes()) {
        at::AutoDispatchBelowADInplaceOrView guard;
        gb = call_grad_z_inplace(gy, y, act_, alpha_);
        gz = std::move(y);
      } else {
        std::tie(gz, gb) = call_grad_z(gy, y, act_, alpha_);
      }
    }
    y.reset();
    gy.reset();
    if (need_x) out[0] = gz.mm(weight_.unpack());
    if (need_w) out[1] = gz.t().mm(x_.unpack());
    if (need_b) out[2] = gb;
    return out;
  }

  // True when this handle is the only one on y's buffer (the caller dropped the output and the
  // next layer's saved copy is gone), so overwriting it cannot be observed. Never for tensor
  // subclasses, fake or functional tensors (tracing), which must see ordinary ops.
  static bool exclusively_owned(const Tensor& y) {
    return y.use_count() == 1 && y.storage().use_count() == 1 && y.is_contiguous() && y.layout() == at::kStrided &&
           !at::isTensorSubclassLike(y) && !at::functionalization::impl::isFunctionalTensor(y) && !y.is_inference();
  }
};

Tensor dense_act_autograd(const Tensor& x, const Tensor& weight, const std::optional<Tensor>& bias, int64_t act,
                          double alpha) {
  const bool has_bias = bias.has_value() && bias->defined();
  const Tensor b = has_bias ? *bias : Tensor();
  c10::intrusive_ptr<DenseActBackward> node;
  if (torch::autograd::compute_requires_grad(x, weight, b)) {
    node = c10::make_intrusive<DenseActBackward>();
    node->set_next_edges(torch::autograd::collect_next_edges(x, weight, b));
    // Save only what backward reads: x for the weight gradient, W for the input gradient.
    if (weight.requires_grad()) node->x_ = torch::autograd::SavedVariable(x, false);
    if (x.requires_grad()) node->weight_ = torch::autograd::SavedVariable(weight, false);
    node->act_ = act;
    node->alpha_ = alpha;
    node->has_bias_ = has_bias;
  }
  Tensor y;
  {
    at::AutoDispatchBelowADInplaceOrView guard;
    y = call_forward(x, weight, bias, act, alpha);
  }
  if (node) {
    torch::autograd::set_history(y, node);
    node->y_ = torch::autograd::SavedVariable(y, true);
  }
  return y;
}

// ---------------------------------------------------------------------------------------------
// Autocast: like F.linear, the op runs in autocast's lower-precision dtype (bf16 on the CPU, fp16
// or bf16 on CUDA), with the casts recorded for autograd and cached for the parameters, then
// redispatches to the op's own kernels for that dtype. Autocast sits above Autograd in the
// dispatcher, so the backward sees the low-precision tensors and casts gradients back as eager does.
// ---------------------------------------------------------------------------------------------

template <c10::DeviceType kDevice>
Tensor dense_act_autocast(const Tensor& x, const Tensor& weight, const std::optional<Tensor>& bias, int64_t act,
                          double alpha) {
  constexpr auto kKey = kDevice == c10::DeviceType::CUDA ? c10::DispatchKey::AutocastCUDA
                                                         : c10::DispatchKey::AutocastCPU;
  c10::impl::ExcludeDispatchKeyGuard no_autocast(kKey);
  const auto dtype = at::autocast::get_lower_precision_fp_from_device_type(kDevice);
  return call_forward(at::autocast::cached_cast(dtype, x, kDevice), at::autocast::cached_cast(dtype, weight, kDevice),
                      at::autocast::cached_cast(dtype, bias, kDevice), act, alpha);
}

}  // namespace ganforge

TORCH_LIBRARY(ganforge, m) {
  m.def("dense_act(Tensor x, Tensor weight, Tensor? bias, int act, float alpha) -> Tensor");
  m.def("dense_act_grad_z(Tensor grad, Tensor y, int act, float alpha) -> (Tensor, Tensor)");
  // In-place form used by backward when y's buffer is exclusively owned: y becomes dZ, returns db.
  m.def("dense_act_grad_z_(Tensor grad, Tensor(a!) y, int act, float alpha) -> Tensor");
}

TORCH_LIBRARY_IMPL(ganforge, CPU, m) {
  m.impl("dense_act", &ganforge::dense_act_with<ganforge::CpuEpilogue>);
  m.impl("dense_act_grad_z", &ganforge::dense_act_grad_z_with<ganforge::CpuEpilogue>);
  m.impl("dense_act_grad_z_", &ganforge::dense_act_grad_z_inplace_with<ganforge::CpuEpilogue>);
}

TORCH_LIBRARY_IMPL(ganforge, Autograd, m) { m.impl("dense_act", &ganforge::dense_act_autograd); }

TORCH_LIBRARY_IMPL(ganforge, AutocastCPU, m) {
  m.impl("dense_act", &ganforge::dense_act_autocast<c10::DeviceType::CPU>);
}

TORCH_LIBRARY_IMPL(ganforge, AutocastCUDA, m) {
  m.impl("dense_act", &ganforge::dense_act_autocast<c10::DeviceType::CUDA>);
}

// The module only has to exist so `import ganforge._C` loads the registrations above.
PYBIND11_MODULE(TORCH_EXTENSION_NAME, module) {
  module.doc() = "ganforge's compiled dense_act op (registered as torch.ops.ganforge.*)";
  module.def("cpu_isa", [] { return std::string(ganforge::isa_name()); }, "instruction set of the CPU kernels");
  module.def(
      "activation_names",
      [] {
        std::vector<std::string> names;
        for (int64_t code = 0; code < ganforge::kNumActs; ++code) names.emplace_back(ganforge::act_name(code));
        return names;
      },
      "the activation names of the C++ table, indexed by code");
  module.attr("with_cuda") =
#ifdef GANFORGE_WITH_CUDA
      true;
#else
      false;
#endif
}
