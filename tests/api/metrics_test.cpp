#include "api/metrics.h"

#include <gtest/gtest.h>

namespace mlaas::api {
namespace {

TEST(MetricsTest, CountsAndHistogramsPerRoute) {
  Metrics m;
  m.Record("GET", "/api/v1/tasks/{id}", 200, 0.002);
  m.Record("GET", "/api/v1/tasks/{id}", 200, 0.2);
  m.Record("GET", "/api/v1/tasks/{id}", 404, 0.0005);
  std::string text = m.Render();
  EXPECT_NE(text.find("mlaas_http_requests_total{route=\"/api/v1/tasks/{id}\",method=\"GET\","
                      "status=\"200\"} 2"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("status=\"404\"} 1"), std::string::npos);
  // Buckets are cumulative: 1 request <= 1 ms, 2 <= 5 ms, 3 <= 250 ms.
  const std::string labels = "route=\"/api/v1/tasks/{id}\",method=\"GET\"";
  EXPECT_NE(text.find("_bucket{" + labels + ",le=\"0.001\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("_bucket{" + labels + ",le=\"0.005\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("_bucket{" + labels + ",le=\"0.25\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("_bucket{" + labels + ",le=\"+Inf\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("_count{" + labels + "} 3\n"), std::string::npos);
}

TEST(MetricsTest, EscapesLabelValues) {
  EXPECT_EQ(PromEscape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
}

}  // namespace
}  // namespace mlaas::api
