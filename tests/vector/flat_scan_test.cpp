#include "vector/flat_scan.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

namespace mlaas::vector {
namespace {

using idx_t = faiss::Index::idx_t;

std::vector<float> Random(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d;
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

TEST(FlatScanTest, KernelsAgreeWithPlainArithmeticForEveryLength) {
  SCOPED_TRACE("kernels: " + KernelName());
  for (size_t d : {1, 3, 8, 15, 16, 17, 31, 32, 33, 64, 100, 256, 384, 1000}) {
    const auto a = Random(d, 1 + static_cast<uint32_t>(d)), b = Random(d, 1000 + static_cast<uint32_t>(d));
    double l2 = 0, ip = 0;
    for (size_t i = 0; i < d; ++i) {
      l2 += (double{a[i]} - b[i]) * (double{a[i]} - b[i]);
      ip += double{a[i]} * b[i];
    }
    EXPECT_NEAR(L2Sqr(a.data(), b.data(), d), l2, 1e-4 * (1 + l2)) << "d=" << d;
    EXPECT_NEAR(InnerProduct(a.data(), b.data(), d), ip, 1e-4 * (1 + std::abs(ip) + d)) << "d=" << d;
  }
}

TEST(FlatScanTest, SearchReturnsWhatFaissFlatReturns) {
  for (auto metric : {faiss::METRIC_L2, faiss::METRIC_INNER_PRODUCT}) {
    for (size_t d : {7, 64}) {
      const size_t n = 3000, k = 10;
      const auto base = Random(n * d, 7), queries = Random(25 * d, 8);
      faiss::IndexFlat reference(static_cast<idx_t>(d), metric);
      reference.add(static_cast<idx_t>(n), base.data());
      FastFlatIndex fast(static_cast<idx_t>(d), metric);
      fast.add(static_cast<idx_t>(n), base.data());
      // 1 and 7 queries take our scan; 25 take FAISS's BLAS path.
      for (size_t nq : {1, 7, 25}) {
        std::vector<float> want_d(nq * k), got_d(nq * k);
        std::vector<idx_t> want_l(nq * k), got_l(nq * k);
        reference.search(static_cast<idx_t>(nq), queries.data(), static_cast<idx_t>(k), want_d.data(), want_l.data());
        fast.search(static_cast<idx_t>(nq), queries.data(), static_cast<idx_t>(k), got_d.data(), got_l.data());
        EXPECT_EQ(got_l, want_l) << "metric " << metric << " d " << d << " nq " << nq;
        for (size_t i = 0; i < nq * k; ++i) EXPECT_NEAR(got_d[i], want_d[i], 1e-3f * (1 + std::abs(want_d[i])));
      }
    }
  }
}

TEST(FlatScanTest, FewerVectorsThanKArePaddedLikeFaiss) {
  const size_t d = 4;
  const auto base = Random(3 * d, 3), query = Random(d, 4);
  std::vector<float> dist(5);
  std::vector<idx_t> labels(5);
  FlatSearch(base.data(), 3, d, faiss::METRIC_L2, query.data(), 1, 5, dist.data(), labels.data());
  EXPECT_NE(labels[2], -1);
  EXPECT_EQ(labels[3], -1);
  EXPECT_EQ(labels[4], -1);
  EXPECT_TRUE(std::isinf(dist[4]) && dist[4] > 0);
  EXPECT_LE(dist[0], dist[1]);
  EXPECT_LE(dist[1], dist[2]);
  FlatSearch(base.data(), 3, d, faiss::METRIC_L2, query.data(), 1, 0, dist.data(), labels.data());  // k 0: nothing
  FlatSearch(base.data(), 0, d, faiss::METRIC_INNER_PRODUCT, query.data(), 1, 2, dist.data(), labels.data());
  EXPECT_EQ(labels[0], -1);
  EXPECT_TRUE(std::isinf(dist[0]) && dist[0] < 0);
}

TEST(FlatScanTest, HnswComputerMatchesTheKernelsAndSurvivesTheTrip) {
  const size_t d = 32, n = 100;
  const auto base = Random(n * d, 5);
  faiss::IndexFlat plain(static_cast<idx_t>(d), faiss::METRIC_L2);
  plain.add(static_cast<idx_t>(n), base.data());
  auto fast = ToFastFlat(plain);
  EXPECT_EQ(plain.ntotal, 0);
  ASSERT_EQ(fast->ntotal, static_cast<idx_t>(n));
  std::unique_ptr<faiss::DistanceComputer> dc(fast->get_distance_computer());
  dc->set_query(base.data() + 5 * d);
  EXPECT_NEAR((*dc)(7), L2Sqr(base.data() + 5 * d, base.data() + 7 * d, d), 1e-4);
  EXPECT_FLOAT_EQ((*dc)(5), 0.0f);
  EXPECT_NEAR(dc->symmetric_dis(3, 9), L2Sqr(base.data() + 3 * d, base.data() + 9 * d, d), 1e-4);
}

}  // namespace
}  // namespace mlaas::vector
