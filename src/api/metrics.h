// Prometheus metrics of the HTTP API: requests by route/method/status and a latency
// histogram per route. Thread-safe.
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

#include "common/prometheus.h"

namespace mlaas::api {

class Metrics {
 public:
  // Bucket upper bounds of the latency histogram, in seconds.
  static const std::vector<double>& Buckets();

  // `route` is the route pattern ("/api/v1/tasks/{id}"), never the raw path, so that the
  // number of series stays bounded.
  void Record(const std::string& method, const std::string& route, int status, double seconds);

  // The request metrics in the Prometheus text exposition format (version 0.0.4).
  std::string Render() const;

 private:
  struct Histogram {
    std::vector<uint64_t> counts;  // per bucket, not cumulative
    uint64_t count = 0;
    double sum = 0;
  };
  mutable std::mutex mu_;
  std::map<std::tuple<std::string, std::string, int>, uint64_t> requests_;
  std::map<std::pair<std::string, std::string>, Histogram> latency_;
};

}  // namespace mlaas::api
