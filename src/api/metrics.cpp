#include "api/metrics.h"

#include <cstdio>
#include <sstream>

namespace mlaas::api {

const std::vector<double>& Metrics::Buckets() {
  static const std::vector<double> kBuckets = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1,
                                               0.25,  0.5,   1,    2.5,   5,    10};
  return kBuckets;
}

void Metrics::Record(const std::string& method, const std::string& route, int status,
                     double seconds) {
  std::lock_guard lock(mu_);
  ++requests_[{route, method, status}];
  Histogram& h = latency_[{route, method}];
  if (h.counts.empty()) h.counts.assign(Buckets().size(), 0);
  for (size_t i = 0; i < Buckets().size(); ++i) {
    if (seconds <= Buckets()[i]) {
      ++h.counts[i];
      break;
    }
  }
  ++h.count;
  h.sum += seconds;
}

std::string Metrics::Render() const {
  std::lock_guard lock(mu_);
  std::ostringstream out;
  out << "# HELP mlaas_http_requests_total HTTP requests by route, method and status.\n"
      << "# TYPE mlaas_http_requests_total counter\n";
  for (const auto& [key, n] : requests_) {
    const auto& [route, method, status] = key;
    out << "mlaas_http_requests_total{route=\"" << PromEscape(route) << "\",method=\"" << method
        << "\",status=\"" << status << "\"} " << n << "\n";
  }
  out << "# HELP mlaas_http_request_duration_seconds Time to produce the response.\n"
      << "# TYPE mlaas_http_request_duration_seconds histogram\n";
  char num[64];
  for (const auto& [key, h] : latency_) {
    std::string labels = "route=\"" + PromEscape(key.first) + "\",method=\"" + key.second + "\"";
    uint64_t cumulative = 0;
    for (size_t i = 0; i < Buckets().size(); ++i) {
      cumulative += h.counts[i];
      std::snprintf(num, sizeof(num), "%g", Buckets()[i]);
      out << "mlaas_http_request_duration_seconds_bucket{" << labels << ",le=\"" << num << "\"} "
          << cumulative << "\n";
    }
    out << "mlaas_http_request_duration_seconds_bucket{" << labels << ",le=\"+Inf\"} " << h.count
        << "\n";
    std::snprintf(num, sizeof(num), "%.9g", h.sum);
    out << "mlaas_http_request_duration_seconds_sum{" << labels << "} " << num << "\n";
    out << "mlaas_http_request_duration_seconds_count{" << labels << "} " << h.count << "\n";
  }
  return out.str();
}

}  // namespace mlaas::api
