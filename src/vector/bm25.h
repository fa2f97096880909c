// BM25 lexical scoring over a fixed set of documents (Okapi BM25 with Lucene's idf,
// k1 = 1.2, b = 0.75; a query term counts once however often it repeats). Terms are runs of
// two or more Unicode word characters (letters, marks, digits, underscore), lower-cased — as
// scikit-learn CountVectorizer's default, which the data's BM25 baseline uses.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace mlaas::vector {

std::vector<std::string> LexicalTerms(std::string_view text);

class Bm25Index {
 public:
  // Documents are numbered by their position in `texts`.
  explicit Bm25Index(const std::vector<std::string_view>& texts, float k1 = 1.2f, float b = 0.75f);

  // The k best documents for `query` (score > 0 only), best first; `keep(doc)` (optional)
  // filters candidates.
  std::vector<std::pair<uint32_t, float>> Search(std::string_view query, size_t k,
                                                 const std::function<bool(uint32_t)>& keep = {}) const;
  size_t size() const { return doc_length_.size(); }
  size_t terms() const { return postings_.size(); }

 private:
  struct Posting {
    uint32_t doc;
    float weight;  // tf (k1 + 1) / (tf + k1 (1 - b + b dl / avgdl)), idf applied at query time
  };
  std::unordered_map<std::string, uint32_t> term_id_;
  std::vector<std::vector<Posting>> postings_;
  std::vector<float> idf_;
  std::vector<uint32_t> doc_length_;
};

}  // namespace mlaas::vector
