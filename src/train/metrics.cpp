#include "train/metrics.h"

#include <numeric>

namespace mlaas::train {

int64_t ConfusionMatrix::total() const { return std::accumulate(counts_.begin(), counts_.end(), int64_t{0}); }

double ConfusionMatrix::Accuracy() const {
  int64_t right = 0;
  for (size_t i = 0; i < n_; ++i) right += At(i, i);
  const int64_t all = total();
  return all ? static_cast<double>(right) / static_cast<double>(all) : 0.0;
}

namespace {

struct ClassScores {
  double precision = 0, recall = 0, f1 = 0;
  int64_t support = 0, predicted = 0;
};

}  // namespace

static ClassScores Scores(const std::vector<int64_t>& counts, size_t n, size_t c) {
  ClassScores s;
  const int64_t tp = counts[c * n + c];
  for (size_t k = 0; k < n; ++k) {
    s.support += counts[c * n + k];
    s.predicted += counts[k * n + c];
  }
  s.precision = s.predicted ? static_cast<double>(tp) / static_cast<double>(s.predicted) : 0.0;
  s.recall = s.support ? static_cast<double>(tp) / static_cast<double>(s.support) : 0.0;
  s.f1 = s.precision + s.recall > 0 ? 2 * s.precision * s.recall / (s.precision + s.recall) : 0.0;
  return s;
}

double ConfusionMatrix::MacroF1() const {
  double sum = 0;
  int64_t classes = 0;
  for (size_t c = 0; c < n_; ++c) {
    ClassScores s = Scores(counts_, n_, c);
    if (s.support == 0 && s.predicted == 0) continue;
    sum += s.f1;
    ++classes;
  }
  return classes ? sum / static_cast<double>(classes) : 0.0;
}

nlohmann::json ConfusionMatrix::ToJson(const std::vector<std::string>& labels) const {
  nlohmann::json per_class = nlohmann::json::object();
  nlohmann::json matrix = nlohmann::json::array();
  for (size_t c = 0; c < n_; ++c) {
    ClassScores s = Scores(counts_, n_, c);
    const std::string name = c < labels.size() ? labels[c] : std::to_string(c);
    per_class[name] = {{"precision", s.precision}, {"recall", s.recall}, {"f1", s.f1}, {"support", s.support}};
    nlohmann::json row = nlohmann::json::array();
    for (size_t p = 0; p < n_; ++p) row.push_back(At(c, p));
    matrix.push_back(std::move(row));
  }
  return {{"accuracy", Accuracy()},
          {"macro_f1", MacroF1()},
          {"per_class", per_class},
          {"confusion_matrix", {{"labels", labels}, {"matrix", matrix}}}};
}

}  // namespace mlaas::train
