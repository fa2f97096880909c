// The process's one model cache: least recently used out by count and by weight bytes, one
// load for concurrent askers, failures not kept.
#include "predict/model_cache.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <thread>

namespace mlaas::predict {
namespace {

class FakeModel final : public ServableModel {
 public:
  explicit FakeModel(uint64_t bytes) : ServableModel(Modality::kText) { info_.parameter_bytes = bytes; }
  Result<std::vector<nlohmann::json>> Run(const std::vector<const ModelRow*>&, const OutputOptions&,
                                          RunStats*) const override {
    return std::vector<nlohmann::json>{};
  }
};

std::function<Result<LoadedPtr>()> Loader(uint64_t bytes, std::atomic<int>* loads = nullptr) {
  return [bytes, loads]() -> Result<LoadedPtr> {
    if (loads) ++*loads;
    return LoadedPtr(std::make_shared<FakeModel>(bytes));
  };
}

TEST(ModelCacheTest, EvictsTheLeastRecentlyUsedByCountAndByBytes) {
  ModelCache cache(2, 1000);
  ASSERT_TRUE(cache.Get("a", Loader(100)).has_value());
  ASSERT_TRUE(cache.Get("b", Loader(100)).has_value());
  ASSERT_TRUE(cache.Get("a", Loader(100)).has_value());  // a is now the most recent
  ASSERT_TRUE(cache.Get("c", Loader(100)).has_value());  // b goes
  auto s = cache.Stats();
  EXPECT_EQ(s.models, 2u);
  EXPECT_EQ(s.hits, 1u);
  EXPECT_EQ(s.evictions, 1u);
  std::atomic<int> loads{0};
  ASSERT_TRUE(cache.Get("a", Loader(100, &loads)).has_value());
  EXPECT_EQ(loads, 0);  // still there
  ASSERT_TRUE(cache.Get("big", Loader(950)).has_value());  // over the byte budget with the others: they go
  s = cache.Stats();
  EXPECT_EQ(s.models, 1u);
  EXPECT_EQ(s.bytes, 950u);
}

TEST(ModelCacheTest, ConcurrentAskersShareOneLoadAndFailuresAreNotKept) {
  ModelCache cache(4, 0);
  std::atomic<int> loads{0};
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  auto slow = [&]() -> Result<LoadedPtr> {
    ++loads;
    released.wait();
    return LoadedPtr(std::make_shared<FakeModel>(10));
  };
  std::vector<std::future<Result<LoadedPtr>>> askers;
  for (int i = 0; i < 6; ++i) askers.push_back(std::async(std::launch::async, [&] { return cache.Get("m", slow); }));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  release.set_value();
  LoadedPtr first;
  for (auto& a : askers) {
    auto r = a.get();
    ASSERT_TRUE(r.has_value());
    if (!first) first = *r;
    EXPECT_EQ(r->get(), first.get());  // the same model for everyone
  }
  EXPECT_EQ(loads, 1);
  auto failed = cache.Get("bad", []() -> Result<LoadedPtr> { return InvalidArgument("no such model", "model.path"); });
  EXPECT_FALSE(failed.has_value());
  std::atomic<int> retried{0};
  EXPECT_TRUE(cache.Get("bad", Loader(10, &retried)).has_value());  // a failure is not remembered
  EXPECT_EQ(retried, 1);
}

}  // namespace
}  // namespace mlaas::predict
