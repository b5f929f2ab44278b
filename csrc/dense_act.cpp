// ganforge::dense_act: y = act(x @ W^T + b) as one op, with a CPU kernel and C++ autograd.
//
// Forward: one GEMM through ATen's BLAS, then bias + activation in one pass over the output.
// Backward: one pass computes dZ = dY * act'(Y) together with the bias gradient (a deterministic
// column-blocked reduction), then the two GEMMs. Only x, W and the output y are saved.
// When the backward itself must be differentiable (create_graph=True, as in WGAN-GP or R1), the
// autograd function switches to ATen ops written with the same formulas, so double backward works.
#include <type_traits>

#include <ATen/FunctionalTensorWrapper.h>
#include <ATen/TensorSubclassLikeUtils.h>
#include <torch/autograd.h>
#include <torch/csrc/autograd/functions/utils.h>
#include <torch/library.h>
#include <torch/python.h>

#include "activations.h"
#include "cpu_kernels.h"

namespace ganforge {

using at::Tensor;

// ---------------------------------------------------------------------------------------------
// Argument checks: every message names the argument and what was expected.
// ---------------------------------------------------------------------------------------------

void check_act(int64_t act) {
  TORCH_CHECK(act >= 0 && act < kNumActs, "dense_act: unknown activation code ", act,
              "; expected 0..", kNumActs - 1, " (none, relu, leaky_relu, tanh, sigmoid)");
}

void check_inputs(const Tensor& x, const Tensor& weight, const std::optional<Tensor>& bias, int64_t act) {
  check_act(act);
  TORCH_CHECK(x.dim() == 2, "dense_act: expected x of rank 2 (batch, in_features), got rank ", x.dim(),
              " with shape ", x.sizes());
  TORCH_CHECK(weight.dim() == 2, "dense_act: expected weight of rank 2 (out_features, in_features), got shape ",
              weight.sizes());
  TORCH_CHECK(x.size(1) == weight.size(1), "dense_act: x has ", x.size(1), " in_features but weight expects ",
              weight.size(1), " (weight shape ", weight.sizes(), ")");
  TORCH_CHECK(x.scalar_type() == weight.scalar_type(), "dense_act: dtype mismatch: x is ", x.scalar_type(),
              " but weight is ", weight.scalar_type());
  TORCH_CHECK(x.device() == weight.device(), "dense_act: device mismatch: x is on ", x.device(),
              " but weight is on ", weight.device());
  TORCH_CHECK(at::isFloatingType(x.scalar_type()), "dense_act: expected a floating-point dtype, got ",
              x.scalar_type());
  if (bias.has_value() && bias->defined()) {
    TORCH_CHECK(bias->dim() == 1 && bias->size(0) == weight.size(0), "dense_act: expected bias of shape (",
                weight.size(0), ",) to match weight's out_features, got shape ", bias->sizes());
    TORCH_CHECK(bias->scalar_type() == x.scalar_type(), "dense_act: dtype mismatch: x is ", x.scalar_type(),
                " but bias is ", bias->scalar_type());
    TORCH_CHECK(bias->device() == x.device(), "dense_act: device mismatch: x is on ", x.device(),
                " but bias is on ", bias->device());
  }
}

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

void check_cpu_dtype(const Tensor& t, const char* what) {
  TORCH_CHECK(t.scalar_type() == at::kFloat || t.scalar_type() == at::kDouble, what,
              ": the CPU kernel supports float32 and float64, got ", t.scalar_type(),
              "; convert with .float() (half and bfloat16 run on CUDA)");
}

Tensor dense_act_cpu(const Tensor& x, const Tensor& weight, const std::optional<Tensor>& bias, int64_t act,
                     double alpha) {
  check_inputs(x, weight, bias, act);
  check_cpu_dtype(x, "dense_act");
  const bool has_bias = bias.has_value() && bias->defined();
  Tensor y = at::mm(x, weight.t());  // contiguous (batch, out)
  const Tensor b = has_bias ? bias->contiguous() : Tensor();
  // tanh and sigmoid: our pass adds the bias, then ATen's in-place kernel (MKL VML where available,
  // measured 6x faster than a SLEEF loop here) applies the activation. The piecewise-linear ones
  // are done entirely in our single pass.
  const auto a = static_cast<Act>(act);
  const bool transcendental = a == Act::Tanh || a == Act::Sigmoid;
  if (transcendental && !has_bias) return a == Act::Tanh ? y.tanh_() : y.sigmoid_();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "dense_act_cpu", [&] {
    pick_bias_act<scalar_t>()(y.data_ptr<scalar_t>(), has_bias ? b.data_ptr<scalar_t>() : nullptr, y.size(0),
                              y.size(1), transcendental ? static_cast<int64_t>(Act::None) : act,
                              static_cast<scalar_t>(alpha));
  });
  if (transcendental) return a == Act::Tanh ? y.tanh_() : y.sigmoid_();
  return y;
}

