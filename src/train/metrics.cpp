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

namespace {

// A tag's prefix letter and type: "B-PER" -> ('B', "PER"), "O" -> ('O', "_"). A tag without a
// prefix ("PER") is read as an I of its own type. (seqeval reads it as prefix 'P', type "ER":
// the same entities for tags all with or all without prefixes, not for a mix such as B-PER PER.)
std::pair<char, std::string> SplitTag(const std::string& tag) {
  if (tag.empty() || tag == "O") return {'O', "_"};
  const size_t dash = tag.find('-');
  if (dash == 1) {
    char p = tag[0];
    if (p != 'B' && p != 'I' && p != 'E' && p != 'S') p = 'I';
    return {p, tag.substr(2).empty() ? "_" : tag.substr(2)};
  }
  return {'I', tag};
}

bool EndOfChunk(char prev, char tag, const std::string& prev_type, const std::string& type) {
  if (prev == 'E' || prev == 'S') return true;
  if ((prev == 'B' || prev == 'I') && (tag == 'B' || tag == 'S' || tag == 'O')) return true;
  return prev != 'O' && prev_type != type;
}

bool StartOfChunk(char prev, char tag, const std::string& prev_type, const std::string& type) {
  if (tag == 'B' || tag == 'S') return true;
  if ((prev == 'E' || prev == 'S' || prev == 'O') && (tag == 'E' || tag == 'I')) return true;
  return tag != 'O' && prev_type != type;
}

double Ratio(int64_t a, int64_t b) { return b > 0 ? static_cast<double>(a) / static_cast<double>(b) : 0.0; }
double F1Of(double p, double r) { return p + r > 0 ? 2 * p * r / (p + r) : 0.0; }

}  // namespace

std::vector<TaggedEntity> ExtractEntities(const std::vector<std::string>& tags) {
  std::vector<TaggedEntity> out;
  char prev = 'O';
  std::string prev_type = "_";
  size_t begin = 0;
  for (size_t i = 0; i <= tags.size(); ++i) {
    auto [tag, type] = i < tags.size() ? SplitTag(tags[i]) : std::pair<char, std::string>{'O', "_"};
    if (EndOfChunk(prev, tag, prev_type, type) && prev != 'O') out.push_back({prev_type, begin, i});
    if (StartOfChunk(prev, tag, prev_type, type) && tag != 'O') begin = i;
    prev = tag;
    prev_type = type;
  }
  return out;
}

void EntityScorer::Add(const std::vector<std::string>& truth, const std::vector<std::string>& predicted) {
  const auto t = ExtractEntities(truth), p = ExtractEntities(predicted);
  for (const auto& e : t) ++per_type_[e.type].truth;
  for (const auto& e : p) ++per_type_[e.type].predicted;
  // Both lists are in sequence order and hold no span twice: a merge finds the common ones.
  size_t i = 0, j = 0;
  while (i < t.size() && j < p.size()) {
    if (t[i] == p[j]) {
      ++per_type_[t[i].type].correct;
      ++i, ++j;
    } else if (std::tie(t[i].begin, t[i].end, t[i].type) < std::tie(p[j].begin, p[j].end, p[j].type)) {
      ++i;
    } else {
      ++j;
    }
  }
  all_ = Counts();
  for (const auto& [type, c] : per_type_) {
    all_.truth += c.truth;
    all_.predicted += c.predicted;
    all_.correct += c.correct;
  }
  for (size_t k = 0; k < truth.size() && k < predicted.size(); ++k) tags_right_ += truth[k] == predicted[k];
  tags_ += static_cast<int64_t>(truth.size());
}

double EntityScorer::Precision() const { return Ratio(all_.correct, all_.predicted); }
double EntityScorer::Recall() const { return Ratio(all_.correct, all_.truth); }
double EntityScorer::F1() const { return F1Of(Precision(), Recall()); }
double EntityScorer::Accuracy() const { return Ratio(tags_right_, tags_); }

nlohmann::json EntityScorer::ToJson() const {
  nlohmann::json types = nlohmann::json::object();
  for (const auto& [type, c] : per_type_) {
    const double p = Ratio(c.correct, c.predicted), r = Ratio(c.correct, c.truth);
    types[type] = {{"precision", p}, {"recall", r}, {"f1", F1Of(p, r)}, {"support", c.truth}};
  }
  return {{"precision", Precision()}, {"recall", Recall()}, {"f1", F1()}, {"accuracy", Accuracy()},
          {"per_type", std::move(types)}};
}

}  // namespace mlaas::train
