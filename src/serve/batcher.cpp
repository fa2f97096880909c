#include "serve/batcher.h"

#include <algorithm>
#include <atomic>

namespace mlaas::serve {

using json = nlohmann::json;

namespace {

double Seconds(Batcher::Clock::duration d) { return std::chrono::duration<double>(d).count(); }

}  // namespace

Result<BatchingOptions> BatchingOptions::FromJson(const json& j, const std::string& prefix) {
  BatchingOptions o;
  if (j.is_null()) return o;
  if (!j.is_object()) return InvalidArgument(prefix + " must be an object", prefix);
  struct Field {
    const char* name;
    int64_t* value;
    int64_t min, max;
  };
  const Field fields[] = {{"max_batch_tokens", &o.max_batch_tokens, 1, 1 << 22},
                          {"max_batch_pixels", &o.max_batch_pixels, 1, int64_t{1} << 30},
                          {"max_batch_size", &o.max_batch_size, 1, 4096},
                          {"max_delay_us", &o.max_delay_us, 0, 10'000'000},
                          {"max_queue", &o.max_queue, 1, 1 << 20},
                          {"max_inputs", &o.max_inputs, 1, 1 << 16},
                          {"timeout_ms", &o.timeout_ms, 1, 3'600'000}};
  for (auto it = j.begin(); it != j.end(); ++it) {
    const Field* f = nullptr;
    for (const auto& candidate : fields)
      if (it.key() == candidate.name) f = &candidate;
    if (f == nullptr) return InvalidArgument("unknown batching setting '" + it.key() + "'", prefix + "." + it.key());
    if (!it->is_number_integer() || it->get<int64_t>() < f->min || it->get<int64_t>() > f->max) {
      return InvalidArgument(std::string(f->name) + " must be an integer in " + std::to_string(f->min) + ".." +
                                 std::to_string(f->max),
                             prefix + "." + f->name);
    }
    *f->value = it->get<int64_t>();
  }
  return o;
}

json BatchingOptions::ToJson() const {
  return {{"max_batch_tokens", max_batch_tokens}, {"max_batch_pixels", max_batch_pixels},
          {"max_batch_size", max_batch_size},     {"max_delay_us", max_delay_us},
          {"max_queue", max_queue},               {"max_inputs", max_inputs},         {"timeout_ms", timeout_ms}};
}

struct Batcher::Pending {
  std::vector<predict::ModelRow> rows;
  predict::OutputOptions options;
  std::string key;
  Clock::time_point enqueued;
  std::vector<json> results;
  size_t remaining = 0;
  Status error;
  bool done = false;
  std::atomic<bool> abandoned = false;  // its caller gave up (deadline): skip its rows, stop generating them
  std::condition_variable cv;
};

Batcher::Batcher(RunFn run, BatchingOptions options, std::shared_ptr<ModelMetrics> metrics)
    : run_(std::move(run)), options_(options), metrics_(std::move(metrics)), worker_([this] { Loop(); }) {}

Batcher::~Batcher() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  worker_.join();
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& row : queue_) Finish(*row.request, Unavailable("the model is being unloaded"));
  queue_.clear();
}

size_t Batcher::queue_depth() const {
  std::lock_guard<std::mutex> lock(mu_);
  return queue_.size();
}

void Batcher::Finish(Pending& p, const Status& error) {
  if (p.done) return;
  p.done = true;
  p.error = error;
  p.cv.notify_all();
}

Result<std::vector<json>> Batcher::Infer(std::vector<predict::ModelRow> rows, const predict::OutputOptions& options,
                                         Clock::time_point deadline) {
  if (rows.empty()) return std::vector<json>{};
  auto p = std::make_shared<Pending>();
  p->rows = std::move(rows);
  p->options = options;
  p->key = options.Key();
  p->enqueued = Clock::now();
  p->results.resize(p->rows.size());
  p->remaining = p->rows.size();
  std::unique_lock<std::mutex> lock(mu_);
  if (stopping_) return Unavailable("the model is being unloaded");
  if (static_cast<int64_t>(p->rows.size()) > options_.max_queue)  // would never fit: not worth a retry
    return InvalidArgument(std::to_string(p->rows.size()) + " inputs are more than this deployment queues (batching.max_queue " +
                               std::to_string(options_.max_queue) + "): send fewer a request",
                           "inputs");
  if (static_cast<int64_t>(queue_.size() + p->rows.size()) > options_.max_queue) {
    return ResourceExhausted("the model's queue is full (" + std::to_string(queue_.size()) + " inputs waiting, " +
                             std::to_string(options_.max_queue) + " allowed); retry shortly");
  }
  for (size_t i = 0; i < p->rows.size(); ++i) queue_.push_back({p, i});
  if (metrics_) metrics_->queue_depth = static_cast<int64_t>(queue_.size());
  wake_.notify_one();
  if (!p->cv.wait_until(lock, deadline, [&] { return p->done; })) {
    p->abandoned = true;  // its rows still queued are skipped; a generation running stops them
    return Status(StatusCode::kDeadlineExceeded, "the request timed out after waiting " +
                                                     std::to_string(static_cast<int64_t>(
                                                         Seconds(Clock::now() - p->enqueued) * 1000)) +
                                                     " ms for the model");
  }
  if (!p->error.ok()) return p->error;
  return std::move(p->results);
}

