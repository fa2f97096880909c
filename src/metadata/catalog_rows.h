// What the SQLite and PostgreSQL catalog stores share, private to the metadata module: the
// columns records are read from, how rows become records, and the listing query (filters,
// sort, cursor) with its values in order, for either dialect's placeholders.
#pragma once

#include <algorithm>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "common/result.h"
#include "common/text.h"
#include "metadata/catalog_store.h"

namespace mlaas::metadata {

inline constexpr const char* kEntryColumns =
    "kind, name, owner, visibility, description, card, objective, model_type, license, labels, tags, "
    "latest_version, downloads, predictions, deployments, created_ms, updated_ms, popularity";
inline constexpr const char* kVersionColumns =
    "kind, name, version, ready, digest, files, size, facts, lineage, created_by, created_ms";

// The same for listings: the number of files instead of their list (a version may hold
// 200,000). `files` is text in both databases; PostgreSQL reads it as json to count.
inline std::string VersionListColumns(bool postgres) {
  return std::string("kind, name, version, ready, digest, ") +
         (postgres ? "json_array_length(files::json)" : "json_array_length(files)") +
         ", size, facts, lineage, created_by, created_ms";
}

inline std::vector<std::string> StringList(const std::string& text) {
  std::vector<std::string> out;
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_array()) return out;
  for (const auto& v : j) {
    if (v.is_string()) out.push_back(v.get<std::string>());
  }
  return out;
}

inline nlohmann::json ParseObject(const std::string& text) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  return j.is_discarded() ? nlohmann::json::object() : j;
}

// A row of kEntryColumns: `row` has Text(i) and Int(i).
template <typename Row>
CatalogEntryRecord ReadEntry(const Row& s) {
  CatalogEntryRecord e;
  e.kind = s.Text(0);
  e.name = s.Text(1);
  e.owner = s.Text(2);
  e.visibility = s.Text(3);
  e.description = s.Text(4);
  e.card = s.Text(5);
  e.objective = s.Text(6);
  e.model_type = s.Text(7);
  e.license = s.Text(8);
  e.labels = StringList(s.Text(9));
  e.tags = StringList(s.Text(10));
  e.latest_version = s.Int(11);
  e.downloads = s.Int(12);
  e.predictions = s.Int(13);
  e.deployments = s.Int(14);
  e.created_ms = s.Int(15);
  e.updated_ms = s.Int(16);
  return e;
}

// A row of kVersionColumns, or of VersionListColumns (`with_files` false).
template <typename Row>
CatalogVersionRecord ReadVersion(const Row& s, bool with_files = true) {
  CatalogVersionRecord v;
  v.kind = s.Text(0);
  v.name = s.Text(1);
  v.version = s.Int(2);
  v.ready = s.Int(3) != 0;
  v.digest = s.Text(4);
  if (with_files) {
    nlohmann::json files = nlohmann::json::parse(s.Text(5), nullptr, false);
    if (files.is_array()) {
      for (const auto& f : files) {
        if (!f.is_object()) continue;
        v.files.push_back({f.value("path", ""), f.value("size", uint64_t{0}), f.value("sha256", "")});
      }
    }
    v.file_count = static_cast<int64_t>(v.files.size());
  } else {
    v.file_count = s.Int(5);
  }
  v.size = static_cast<uint64_t>(s.Int(6));
  v.facts = ParseObject(s.Text(7));
  v.lineage = ParseObject(s.Text(8));
  v.created_by = s.Text(9);
  v.created_ms = s.Int(10);
  return v;
}

// A version's file list as stored.
inline std::string FilesJson(const CatalogVersionRecord& v) {
  nlohmann::json files = nlohmann::json::array();
  for (const auto& f : v.files) files.push_back({{"path", f.path}, {"size", f.size}, {"sha256", f.sha256}});
  return files.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

inline Status Missing(std::string message, std::string field) {
  return Status(StatusCode::kNotFound, std::move(message), std::move(field));
}

// The listing: SQL with `?` for each value (PostgreSQL's store renumbers them $1, $2, ...),
// the values in order, and how to page on.
struct CatalogListQuery {
  std::string sql;
  std::vector<std::variant<int64_t, std::string>> values;
  size_t limit = 1;
  CatalogSort sort = CatalogSort::kRecent;
  // The cursor after the last entry of a full page, given its sort key.
  std::string NextCursor(const CatalogEntryRecord& last, int64_t last_key) const;
  // The column (of kEntryColumns) holding the sort key: 17 popularity, 16 updated_ms.
  int KeyColumn() const { return sort == CatalogSort::kPopular ? 17 : 16; }
};

// InvalidArgument (field "cursor") for a cursor this server did not issue for this sort.
Result<CatalogListQuery> BuildCatalogListQuery(const CatalogQuery& q, bool postgres);

}  // namespace mlaas::metadata
