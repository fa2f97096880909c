// Dynamic batching: the rows of concurrent requests to one model (texts or images, whatever its
// backend takes) are coalesced into forward passes bounded by a budget of their cost (texts:
// rows x longest row, the padded size, as text-embeddings-inference counts it; images: rows x
// pixels) and a row count, after waiting at most max_delay for
// company. Waiting rows are grouped by length so a pass pads little. A bounded queue refuses
// work beyond its size (ResourceExhausted: HTTP 429) instead of growing, and a request whose
// deadline passes while it waits gets DeadlineExceeded (504). One worker thread per batcher
// runs the passes, so a model runs one pass at a time on all its intra-op threads.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "common/result.h"
#include "predict/servable_model.h"
#include "serve/serve_metrics.h"

namespace mlaas::serve {

struct BatchingOptions {
  int64_t max_batch_tokens = 8192;  // padded tokens per forward pass (text rows)
  int64_t max_batch_pixels = 64 * 224 * 224;  // pixels per forward pass (image rows)
  int64_t max_batch_size = 64;      // rows per forward pass
  // How long the first waiting row waits for others. 0: a pass starts as soon as the model
  // is free, and requests arriving during a pass make up the next one (continuous batching:
  // no added latency when idle, full batches under load).
  int64_t max_delay_us = 0;
  int64_t max_queue = 2048;         // rows waiting at most; beyond: 429
  int64_t max_inputs = 512;         // inputs in one request
  int64_t timeout_ms = 30000;       // a request's deadline (queue + compute)

  // Parses {max_batch_tokens, max_batch_pixels, max_batch_size, max_delay_us, max_queue, max_inputs, timeout_ms}
  // (all optional) over the defaults; errors name `prefix`.<member>.
  static Result<BatchingOptions> FromJson(const nlohmann::json& j, const std::string& prefix);
  nlohmann::json ToJson() const;
};

// One forward pass over rows that share output options; `wanted(i)` is false once row i's
// request has given up (a generation stops such rows between tokens).
using RunFn = std::function<Result<std::vector<nlohmann::json>>(const std::vector<const predict::ModelRow*>&,
                                                                const predict::OutputOptions&,
                                                                const predict::ServableModel::RowWanted& wanted)>;

class Batcher {
 public:
  using Clock = std::chrono::steady_clock;

  // `metrics` (optional) receives batch sizes, queue and compute times and the queue depth.
  Batcher(RunFn run, BatchingOptions options, std::shared_ptr<ModelMetrics> metrics = nullptr);
  // Fails what still waits with Unavailable and stops the worker.
  ~Batcher();
  Batcher(const Batcher&) = delete;
  Batcher& operator=(const Batcher&) = delete;

  // Runs the rows of one request (with other requests' rows) and returns a prediction per
  // row, in order. Blocks until they are done or `deadline` passes.
  Result<std::vector<nlohmann::json>> Infer(std::vector<predict::ModelRow> rows, const predict::OutputOptions& options,
                                            Clock::time_point deadline);

  size_t queue_depth() const;
  const BatchingOptions& options() const { return options_; }

 private:
  struct Pending;
  struct Row {
    std::shared_ptr<Pending> request;
    size_t index;
  };
  void Loop();
  // Takes the rows of the next passes from the queue (lock held): waiting rows with the head's
  // options, sorted by length, cut into passes within the budgets.
  std::vector<std::vector<Row>> TakeBatches();
  void Finish(Pending& p, const Status& error);  // lock held

  RunFn run_;
  BatchingOptions options_;
  std::shared_ptr<ModelMetrics> metrics_;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::deque<Row> queue_;
  bool stopping_ = false;
  std::thread worker_;
};

}  // namespace mlaas::serve
