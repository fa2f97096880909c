#include "metadata/catalog_rows.h"

namespace mlaas::metadata {
namespace {

// "%text%" for LIKE ... ESCAPE '\', with the pattern characters of `text` escaped.
std::string LikeContaining(const std::string& text) {
  std::string out = "%";
  for (char c : text) {
    if (c == '%' || c == '_' || c == '\\') out += '\\';
    out += c;
  }
  return out + "%";
}

const char* SortName(CatalogSort sort) {
  switch (sort) {
    case CatalogSort::kPopular: return "popular";
    case CatalogSort::kName: return "name";
    case CatalogSort::kRecent: break;
  }
  return "recent";
}

// A cursor is the sort it belongs to, the last entry's sort key and its name.
struct Cursor {
  int64_t key = 0;
  std::string name;
};

Result<std::optional<Cursor>> DecodeCursor(const CatalogQuery& q) {
  if (q.cursor.empty()) return std::optional<Cursor>();
  auto bad = [] { return InvalidArgument("cursor is not a cursor this server issued for this sort", "cursor"); };
  auto decoded = Base64UrlDecode(q.cursor);
  if (!decoded) return bad();
  const auto parts = Split(*decoded, '\n');
  if (parts.size() != 3 || parts[0] != SortName(q.sort)) return bad();
  const auto key = ParseInt(parts[1]);
  if (!key) return bad();
  return std::optional<Cursor>(Cursor{*key, parts[2]});
}

}  // namespace

std::string CatalogListQuery::NextCursor(const CatalogEntryRecord& last, int64_t last_key) const {
  return Base64UrlEncode(std::string(SortName(sort)) + "\n" + std::to_string(last_key) + "\n" + last.name);
}

Result<CatalogListQuery> BuildCatalogListQuery(const CatalogQuery& q, bool postgres) {
  MLAAS_ASSIGN_OR_RETURN(std::optional<Cursor> cursor, DecodeCursor(q));
  CatalogListQuery out;
  out.sort = q.sort;
  std::string& sql = out.sql;
  auto& values = out.values;
  sql = "SELECT " + std::string(kEntryColumns) + " FROM catalog_entries WHERE kind = ?";
  values.emplace_back(q.kind);
  if (!q.sees_all) {
    sql += " AND (visibility = 'public' OR owner = ?)";
    values.emplace_back(q.viewer);
  }
  // Text matches ignore case (SQLite's LIKE does for ASCII; PostgreSQL's ILIKE), and names
  // sort and page by their bytes in both (PostgreSQL's "C" collation).
  const std::string like = postgres ? " ILIKE " : " LIKE ";
  const std::string name = postgres ? "name COLLATE \"C\"" : "name";
  if (!q.text.empty()) {
    sql += " AND (name" + like + "? ESCAPE '\\' OR description" + like + "? ESCAPE '\\' OR tags" + like +
           "? ESCAPE '\\')";
    for (int i = 0; i < 3; ++i) values.emplace_back(LikeContaining(q.text));
  }
  if (!q.objective.empty()) {
    sql += " AND objective = ?";
    values.emplace_back(q.objective);
  }
  if (!q.tag.empty()) {
    sql += " AND tags" + like + "? ESCAPE '\\'";
    values.emplace_back(LikeContaining(nlohmann::json(q.tag).dump()));
  }
  if (!q.owner.empty()) {
    sql += " AND owner = ?";
    values.emplace_back(q.owner);
  }
  if (!q.visibility.empty()) {
    sql += " AND visibility = ?";
    values.emplace_back(q.visibility);
  }
  const char* key_column = q.sort == CatalogSort::kPopular ? "popularity" : "updated_ms";
  if (cursor) {
    if (q.sort == CatalogSort::kName) {
      sql += " AND " + name + " > ?";
      values.emplace_back(cursor->name);
    } else {
      sql += std::string(" AND (") + key_column + " < ? OR (" + key_column + " = ? AND " + name + " > ?))";
      values.emplace_back(cursor->key);
      values.emplace_back(cursor->key);
      values.emplace_back(cursor->name);
    }
  }
  sql += q.sort == CatalogSort::kName ? " ORDER BY " + name : std::string(" ORDER BY ") + key_column + " DESC, " + name;
  sql += " LIMIT ?";
  out.limit = std::max<size_t>(1, q.limit);
  values.emplace_back(static_cast<int64_t>(out.limit) + 1);
  return out;
}

}  // namespace mlaas::metadata