// dZ = dY * act'(Y) and db = sum_rows(dZ) in one pass (see cpu_kernels.inc).
void check_grad_z_args(const Tensor& grad, const Tensor& y, int64_t act) {
  check_act(act);
  TORCH_CHECK(y.dim() == 2, "dense_act_grad_z: expected the output y of rank 2, got shape ", y.sizes());
  TORCH_CHECK(grad.sizes() == y.sizes(), "dense_act_grad_z: expected grad of shape ", y.sizes(),
              " like the output, got ", grad.sizes());
  TORCH_CHECK(grad.scalar_type() == y.scalar_type(), "dense_act_grad_z: dtype mismatch: grad is ",
              grad.scalar_type(), " but output is ", y.scalar_type());
  TORCH_CHECK(grad.device() == y.device(), "dense_act_grad_z: device mismatch: grad is on ", grad.device(),
              " but output is on ", y.device());
}

// gz may be y itself (in place): each element is read before it is written.
void grad_z_cpu_into(const Tensor& g, const Tensor& y, const Tensor& gz, const Tensor& gb, int64_t act, double alpha) {
  check_cpu_dtype(y, "dense_act_grad_z");
  AT_DISPATCH_FLOATING_TYPES(y.scalar_type(), "dense_act_grad_z_cpu", [&] {
    pick_grad_z<scalar_t>()(g.data_ptr<scalar_t>(), y.data_ptr<scalar_t>(), gz.data_ptr<scalar_t>(),
                            gb.data_ptr<scalar_t>(), y.size(0), y.size(1), act, static_cast<scalar_t>(alpha));
  });
}

std::tuple<Tensor, Tensor> dense_act_grad_z_cpu(const Tensor& grad, const Tensor& y, int64_t act, double alpha) {
  check_grad_z_args(grad, y, act);
  const Tensor g = grad.contiguous(), yc = y.contiguous();
  Tensor gz = at::empty_like(yc, at::MemoryFormat::Contiguous);
  Tensor gb = at::empty({y.size(1)}, y.options());
  grad_z_cpu_into(g, yc, gz, gb, act, alpha);
  return {gz, gb};
}

Tensor dense_act_grad_z_inplace_cpu(const Tensor& grad, const Tensor& y, int64_t act, double alpha) {
  check_grad_z_args(grad, y, act);
  TORCH_CHECK(y.is_contiguous(), "dense_act_grad_z_: expected a contiguous y to overwrite");
  Tensor gb = at::empty({y.size(1)}, y.options());
  grad_z_cpu_into(grad.contiguous(), y, y, gb, act, alpha);
  return gb;
}

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

// act'(y) with differentiable ATen ops: used when the backward must itself be differentiated.
Tensor differentiable_grad_z(const Tensor& g, const Tensor& y, int64_t act, double alpha) {
  switch (static_cast<Act>(act)) {
    case Act::None: return g;
    case Act::Relu: return g * (y > 0).to(y.scalar_type());
    case Act::LeakyRelu: return g * at::where(y > 0, at::ones_like(y), at::full_like(y, alpha));
    case Act::Tanh: return g * (1 - y * y);
    case Act::Sigmoid: return g * (y * (1 - y));
  }
  TORCH_CHECK(false, "dense_act: unknown activation code ", act);
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

}  // namespace ganforge

TORCH_LIBRARY(ganforge, m) {
  m.def("dense_act(Tensor x, Tensor weight, Tensor? bias, int act, float alpha) -> Tensor");
  m.def("dense_act_grad_z(Tensor grad, Tensor y, int act, float alpha) -> (Tensor, Tensor)");
  // In-place form used by backward when y's buffer is exclusively owned: y becomes dZ, returns db.
  m.def("dense_act_grad_z_(Tensor grad, Tensor(a!) y, int act, float alpha) -> Tensor");
}

TORCH_LIBRARY_IMPL(ganforge, CPU, m) {
  m.impl("dense_act", &ganforge::dense_act_cpu);
  m.impl("dense_act_grad_z", &ganforge::dense_act_grad_z_cpu);
  m.impl("dense_act_grad_z_", &ganforge::dense_act_grad_z_inplace_cpu);
}

TORCH_LIBRARY_IMPL(ganforge, Autograd, m) { m.impl("dense_act", &ganforge::dense_act_autograd); }

// The module only has to exist so `import ganforge._C` loads the registrations above.
PYBIND11_MODULE(TORCH_EXTENSION_NAME, module) {
  module.doc() = "ganforge's compiled dense_act op (registered as torch.ops.ganforge.*)";
  module.def("cpu_isa", [] { return std::string(ganforge::isa_name()); }, "instruction set of the CPU kernels");
  module.attr("with_cuda") =
#ifdef GANFORGE_WITH_CUDA
      true;
#else
      false;
#endif
}
