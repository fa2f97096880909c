#include "tasks/resources.h"

#include <gtest/gtest.h>

namespace mlaas::tasks {
namespace {

using nlohmann::json;

TEST(ResourcesTest, ReadsGpusAndLabelsSortedWithoutDuplicates) {
  auto none = ParseResources(json{{"model", {{"path", "m"}}}});
  ASSERT_TRUE(none.has_value());
  EXPECT_EQ(*none, metadata::TaskRequirements{});
  EXPECT_EQ(*ParseResources(json{{"resources", nullptr}}), metadata::TaskRequirements{});
  auto r = ParseResources(json{{"resources", {{"gpus", 2}, {"labels", {"eu-west", "a100", "eu-west"}}, {"workers", 4}}}});
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_EQ(r->gpus, 2);
  EXPECT_EQ(r->labels, (std::vector<std::string>{"a100", "eu-west"}));
  EXPECT_EQ(r->workers, 4);
}

TEST(ResourcesTest, RefusesMalformedBlocksNamingTheField) {
  const auto field = [](const json& resources) {
    auto r = ParseResources(json{{"resources", resources}});
    EXPECT_FALSE(r.has_value()) << resources.dump();
    return r.has_value() ? std::string("accepted") : r.error().field();
  };
  EXPECT_EQ(field(json::array()), "resources");
  EXPECT_EQ(field("gpu"), "resources");
  EXPECT_EQ(field({{"gpu", 1}}), "resources.gpu");
  EXPECT_EQ(field({{"gpus", -1}}), "resources.gpus");
  EXPECT_EQ(field({{"gpus", 1.5}}), "resources.gpus");
  EXPECT_EQ(field({{"gpus", "1"}}), "resources.gpus");
  EXPECT_EQ(field({{"gpus", 65}}), "resources.gpus");
  EXPECT_EQ(field({{"labels", "gpu"}}), "resources.labels");
  EXPECT_EQ(field({{"labels", {"ok", 3}}}), "resources.labels[1]");
  EXPECT_EQ(field({{"labels", {"ok", ""}}}), "resources.labels[1]");
  EXPECT_EQ(field({{"labels", {"has space"}}}), "resources.labels[0]");
  EXPECT_EQ(field({{"labels", {"-lead"}}}), "resources.labels[0]");
  EXPECT_EQ(field({{"labels", {std::string(64, 'a')}}}), "resources.labels[0]");
  EXPECT_EQ(field({{"labels", {"caf\xc3\xa9"}}}), "resources.labels[0]");
  EXPECT_EQ(field({{"labels", json(std::vector<std::string>(17, "x"))}}), "resources.labels");
  EXPECT_EQ(field({{"workers", 0}}), "resources.workers");
  EXPECT_EQ(field({{"workers", 1025}}), "resources.workers");
  EXPECT_EQ(field({{"workers", "2"}}), "resources.workers");
}

TEST(ResourcesTest, AWorkerOffersCpuGpuAndItsOwnLabels) {
  auto cpu = MakeCapabilities(0, {});
  ASSERT_TRUE(cpu.has_value());
  EXPECT_EQ(cpu->labels, (std::vector<std::string>{"cpu"}));
  auto gpu = MakeCapabilities(2, {"a100", "cpu", "a100"});
  ASSERT_TRUE(gpu.has_value());
  EXPECT_EQ(gpu->gpus, 2);
  EXPECT_EQ(gpu->labels, (std::vector<std::string>{"a100", "cpu", "gpu"}));
  auto bad = MakeCapabilities(0, {"ok", "not ok"});
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().field(), "labels");
}

}  // namespace
}  // namespace mlaas::tasks
