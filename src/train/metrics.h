// mlaas::train — evaluation metrics of classification: accuracy, macro-F1, per-class
// precision/recall/F1 and the confusion matrix. No libtorch here.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace mlaas::train {

class ConfusionMatrix {
 public:
  explicit ConfusionMatrix(size_t classes) : n_(classes), counts_(classes * classes, 0) {}
  void Add(int64_t truth, int64_t predicted) {
    counts_[static_cast<size_t>(truth) * n_ + static_cast<size_t>(predicted)] += 1;
  }
  int64_t total() const;
  double Accuracy() const;
  // Mean of the per-class F1 over the classes present in the truth or the predictions.
  double MacroF1() const;
  // {"accuracy", "macro_f1", "per_class": {label: {precision, recall, f1, support}},
  //  "confusion_matrix": {"labels": [...], "matrix": [[truth x predicted]]}}
  nlohmann::json ToJson(const std::vector<std::string>& labels) const;

 private:
  int64_t At(size_t t, size_t p) const { return counts_[t * n_ + p]; }
  size_t n_;
  std::vector<int64_t> counts_;
};

}  // namespace mlaas::train
