// mlaas::train — evaluation metrics of classification (accuracy, macro-F1, per-class
// precision/recall/F1 and the confusion matrix) and of token classification (entity-level
// scores as seqeval computes them). No libtorch here.
#pragma once

#include <cstdint>
#include <map>
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

// An entity of a tagged sequence: its type and its tokens [begin, end).
struct TaggedEntity {
  std::string type;
  size_t begin = 0, end = 0;
  bool operator==(const TaggedEntity&) const = default;
  auto operator<=>(const TaggedEntity&) const = default;
};

// The entities of a tag sequence as seqeval's default (conlleval) mode reads them: a tag is
// "O", or a prefix letter (B, I, E, S; anything else counts as I) followed by "-TYPE"; an
// entity starts at B or S, at an I or E after O or after another type, and ends before O, B,
// S, a type change, or after E and S. A tag without a prefix ("PER") is an I of its own type.
std::vector<TaggedEntity> ExtractEntities(const std::vector<std::string>& tags);

// Entity-level precision, recall and F1 over many sequences (micro-averaged: an entity counts
// as found when its type and its span both match), per type, and the tag accuracy.
class EntityScorer {
 public:
  // One sequence: its true and predicted tags (the same length).
  void Add(const std::vector<std::string>& truth, const std::vector<std::string>& predicted);
  double Precision() const;
  double Recall() const;
  double F1() const;
  double Accuracy() const;
  // {"precision", "recall", "f1", "accuracy", "per_type": {type: {precision, recall, f1, support}}}
  nlohmann::json ToJson() const;

 private:
  struct Counts {
    int64_t truth = 0, predicted = 0, correct = 0;
  };
  std::map<std::string, Counts> per_type_;
  Counts all_;
  int64_t tags_ = 0, tags_right_ = 0;
};

}  // namespace mlaas::train
