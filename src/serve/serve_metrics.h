// Serving metrics per model version, rendered in the Prometheus text format with names in the
// style of Triton and text-embeddings-inference: request counts by outcome, request / queue /
// compute duration and batch size histograms, queue depth, model load time.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace mlaas::serve {

class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}
  void Observe(double v);
  // Appends the _bucket, _sum and _count lines of `name` with `labels` ("model=\"m\"").
  void Render(std::string& out, const std::string& name, const std::string& labels) const;

 private:
  std::vector<double> bounds_;
  mutable std::mutex mu_;
  std::vector<uint64_t> counts_;  // per bucket, the last one +Inf
  uint64_t count_ = 0;
  double sum_ = 0;
};

struct ModelMetrics {
  ModelMetrics();
  std::atomic<uint64_t> success{0};         // requests answered
  std::atomic<uint64_t> failure_input{0};   // refused: bad input (4xx)
  std::atomic<uint64_t> failure_queue{0};   // refused: queue full (429)
  std::atomic<uint64_t> failure_timeout{0}; // deadline passed (504)
  std::atomic<uint64_t> failure_other{0};   // anything else (5xx)
  std::atomic<uint64_t> inferences{0};      // inputs run
  std::atomic<uint64_t> executions{0};      // forward passes
  std::atomic<int64_t> queue_depth{0};      // rows waiting
  double load_seconds = 0;                  // set once when loaded
  Histogram request_seconds, queue_seconds, compute_seconds, batch_size;
  Histogram batch_tokens;  // text models: padded tokens per pass
  Histogram batch_pixels;  // image models: pixels per pass
};

struct LabeledMetrics {
  std::string model, version;
  const ModelMetrics* metrics;
};
// Appends every family (HELP, TYPE, then one series per model version), families contiguous
// as the exposition format requires.
void RenderModelMetrics(std::string& out, const std::vector<LabeledMetrics>& models);

// The resident set size of this process, in bytes (0 where unknown).
uint64_t ResidentBytes();

}  // namespace mlaas::serve
