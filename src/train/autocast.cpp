#include "train/autocast.h"

#include <ATen/autocast_mode.h>
#include <torch/version.h>

#include <map>
#include <mutex>

namespace mlaas::train {
namespace {

// libtorch 2.4 names the device type in the autocast calls (the old per-device ones are gone
// in later versions).
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
bool Enabled(bool cuda) { return at::autocast::is_autocast_enabled(cuda ? at::kCUDA : at::kCPU); }
void SetEnabled(bool cuda, bool on) { at::autocast::set_autocast_enabled(cuda ? at::kCUDA : at::kCPU, on); }
at::ScalarType Dtype(bool cuda) { return at::autocast::get_autocast_dtype(cuda ? at::kCUDA : at::kCPU); }
void SetDtype(bool cuda, at::ScalarType t) { at::autocast::set_autocast_dtype(cuda ? at::kCUDA : at::kCPU, t); }
#else
bool Enabled(bool cuda) { return cuda ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled(); }
void SetEnabled(bool cuda, bool on) { cuda ? at::autocast::set_enabled(on) : at::autocast::set_cpu_enabled(on); }
at::ScalarType Dtype(bool cuda) {
  return cuda ? at::autocast::get_autocast_gpu_dtype() : at::autocast::get_autocast_cpu_dtype();
}
void SetDtype(bool cuda, at::ScalarType t) {
  cuda ? at::autocast::set_autocast_gpu_dtype(t) : at::autocast::set_autocast_cpu_dtype(t);
}
#endif

// Whether `device` multiplies bf16 matrices: tried once per device index (a GPU before
// Ampere, or a libtorch without the kernels, throws).
bool CudaComputesBf16(const torch::Device& device) {
  static std::mutex mu;
  static std::map<int, bool> known;
  std::lock_guard lock(mu);
  const int index = device.has_index() ? device.index() : 0;
  if (auto it = known.find(index); it != known.end()) return it->second;
  bool ok = false;
  try {
    auto a = torch::ones({16, 16}, torch::TensorOptions().dtype(torch::kBFloat16).device(device));
    ok = a.matmul(a).sum().item<float>() == 16.0f * 16 * 16;
  } catch (const c10::OutOfMemoryError&) {
    return false;  // a full device says nothing of its kernels: asked again next time
  } catch (const c10::Error&) {
    ok = false;
  }
  known[index] = ok;
  return ok;
}

}  // namespace

bool DeviceComputesBf16(const torch::Device& device) { return !device.is_cuda() || CudaComputesBf16(device); }

bool UsesBf16(Precision precision, const torch::Device& device) {
  switch (precision) {
    case Precision::kFloat32:
      return false;
    case Precision::kBFloat16:
      return true;
    case Precision::kAuto:
      return device.is_cuda() && CudaComputesBf16(device);
  }
  return false;
}

Bf16Autocast::Bf16Autocast(const torch::Device& device, bool on) : on_(on), cuda_(device.is_cuda()) {
  if (!on_) return;
  was_ = Enabled(cuda_);
  was_dtype_ = Dtype(cuda_);
  SetDtype(cuda_, at::kBFloat16);
  SetEnabled(cuda_, true);
}

Bf16Autocast::~Bf16Autocast() {
  if (!on_) return;
  SetEnabled(cuda_, was_);
  SetDtype(cuda_, was_dtype_);
  at::autocast::clear_cache();
}

}  // namespace mlaas::train
