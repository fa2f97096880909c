#include "vector/bm25.h"

#include <algorithm>
#include <cmath>
#include <unordered_set>

#include "tokenizers/unicode.h"
#include "tokenizers/unicode_tables.h"

namespace mlaas::vector {

std::vector<std::string> LexicalTerms(std::string_view text) {
  // Invalid UTF-8 cannot fail here: it becomes U+FFFD, which is not a word character.
  auto cps = tokenizers::DecodeUtf8(text, tokenizers::InvalidUtf8::kReplace);
  std::vector<std::string> terms;
  if (!cps.has_value()) return terms;
  const auto word = [](char32_t c) { return c == U'_' || tokenizers::IsWordChar(c); };
  const tokenizers::CodePoints& cp = *cps;
  size_t i = 0;
  while (i < cp.size()) {
    while (i < cp.size() && !word(cp[i])) ++i;
    const size_t start = i;
    while (i < cp.size() && word(cp[i])) ++i;
    if (i - start >= 2) {
      tokenizers::CodePoints lower(cp.begin() + static_cast<std::ptrdiff_t>(start),
                                   cp.begin() + static_cast<std::ptrdiff_t>(i));
      for (auto& c : lower) c = tokenizers::tables::LowercaseSingle(c);
      terms.push_back(tokenizers::EncodeUtf8(lower));
    }
  }
  return terms;
}

Bm25Index::Bm25Index(const std::vector<std::string_view>& texts, float k1, float b) {
  doc_length_.reserve(texts.size());
  std::vector<std::vector<std::pair<uint32_t, uint32_t>>> counts;  // per term: (doc, tf)
  double total_length = 0;
  std::unordered_map<uint32_t, uint32_t> tf;
  for (size_t doc = 0; doc < texts.size(); ++doc) {
    tf.clear();
    const auto terms = LexicalTerms(texts[doc]);
    for (const auto& t : terms) {
      auto [it, added] = term_id_.emplace(t, static_cast<uint32_t>(counts.size()));
      if (added) counts.emplace_back();
      ++tf[it->second];
    }
    for (const auto& [term, n] : tf) counts[term].emplace_back(static_cast<uint32_t>(doc), n);
    doc_length_.push_back(static_cast<uint32_t>(terms.size()));
    total_length += static_cast<double>(terms.size());
  }
  const double n_docs = static_cast<double>(texts.size());
  const double avgdl = n_docs > 0 ? std::max(total_length / n_docs, 1e-9) : 1.0;
  postings_.resize(counts.size());
  idf_.resize(counts.size());
  for (size_t term = 0; term < counts.size(); ++term) {
    auto& list = counts[term];
    std::sort(list.begin(), list.end());
    const double df = static_cast<double>(list.size());
    idf_[term] = static_cast<float>(std::log(1.0 + (n_docs - df + 0.5) / (df + 0.5)));
    postings_[term].reserve(list.size());
    for (const auto& [doc, n] : list) {
      const double f = n;
      const double norm = k1 * (1.0 - b + b * doc_length_[doc] / avgdl);
      postings_[term].push_back({doc, static_cast<float>(f * (k1 + 1.0) / (f + norm))});
    }
  }
}

std::vector<std::pair<uint32_t, float>> Bm25Index::Search(std::string_view query, size_t k,
                                                          const std::function<bool(uint32_t)>& keep) const {
  std::unordered_set<uint32_t> terms;
  for (const auto& t : LexicalTerms(query))
    if (auto it = term_id_.find(t); it != term_id_.end()) terms.insert(it->second);
  // Scores accumulate over the postings of the query's terms only.
  std::vector<float> scores(doc_length_.size(), 0.0f);
  std::vector<uint32_t> touched;
  for (uint32_t term : terms)
    for (const auto& p : postings_[term]) {
      if (scores[p.doc] == 0.0f) touched.push_back(p.doc);
      scores[p.doc] += idf_[term] * p.weight;
    }
  std::vector<std::pair<uint32_t, float>> ranked;
  ranked.reserve(touched.size());
  for (uint32_t doc : touched)
    if (scores[doc] > 0 && (!keep || keep(doc))) ranked.emplace_back(doc, scores[doc]);
  const auto better = [](const auto& a, const auto& b) { return a.second != b.second ? a.second > b.second : a.first < b.first; };
  if (ranked.size() > k) {
    std::partial_sort(ranked.begin(), ranked.begin() + static_cast<std::ptrdiff_t>(k), ranked.end(), better);
    ranked.resize(k);
  } else {
    std::sort(ranked.begin(), ranked.end(), better);
  }
  return ranked;
}

}  // namespace mlaas::vector
