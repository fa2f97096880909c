#include "serve/serve_metrics.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <functional>
#include <sstream>

#include "common/prometheus.h"

namespace mlaas::serve {

namespace {

std::string Num(double v) {
  std::ostringstream s;
  s.precision(10);
  s << v;
  return s.str();
}

// Latency buckets from 0.5 ms to 30 s.
std::vector<double> SecondsBuckets() {
  return {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
}

}  // namespace

void Histogram::Observe(double v) {
  size_t i = 0;
  while (i < bounds_.size() && v > bounds_[i]) ++i;
  std::lock_guard<std::mutex> lock(mu_);
  ++counts_[i];
  ++count_;
  sum_ += v;
}

void Histogram::Render(std::string& out, const std::string& name, const std::string& labels) const {
  std::lock_guard<std::mutex> lock(mu_);
  uint64_t cumulative = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    cumulative += counts_[i];
    const std::string le = i < bounds_.size() ? Num(bounds_[i]) : "+Inf";
    out += name + "_bucket{" + labels + ",le=\"" + le + "\"} " + std::to_string(cumulative) + "\n";
  }
  out += name + "_sum{" + labels + "} " + Num(sum_) + "\n";
  out += name + "_count{" + labels + "} " + std::to_string(count_) + "\n";
}

ModelMetrics::ModelMetrics()
    : request_seconds(SecondsBuckets()),
      queue_seconds(SecondsBuckets()),
      compute_seconds(SecondsBuckets()),
      batch_size({1, 2, 4, 8, 16, 32, 64, 128, 256}),
      batch_tokens({64, 256, 1024, 2048, 4096, 8192, 16384, 32768}),
      batch_pixels({784, 50176, 200704, 802816, 1605632, 3211264, 6422528, 12845056}) {}

void RenderModelMetrics(std::string& out, const std::vector<LabeledMetrics>& models) {
  if (models.empty()) return;
  auto labels = [](const LabeledMetrics& m) {
    return "model=\"" + PromEscape(m.model) + "\",version=\"" + PromEscape(m.version) + "\"";
  };
  auto family = [&](const std::string& name, const std::string& type, const std::string& help,
                    const std::function<void(const LabeledMetrics&, const std::string&)>& series) {
    out += "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
    for (const auto& m : models) series(m, labels(m));
  };
  auto counter = [&](const std::string& name, const std::string& help, auto get) {
    family(name, "counter", help, [&](const LabeledMetrics& m, const std::string& l) {
      out += name + "{" + l + "} " + std::to_string(get(*m.metrics)) + "\n";
    });
  };
  counter("mlaas_inference_request_success_total", "Inference requests answered",
          [](const ModelMetrics& m) { return m.success.load(); });
  family("mlaas_inference_request_failure_total", "counter", "Inference requests failed, by reason",
         [&](const LabeledMetrics& m, const std::string& l) {
           const std::pair<const char*, uint64_t> reasons[] = {{"invalid_input", m.metrics->failure_input.load()},
                                                               {"queue_full", m.metrics->failure_queue.load()},
                                                               {"timeout", m.metrics->failure_timeout.load()},
                                                               {"error", m.metrics->failure_other.load()}};
           for (const auto& [reason, n] : reasons)
             out += "mlaas_inference_request_failure_total{" + l + ",reason=\"" + reason + "\"} " + std::to_string(n) + "\n";
         });
  counter("mlaas_inference_count_total", "Inputs inferred (one per text)",
          [](const ModelMetrics& m) { return m.inferences.load(); });
  counter("mlaas_inference_exec_count_total", "Forward passes run (batched inputs share one)",
          [](const ModelMetrics& m) { return m.executions.load(); });
  family("mlaas_inference_queue_depth", "gauge", "Inputs waiting for a forward pass",
         [&](const LabeledMetrics& m, const std::string& l) {
           out += "mlaas_inference_queue_depth{" + l + "} " + std::to_string(m.metrics->queue_depth.load()) + "\n";
         });
  family("mlaas_model_load_seconds", "gauge", "Time the model version took to load",
         [&](const LabeledMetrics& m, const std::string& l) {
           out += "mlaas_model_load_seconds{" + l + "} " + Num(m.metrics->load_seconds) + "\n";
         });
  auto histogram = [&](const std::string& name, const std::string& help, const Histogram ModelMetrics::*h) {
    family(name, "histogram", help,
           [&](const LabeledMetrics& m, const std::string& l) { ((*m.metrics).*h).Render(out, name, l); });
  };
  histogram("mlaas_inference_request_duration_seconds", "Inference request time, tokenizing to answer",
            &ModelMetrics::request_seconds);
  histogram("mlaas_inference_queue_duration_seconds", "Time inputs waited for their forward pass",
            &ModelMetrics::queue_seconds);
  histogram("mlaas_inference_compute_duration_seconds", "Forward pass time", &ModelMetrics::compute_seconds);
  histogram("mlaas_inference_batch_size", "Inputs per forward pass", &ModelMetrics::batch_size);
  histogram("mlaas_inference_batch_tokens", "Padded tokens per forward pass (text models)", &ModelMetrics::batch_tokens);
  histogram("mlaas_inference_batch_pixels", "Pixels per forward pass (image models)", &ModelMetrics::batch_pixels);
}

uint64_t ResidentBytes() {
  std::ifstream statm("/proc/self/statm");
  uint64_t size = 0, resident = 0;
  if (!(statm >> size >> resident)) return 0;
  return resident * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
}

}  // namespace mlaas::serve