std::vector<std::vector<Batcher::Row>> Batcher::TakeBatches() {
  // The head's options decide which rows may share the passes; at most four passes' worth of
  // rows are taken at a time, so later arrivals are not starved.
  const std::string key = queue_.front().request->key;
  const size_t cap = static_cast<size_t>(options_.max_batch_size) * 4;
  std::vector<Row> taken;
  std::deque<Row> rest;
  for (auto& row : queue_) {
    if (row.request->abandoned || row.request->done) continue;
    if (row.request->key == key && taken.size() < cap) {
      taken.push_back(std::move(row));
    } else {
      rest.push_back(std::move(row));
    }
  }
  queue_ = std::move(rest);
  auto length = [](const Row& r) { return predict::RowCost(r.request->rows[r.index]); };
  std::stable_sort(taken.begin(), taken.end(), [&](const Row& a, const Row& b) { return length(a) > length(b); });
  std::vector<std::vector<Row>> batches;
  for (auto& row : taken) {
    if (batches.empty()) {
      batches.emplace_back();
    } else {
      // Rows are sorted costliest first: the batch's first row sets its padded cost.
      const auto& b = batches.back();
      const int64_t longest = std::max<int64_t>(1, length(b.front()));
      const int64_t n = static_cast<int64_t>(b.size()) + 1;
      const int64_t budget = std::holds_alternative<predict::ImageRow>(b.front().request->rows[b.front().index])
                                 ? options_.max_batch_pixels
                                 : options_.max_batch_tokens;
      if (n > options_.max_batch_size || n * longest > budget) batches.emplace_back();
    }
    batches.back().push_back(std::move(row));
  }
  return batches;
}

void Batcher::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (stopping_) return;
    // Wait for company: until the oldest row has waited max_delay, or a full pass is waiting.
    const auto oldest = queue_.front().request->enqueued;
    const auto until = oldest + std::chrono::microseconds(options_.max_delay_us);
    wake_.wait_until(lock, until, [&] {
      return stopping_ || static_cast<int64_t>(queue_.size()) >= options_.max_batch_size;
    });
    if (stopping_) return;
    if (queue_.empty()) continue;
    auto batches = TakeBatches();
    if (metrics_) metrics_->queue_depth = static_cast<int64_t>(queue_.size());
    for (auto& batch : batches) {
      // Rows of requests that gave up while earlier passes ran are dropped.
      std::erase_if(batch, [](const Row& r) { return r.request->abandoned || r.request->done; });
      if (batch.empty()) continue;
      std::vector<const predict::ModelRow*> rows;
      rows.reserve(batch.size());
      int64_t longest = 0;
      const auto start = Clock::now();
      for (const auto& r : batch) {
        rows.push_back(&r.request->rows[r.index]);
        longest = std::max(longest, predict::RowCost(r.request->rows[r.index]));
        if (metrics_) metrics_->queue_seconds.Observe(Seconds(start - r.request->enqueued));
      }
      const predict::OutputOptions options = batch.front().request->options;
      lock.unlock();  // the pass runs unlocked: requests keep queueing meanwhile
      Result<std::vector<json>> out = Internal("the forward pass did not run");
      try {
        out = run_(rows, options, [&batch](size_t i) { return !batch[i].request->abandoned; });
      } catch (const std::exception& e) {
        out = Internal(std::string("the forward pass failed: ") + e.what());
      } catch (...) {
        out = Internal("the forward pass failed");
      }
      const double compute = Seconds(Clock::now() - start);
      lock.lock();
      if (metrics_) {
        metrics_->compute_seconds.Observe(compute);
        metrics_->batch_size.Observe(static_cast<double>(batch.size()));
        const bool images = std::holds_alternative<predict::ImageRow>(*rows.front());
        (images ? metrics_->batch_pixels : metrics_->batch_tokens)
            .Observe(static_cast<double>(static_cast<int64_t>(batch.size()) * longest));
        metrics_->executions++;
        metrics_->inferences += batch.size();
      }
      for (size_t i = 0; i < batch.size(); ++i) {
        Pending& p = *batch[i].request;
        if (p.done) continue;
        if (!out.has_value()) {
          Finish(p, out.error());
          continue;
        }
        p.results[batch[i].index] = std::move((*out)[i]);
        if (--p.remaining == 0) Finish(p, Status::Ok());
      }
    }
  }
}

}  // namespace mlaas::serve
