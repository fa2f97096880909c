#include "serve/batcher.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <thread>

namespace mlaas::serve {
namespace {

using json = nlohmann::json;
using Clock = Batcher::Clock;

predict::ModelRow Row(std::vector<uint32_t> ids) {
  tokenizers::Encoding e;
  e.type_ids.assign(ids.size(), 0);
  e.ids = std::move(ids);
  return e;
}

// An image row of `side` x `side` gray pixels, all `value`.
predict::ModelRow Image(int64_t side, float value) {
  return predict::ImageRow{std::vector<float>(static_cast<size_t>(side * side), value), 1, side, side};
}

// A forward pass that echoes each row's ids and records the passes it saw.
struct Recorder {
  std::mutex mu;
  std::vector<std::vector<size_t>> passes;  // row lengths per pass
  std::vector<std::string> keys;
  RunFn Fn() {
    return [this](const std::vector<const predict::ModelRow*>& rows, const predict::OutputOptions& o,
                  const predict::ServableModel::RowWanted&) {
      std::vector<json> out;
      std::vector<size_t> lengths;
      for (const auto* r : rows) {
        if (const auto* e = std::get_if<tokenizers::Encoding>(r)) {
          out.push_back({{"ids", e->ids}, {"options", o.Key()}});
        } else {
          out.push_back({{"first_pixel", std::get<predict::ImageRow>(*r).pixels[0]}, {"options", o.Key()}});
        }
        lengths.push_back(static_cast<size_t>(predict::RowCost(*r)));
      }
      std::lock_guard<std::mutex> lock(mu);
      passes.push_back(lengths);
      keys.push_back(o.Key());
      return Result<std::vector<json>>(out);
    };
  }
};

Clock::time_point In(int ms) { return Clock::now() + std::chrono::milliseconds(ms); }

TEST(BatcherTest, CoalescesConcurrentRequestsAndAnswersEachItsOwnRows) {
  Recorder rec;
  BatchingOptions o;
  o.max_delay_us = 50'000;  // long enough for every thread to arrive
  auto metrics = std::make_shared<ModelMetrics>();
  Batcher b(rec.Fn(), o, metrics);
  constexpr int kThreads = 16;
  std::vector<std::future<Result<std::vector<json>>>> results;
  for (int i = 0; i < kThreads; ++i) {
    results.push_back(std::async(std::launch::async, [&, i] {
      return b.Infer({Row({1, static_cast<uint32_t>(100 + i)}), Row({2, static_cast<uint32_t>(200 + i), 3})}, {}, In(10'000));
    }));
  }
  for (int i = 0; i < kThreads; ++i) {
    auto r = results[i].get();
    ASSERT_TRUE(r.has_value()) << r.error().ToString();
    ASSERT_EQ(r->size(), 2u);
    EXPECT_EQ((*r)[0]["ids"], json({1, 100 + i}));
    EXPECT_EQ((*r)[1]["ids"], json({2, 200 + i, 3}));
  }
  std::lock_guard<std::mutex> lock(rec.mu);
  EXPECT_LT(rec.passes.size(), static_cast<size_t>(kThreads));  // fewer passes than requests
  size_t rows = 0;
  for (const auto& p : rec.passes) rows += p.size();
  EXPECT_EQ(rows, 2u * kThreads);
  EXPECT_EQ(metrics->inferences.load(), 2u * kThreads);
  EXPECT_EQ(metrics->executions.load(), rec.passes.size());
}

TEST(BatcherTest, PassesStayWithinTheTokenBudgetAndGroupSimilarLengths) {
  Recorder rec;
  BatchingOptions o;
  o.max_batch_tokens = 20;  // padded tokens: rows x longest
  o.max_batch_size = 8;
  o.max_delay_us = 0;
  Batcher b(rec.Fn(), o);
  std::vector<predict::ModelRow> rows;
  const std::vector<size_t> lengths = {10, 1, 9, 2, 10, 1, 3, 9};
  for (size_t n : lengths) rows.push_back(Row(std::vector<uint32_t>(n, static_cast<uint32_t>(n))));
  auto r = b.Infer(rows, {}, In(10'000));
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  for (size_t i = 0; i < lengths.size(); ++i) EXPECT_EQ((*r)[i]["ids"].size(), lengths[i]) << i;  // back in order
  std::lock_guard<std::mutex> lock(rec.mu);
  size_t padded = 0;
  for (const auto& p : rec.passes) {
    const size_t longest = *std::max_element(p.begin(), p.end());
    EXPECT_LE(p.size() * longest, 20u);
    padded += p.size() * longest;
  }
  // Sorted by length: {10,10}, {9,9}, {3,2,1,1} pad to 20 + 18 + 12 = 50 tokens.
  EXPECT_EQ(padded, 50u);
}

// Image rows are batched within the pixel budget (rows x pixels per image), answered in order.
TEST(BatcherTest, ImagePassesStayWithinThePixelBudget) {
  Recorder rec;
  BatchingOptions o;
  o.max_batch_pixels = 3 * 16 * 16;  // three 16 x 16 images per pass
  o.max_batch_size = 64;
  o.max_batch_tokens = 1;            // a text budget that would allow one row: not the one applied
  auto metrics = std::make_shared<ModelMetrics>();
  Batcher b(rec.Fn(), o, metrics);
  std::vector<predict::ModelRow> rows;
  for (int i = 0; i < 7; ++i) rows.push_back(Image(16, static_cast<float>(i)));
  auto r = b.Infer(rows, {}, In(10'000));
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  for (int i = 0; i < 7; ++i) EXPECT_EQ((*r)[static_cast<size_t>(i)]["first_pixel"], static_cast<float>(i));
  std::lock_guard<std::mutex> lock(rec.mu);
  ASSERT_EQ(rec.passes.size(), 3u);  // 3 + 3 + 1
  for (const auto& p : rec.passes) EXPECT_LE(p.size() * 256, 768u);
  // Image passes are counted in pixels, not in tokens.
  std::string out;
  RenderModelMetrics(out, {{"img", "1", metrics.get()}});
  EXPECT_NE(out.find("mlaas_inference_batch_pixels_count{model=\"img\",version=\"1\"} 3"), std::string::npos) << out;
  EXPECT_NE(out.find("mlaas_inference_batch_pixels_sum{model=\"img\",version=\"1\"} 1792"), std::string::npos) << out;
  EXPECT_NE(out.find("mlaas_inference_batch_tokens_count{model=\"img\",version=\"1\"} 0"), std::string::npos) << out;
}

TEST(BatcherTest, RequestsWithOtherOptionsDoNotShareAPass) {
  Recorder rec;
  BatchingOptions o;
  o.max_delay_us = 50'000;
  Batcher b(rec.Fn(), o);
  predict::OutputOptions top3;
  top3.top_k = 3;
  auto a = std::async(std::launch::async, [&] { return b.Infer({Row({1})}, {}, In(10'000)); });
  auto c = std::async(std::launch::async, [&] { return b.Infer({Row({2})}, top3, In(10'000)); });
  auto ra = a.get(), rc = c.get();
  ASSERT_TRUE(ra.has_value() && rc.has_value());
  EXPECT_EQ((*ra)[0]["options"], predict::OutputOptions{}.Key());
  EXPECT_EQ((*rc)[0]["options"], top3.Key());
  std::lock_guard<std::mutex> lock(rec.mu);
  EXPECT_EQ(rec.passes.size(), 2u);
}

// A forward pass that blocks until released.
struct Gate {
  std::mutex mu;
  std::condition_variable cv;
  bool open = false;
  std::atomic<int> entered{0};
  RunFn Fn() {
    return [this](const std::vector<const predict::ModelRow*>& rows, const predict::OutputOptions&,
                  const predict::ServableModel::RowWanted&) {
      ++entered;
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return open; });
      return Result<std::vector<json>>(std::vector<json>(rows.size(), json("done")));
    };
  }
  void Open() {
    std::lock_guard<std::mutex> lock(mu);
    open = true;
    cv.notify_all();
  }
};

void WaitFor(const std::function<bool()>& cond) {
  for (int i = 0; i < 500 && !cond(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_TRUE(cond());
}

TEST(BatcherTest, AFullQueueRefusesInsteadOfGrowing) {
  Gate gate;
  BatchingOptions o;
  o.max_queue = 4;
  o.max_delay_us = 0;
  o.max_batch_size = 1;
  Batcher b(gate.Fn(), o);
  auto first = std::async(std::launch::async, [&] { return b.Infer({Row({1})}, {}, In(10'000)); });
  WaitFor([&] { return gate.entered == 1; });  // the worker is busy with the first row
  auto queued = std::async(std::launch::async, [&] { return b.Infer({Row({1}), Row({2}), Row({3})}, {}, In(10'000)); });
  WaitFor([&] { return b.queue_depth() == 3; });
  auto refused = b.Infer({Row({1}), Row({2})}, {}, In(10'000));  // 3 + 2 > 4
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code(), StatusCode::kResourceExhausted);
  // More inputs than the queue ever holds: no retry would help.
  auto never = b.Infer({Row({1}), Row({2}), Row({3}), Row({4}), Row({5})}, {}, In(10'000));
  ASSERT_FALSE(never.has_value());
  EXPECT_EQ(never.error().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(never.error().field(), "inputs");
  gate.Open();
  EXPECT_TRUE(first.get().has_value());
  EXPECT_TRUE(queued.get().has_value());
  EXPECT_TRUE(b.Infer({Row({1}), Row({2})}, {}, In(10'000)).has_value());  // room again
}

TEST(BatcherTest, ARequestPastItsDeadlineTimesOutAndItsRowsAreSkipped) {
  Gate gate;
  BatchingOptions o;
  o.max_delay_us = 0;
  o.max_batch_size = 1;
  Batcher b(gate.Fn(), o);
  auto first = std::async(std::launch::async, [&] { return b.Infer({Row({1})}, {}, In(10'000)); });
  WaitFor([&] { return gate.entered == 1; });
  const auto t0 = Clock::now();
  auto late = b.Infer({Row({2}), Row({3})}, {}, In(100));
  ASSERT_FALSE(late.has_value());
  EXPECT_EQ(late.error().code(), StatusCode::kDeadlineExceeded);
  EXPECT_GE(Clock::now() - t0, std::chrono::milliseconds(100));
  gate.Open();
  EXPECT_TRUE(first.get().has_value());
  EXPECT_TRUE(b.Infer({Row({4})}, {}, In(10'000)).has_value());
  EXPECT_EQ(gate.entered.load(), 2);  // the timed-out rows never ran
}

// A pass that runs long (a generation) learns that its request gave up and can stop: the
// compute thread is not held for nobody.
TEST(BatcherTest, ARunningPassLearnsThatItsRequestGaveUp) {
  std::atomic<int> steps_run = -1;
  BatchingOptions o;
  o.max_delay_us = 0;
  Batcher b(
      [&](const std::vector<const predict::ModelRow*>& rows, const predict::OutputOptions&,
          const predict::ServableModel::RowWanted& wanted) {
        int step = 0;
        for (; step < 1000 && wanted(0); ++step) std::this_thread::sleep_for(std::chrono::milliseconds(10));
        steps_run = step;
        return Result<std::vector<json>>(std::vector<json>(rows.size(), json("cut short")));
      },
      o);
  auto late = b.Infer({Row({1})}, {}, In(100));
  ASSERT_FALSE(late.has_value());
  EXPECT_EQ(late.error().code(), StatusCode::kDeadlineExceeded);
  WaitFor([&] { return steps_run >= 0; });
  EXPECT_LT(steps_run.load(), 1000);  // stopped when its request gave up, not after all its steps
}

TEST(BatcherTest, AFailedPassFailsEveryRequestInIt) {
  BatchingOptions o;
  o.max_delay_us = 50'000;
  Batcher b([](const std::vector<const predict::ModelRow*>&, const predict::OutputOptions&,
               const predict::ServableModel::RowWanted&) -> Result<std::vector<json>> {
    return Internal("out of memory");
  }, o);
  auto a = std::async(std::launch::async, [&] { return b.Infer({Row({1})}, {}, In(10'000)); });
  auto c = std::async(std::launch::async, [&] { return b.Infer({Row({2})}, {}, In(10'000)); });
  auto ra = a.get(), rc = c.get();
  ASSERT_FALSE(ra.has_value());
  ASSERT_FALSE(rc.has_value());
  EXPECT_EQ(ra.error().message(), "out of memory");
}

TEST(BatcherTest, OptionsParseAndNameTheField) {
  auto o = BatchingOptions::FromJson({{"max_batch_tokens", 4096}, {"max_delay_us", 0}}, "batching");
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->max_batch_tokens, 4096);
  EXPECT_EQ(o->max_delay_us, 0);
  EXPECT_EQ(o->max_batch_size, BatchingOptions{}.max_batch_size);
  auto bad = BatchingOptions::FromJson({{"max_batch_size", 0}}, "batching");
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().field(), "batching.max_batch_size");
  auto unknown = BatchingOptions::FromJson({{"max_batch", 3}}, "batching");
  ASSERT_FALSE(unknown.has_value());
  EXPECT_EQ(unknown.error().field(), "batching.max_batch");
  EXPECT_FALSE(BatchingOptions::FromJson({{"timeout_ms", "3"}}, "batching").has_value());
}

TEST(ServeMetricsTest, RendersContiguousFamiliesPerModelVersion) {
  ModelMetrics a, b;
  a.success = 3;
  a.request_seconds.Observe(0.002);
  b.failure_queue = 1;
  std::string out;
  RenderModelMetrics(out, {{"m1", "1", &a}, {"m2", "7", &b}});
  EXPECT_NE(out.find("mlaas_inference_request_success_total{model=\"m1\",version=\"1\"} 3"), std::string::npos);
  EXPECT_NE(out.find("mlaas_inference_request_failure_total{model=\"m2\",version=\"7\",reason=\"queue_full\"} 1"),
            std::string::npos);
  EXPECT_NE(out.find("mlaas_inference_request_duration_seconds_bucket{model=\"m1\",version=\"1\",le=\"0.0025\"} 1"),
            std::string::npos);
  // Each family's TYPE line appears once, and its series follow it before the next family.
  size_t first = out.find("# TYPE mlaas_inference_request_success_total");
  EXPECT_EQ(out.find("# TYPE mlaas_inference_request_success_total", first + 1), std::string::npos);
  size_t m2 = out.find("mlaas_inference_request_success_total{model=\"m2\"");
  EXPECT_LT(m2, out.find("# TYPE mlaas_inference_request_failure_total"));
  EXPECT_GT(ResidentBytes(), 0u);
}

}  // namespace
}  // namespace mlaas::serve
