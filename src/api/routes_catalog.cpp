// The catalog (docs/catalog.md): registered models and datasets, their versions, files and
// aliases, under /api/v1/catalog/{models|datasets}. Public entries are readable without a
// token; everything else of a user is invisible to others (404).
#include <limits>
#include <regex>

#include "api/catalog_refs.h"
#include "api/ownership.h"
#include "api/schemas.h"
#include "api/server_state.h"
#include "common/text.h"
#include "common/time_util.h"

namespace mlaas::api {

using nlohmann::json;
using catalog::Kind;

namespace {

// A registration's own lineage (free-form JSON, read with every version).
constexpr size_t kMaxLineageBytes = 64 << 10;

// The number a page's next_cursor carries (a version, an event's seq); `none` without one.
Result<int64_t> CursorNumber(const RequestContext& ctx, int64_t none) {
  auto cursor = ctx.Query("cursor");
  if (!cursor || cursor->empty()) return none;
  auto decoded = Base64UrlDecode(*cursor);
  auto number = decoded ? ParseInt(*decoded) : std::nullopt;
  if (!number || *number < 0) return InvalidArgument("cursor is not a cursor this server issued", "cursor");
  return *number;
}

json Text(const std::string& description, size_t max_length) {
  return {{"type", "string"}, {"maxLength", max_length}, {"description", description}};
}

json Slug(const std::string& description) {
  return {{"type", "string"}, {"minLength", 1}, {"maxLength", 64}, {"description", description}};
}

// Editable fields of an entry (create, update, register).
json EntryProperties() {
  return {{"description", Text("one paragraph", 4096)},
          {"card", Text("the model or dataset card (markdown); default: the version's README.md", 256 * 1024)},
          {"visibility", {{"type", "string"}, {"enum", {"private", "public"}}, {"description", "who may see it (default private)"}}},
          {"objective", Text("what the model does (text-classification, ...)", 64)},
          {"license", Text("an SPDX identifier or a short name", 128)},
          {"tags", {{"type", "array"}, {"maxItems", 32}, {"items", Slug("a lowercase slug")}}}};
}

catalog::EntryFields FieldsOf(const json& body) {
  catalog::EntryFields f;
  if (body.contains("description")) f.description = body["description"].get<std::string>();
  if (body.contains("card")) f.card = body["card"].get<std::string>();
  if (body.contains("visibility")) f.visibility = catalog::ParseVisibility(body["visibility"].get<std::string>());
  if (body.contains("objective")) f.objective = body["objective"].get<std::string>();
  if (body.contains("license")) f.license = body["license"].get<std::string>();
  if (body.contains("tags")) f.tags = body["tags"].get<std::vector<std::string>>();
  return f;
}

json EntryView(const catalog::Entry& e, Kind kind) {
  catalog::Reference ref{kind, e.name};
  return {{"name", e.name},
          {"kind", e.kind},
          {"owner", e.owner},
          {"visibility", e.visibility},
          {"description", e.description},
          {"objective", e.objective},
          {"model_type", e.model_type},
          {"license", e.license},
          {"labels", e.labels},
          {"tags", e.tags},
          {"latest_version", e.latest_version == 0 ? json() : json(e.latest_version)},
          {"reference", ref.ToString()},
          {"popularity", {{"downloads", e.downloads}, {"predictions", e.predictions}, {"deployments", e.deployments}}},
          {"created_at", FormatIsoUtc(e.created_ms)},
          {"updated_at", FormatIsoUtc(e.updated_ms)}};
}

// A version's lineage holds its owner's request paths, which with accounts live in their home
// (users/<name>/...): readers see them as the owner wrote them, without the home.
json WithoutHomes(const json& j) {
  static const std::regex home("users/[a-z0-9][a-z0-9._-]{0,63}/");
  json out = json::parse(std::regex_replace(j.dump(-1, ' ', false, json::error_handler_t::replace), home, ""), nullptr, false);
  return out.is_discarded() ? json::object() : out;
}

json VersionView(const catalog::Version& v, Kind kind, bool with_files) {
  catalog::Reference ref{kind, v.name, v.version};
  json j = {{"name", v.name},
            {"version", v.version},
            {"reference", ref.ToString()},
            {"digest", v.digest},
            {"size", v.size},
            {"file_count", std::max<int64_t>(v.file_count, static_cast<int64_t>(v.files.size()))},
            {"facts", v.facts},
            {"lineage", WithoutHomes(v.lineage)},
            {"created_by", v.created_by},
            {"created_at", FormatIsoUtc(v.created_ms)}};
  if (with_files) {
    json files = json::array();
    for (const auto& f : v.files) files.push_back({{"path", f.path}, {"size", f.size}, {"sha256", f.sha256}});
    j["files"] = files;
  }
  return j;
}

json AliasEventView(const catalog::AliasEvent& e) {
  return {{"seq", e.seq},
          {"alias", e.alias},
          {"from_version", e.from_version == 0 ? json() : json(e.from_version)},
          {"to_version", e.to_version == 0 ? json() : json(e.to_version)},
          {"by", e.by},
          {"at", FormatIsoUtc(e.time_ms)}};
}

Result<int64_t> VersionParam(RequestContext& ctx) {
  auto n = ParseInt(ctx.path_params["version"]);
  if (!n || *n <= 0) return InvalidArgument("version must be a positive integer", "version");
  return *n;
}

// The version the route's {name} and {version} name, as the caller may see it.
Result<catalog::Version> VersionOf(ServerState& s, RequestContext& ctx, Kind kind) {
  MLAAS_ASSIGN_OR_RETURN(int64_t n, VersionParam(ctx));
  return s.services.catalog->GetVersion(kind, ctx.path_params["name"], n, CallerOf(s, ctx));
}

void Unavailable501(RequestContext& ctx) { ctx.Error(Unimplemented("this server has no catalog")); }

void AddKindRoutes(ServerState& s, Kind kind) {
  const std::string plural(catalog::KindPlural(kind));
  const std::string one(catalog::KindName(kind));
  const std::string base = "/api/v1/catalog/" + plural;
  catalog::Catalog*& cat = s.services.catalog;
  const auto sort_schema = json{{"type", "string"}, {"enum", {"recent", "popular", "name"}}, {"default", "recent"}};

  s.router.Add(
      {.method = "GET",
       .access = Access::kPublic,
       .pattern = base,
       .tag = "catalog",
       .summary = "List registered " + plural + " (public ones, and your own): search, filter, sort, one page at a time",
       .query = {{"q", {{"type", "string"}, {"maxLength", 256}}, "text in the name, description or tags"},
                 {"objective", {{"type", "string"}}, "only this objective"},
                 {"tag", {{"type", "string"}}, "only entries with this tag"},
                 {"owner", {{"type", "string"}}, "only this owner's"},
                 {"visibility", {{"type", "string"}, {"enum", {"public", "private"}}}, "only public or private ones"},
                 {"sort", sort_schema, "recent (last registered first), popular (downloads, predictions, deployments) or name"},
                 {"limit", {{"type", "integer"}, {"minimum", 1}, {"maximum", 1000}, {"default", 50}}, "entries per page"},
                 {"cursor", {{"type", "string"}}, "next_cursor of the previous page"}},
       .responses = {{200, "a page: {" + plural + ", next_cursor}"}, {400, "bad query parameter"}},
       .handler = [&s, &cat, kind, plural](RequestContext& ctx) {
         if (!cat) return Unavailable501(ctx);
         catalog::ListQuery q;
         q.kind = kind;
         q.text = ctx.Query("q").value_or("");
         q.objective = ctx.Query("objective").value_or("");
         q.tag = ctx.Query("tag").value_or("");
         q.owner = ctx.Query("owner").value_or("");
         q.visibility = ctx.Query("visibility").value_or("");
         const std::string sort = ctx.Query("sort").value_or("recent");
         if (sort == "recent") {
           q.sort = metadata::CatalogSort::kRecent;
         } else if (sort == "popular") {
           q.sort = metadata::CatalogSort::kPopular;
         } else if (sort == "name") {
           q.sort = metadata::CatalogSort::kName;
         } else {
           return ctx.Error(InvalidArgument("sort must be recent, popular or name", "sort"));
         }
         auto limit = IntQuery(ctx, "limit", 50, 1, 1000);
         if (!limit.has_value()) return ctx.Error(limit.error());
         q.limit = static_cast<size_t>(*limit);
         q.cursor = ctx.Query("cursor").value_or("");
         auto page = cat->List(q, CallerOf(s, ctx));
         if (!page.has_value()) return ctx.Error(page.error());
         json items = json::array();
         for (const auto& e : page->entries) items.push_back(EntryView(e, kind));
         ctx.Json(200, {{plural, items}, {"next_cursor", page->next_cursor.empty() ? json() : json(page->next_cursor)}});
       }});

  json create = EntryProperties();
  create["name"] = Slug("unique name: 1-64 of a-z, 0-9, '.', '_', '-'");
  s.router.Add({.method = "POST",
                .access = Access::kWrite,
                .pattern = base,
                .tag = "catalog",
                .summary = "Register a " + one + " (no version yet): you own it, private unless said otherwise",
                .body = BodyKind::kJson,
                .request_schema = schemas::Object(create, {"name"}),
                .responses = {{201, "registered"}, {400, "invalid field"}, {409, "the name is taken"}},
                .handler = [&s, &cat, kind](RequestContext& ctx) {
                  if (!cat) return Unavailable501(ctx);
                  auto e = cat->Create(kind, ctx.body["name"].get<std::string>(), FieldsOf(ctx.body), CallerOf(s, ctx));
                  if (!e.has_value()) return ctx.Error(e.error());
                  ctx.res.set_header("Location", "/api/v1/catalog/" + std::string(catalog::KindPlural(kind)) + "/" + e->name);
                  ctx.Json(201, EntryView(*e, kind));
                }});

  s.router.Add({.method = "GET",
                .access = Access::kPublic,
                .pattern = base + "/{name}",
                .tag = "catalog",
                .summary = "A registered " + one + ": owner, card, aliases, latest version, popularity",
                .responses = {{200, "the entry"}, {404, "no such " + one + " (or not yours and private)"}},
                .handler = [&s, &cat, kind](RequestContext& ctx) {
                  if (!cat) return Unavailable501(ctx);
                  const catalog::Caller caller = CallerOf(s, ctx);
                  auto e = cat->Get(kind, ctx.path_params["name"], caller);
                  if (!e.has_value()) return ctx.Error(e.error());
                  json view = EntryView(*e, kind);
                  view["card"] = e->card;
                  auto aliases = cat->Aliases(kind, e->name, caller);
                  if (!aliases.has_value()) return ctx.Error(aliases.error());
                  json a = json::object();
                  for (const auto& x : *aliases) a[x.alias] = x.version;
                  view["aliases"] = a;
                  ctx.Json(200, view);
                }});

  s.router.Add({.method = "PATCH",
                .access = Access::kWrite,
                .pattern = base + "/{name}",
                .tag = "catalog",
                .summary = "Change a " + one + "'s description, card, visibility, objective, license or tags (owner only)",
                .body = BodyKind::kJson,
                .request_schema = schemas::Object(EntryProperties(), {}),
                .responses = {{200, "the entry"}, {400, "invalid field"}, {403, "not the owner"}, {404, "no such " + one}},
                .handler = [&s, &cat, kind](RequestContext& ctx) {
                  if (!cat) return Unavailable501(ctx);
                  auto e = cat->Update(kind, ctx.path_params["name"], FieldsOf(ctx.body), CallerOf(s, ctx));
                  if (!e.has_value()) return ctx.Error(e.error());
                  ctx.Json(200, EntryView(*e, kind));
                }});

  s.router.Add({.method = "DELETE",
                .access = Access::kWrite,
                .pattern = base + "/{name}",
                .tag = "catalog",
                .summary = "Delete a " + one + " with every version, alias and audit record (owner only)",
                .responses = {{204, "deleted"}, {403, "not the owner"}, {404, "no such " + one}},
                .handler = [&s, &cat, kind](RequestContext& ctx) {
                  if (!cat) return Unavailable501(ctx);
                  if (Status st = cat->Delete(kind, ctx.path_params["name"], CallerOf(s, ctx)); !st.ok()) return ctx.Error(st);
                  ctx.res.status = 204;
                }});

  s.router.Add({.method = "GET",
                .access = Access::kPublic,
                .pattern = base + "/{name}/versions",
                .tag = "catalog",
                .summary = "The versions of a " + one + ", newest first, a page at a time",
                .query = {{"limit", {{"type", "integer"}, {"minimum", 1}, {"maximum", 1000}, {"default", 100}}, "versions per page"},
                          {"cursor", {{"type", "string"}}, "next_cursor of the previous page"}},
                .responses = {{200, "{versions, next_cursor}"}, {400, "bad query parameter"}, {404, "no such " + one}},
                .handler = [&s, &cat, kind](RequestContext& ctx) {
                  if (!cat) return Unavailable501(ctx);
                  auto cursor = CursorNumber(ctx, std::numeric_limits<int64_t>::max());  // the versions below it
                  if (!cursor.has_value()) return ctx.Error(cursor.error());
                  const int64_t below = *cursor;
                  auto limit = IntQuery(ctx, "limit", 100, 1, 1000);
                  if (!limit.has_value()) return ctx.Error(limit.error());
                  auto versions = cat->Versions(kind, ctx.path_params["name"], CallerOf(s, ctx));
                  if (!versions.has_value()) return ctx.Error(versions.error());
                  json out = json::array();
                  int64_t last = 0;
                  bool more = false;
                  for (const auto& v : *versions) {  // newest first
                    if (v.version >= below) continue;
                    if (static_cast<int64_t>(out.size()) == *limit) {
                      more = true;
                      break;
                    }
                    out.push_back(VersionView(v, kind, false));
                    last = v.version;
                  }
                  ctx.Json(200, {{"versions", out}, {"next_cursor", more ? json(Base64UrlEncode(std::to_string(last))) : json()}});
                }});

  const std::string block = kind == Kind::kModel ? "model" : "dataset";
  json source = kind == Kind::kModel
                    ? schemas::Object({{"path", {{"type", "string"}, {"minLength", 1}, {"maxLength", 1024},
                                                 {"description", "the model directory to copy"}}},
                                       {"storage_type", {{"type", "string"}, {"enum", {"local", "s3", "hugging_face_hub"}}}}},
                                      {"path"})
                    : schemas::Object({{"path", {{"type", "string"}, {"minLength", 1}, {"maxLength", 1024},
                                                 {"description", "the dataset file (rows of text) or folder (images) to copy"}}},
                                       {"storage_type", {{"type", "string"}, {"enum", {"local", "s3", "hugging_face_hub"}}}},
                                       {"format", {{"type", "string"}, {"enum", {"csv", "tsv", "jsonl", "conll", "image_folder", "idx"}},
                                                   {"description", "csv, tsv, jsonl: a file (default: its extension); "
                                                                   "image_folder, idx: a folder (default: idx when it holds "
                                                                   "IDX files, else image_folder)"}}}},
                                      {"path"});
  json register_props = EntryProperties();
  register_props[block] = source;
  register_props["lineage"] = {{"type", "object"}, {"description", "where it came from (free-form, kept with the version; at most 64 KiB as JSON)"}};
  s.router.Add(
      {.method = "POST",
       .access = Access::kWrite,
       .pattern = base + "/{name}/versions",
       .tag = "catalog",
       .summary = "Register a new version: the " + block + " is copied into immutable catalog storage with a SHA-256 per "
                  "file (the " + one + " is created, yours, when new)",
       .body = BodyKind::kJson,
       .request_schema = schemas::Object(register_props, {block}),
       .responses = {{201, "the version"},
                     {400, "invalid field, or nothing at " + block + ".path"},
                     {403, "not the owner"},
                     {409, "the name is taken by another user"}},
       .compute = true,
       .handler = [&s, &cat, kind, block](RequestContext& ctx) {
         if (!cat) return Unavailable501(ctx);
         if (catalog::IsReference(ctx.body[block].value("path", "")))
           return ctx.Error(InvalidArgument("register a storage path; a catalog version is registered already",
                                            block + ".path"));
         if (Status st = PathsToHome(s, ctx, ctx.body); !st.ok()) return ctx.Error(st);
         auto ref = s.services.storage.Resolve(ctx.body[block], block);
         if (!ref.has_value()) return ctx.Error(ref.error());
         catalog::RegisterRequest r;
         r.kind = kind;
         r.name = ctx.path_params["name"];
         r.source_store = ref->store;
         r.source_key = ref->key;
         r.dataset_format = ctx.body[block].value("format", "");
         r.fields = FieldsOf(ctx.body);
         r.lineage = ctx.body.value("lineage", json::object());
         if (r.lineage.dump().size() > kMaxLineageBytes)
           return ctx.Error(InvalidArgument("lineage is larger than " + FormatBytes(kMaxLineageBytes) +
                                                " as JSON: keep it to where the version came from",
                                            "lineage"));
         r.lineage["source"] = {{"path", ctx.body[block]["path"]}, {"storage_type", ctx.body[block].value("storage_type", "local")}};
         auto v = cat->Register(r, CallerOf(s, ctx));
         if (!v.has_value()) return ctx.Error(v.error());
         ctx.res.set_header("Location", "/api/v1/catalog/" + std::string(catalog::KindPlural(kind)) + "/" + v->name +
                                            "/versions/" + std::to_string(v->version));
         ctx.Json(201, VersionView(*v, kind, true));
       }});

  s.router.Add({.method = "GET",
                .access = Access::kPublic,
                .pattern = base + "/{name}/versions/{version}",
                .tag = "catalog",
                .summary = "One version: digest, files, facts and lineage",
                .responses = {{200, "the version"}, {404, "no such version"}},
                .handler = [&s, &cat, kind](RequestContext& ctx) {
                  if (!cat) return Unavailable501(ctx);
                  auto v = VersionOf(s, ctx, kind);
                  if (!v.has_value()) return ctx.Error(v.error());
                  ctx.Json(200, VersionView(*v, kind, true));
                }});

  s.router.Add({.method = "GET",
                .access = Access::kPublic,
                .pattern = base + "/{name}/versions/{version}/files",
                .tag = "catalog",
                .summary = "The files of a version with their sizes and SHA-256",
                .responses = {{200, "{files, digest}"}, {404, "no such version"}},
                .handler = [&s, &cat, kind](RequestContext& ctx) {
                  if (!cat) return Unavailable501(ctx);
                  auto v = VersionOf(s, ctx, kind);
                  if (!v.has_value()) return ctx.Error(v.error());
                  json view = VersionView(*v, kind, true);
                  ctx.Json(200, {{"files", view["files"]}, {"digest", v->digest}});
                }});

  s.router.Add({.method = "GET",
                .access = Access::kPublic,
                .pattern = base + "/{name}/versions/{version}/files/{path+}",
                .tag = "catalog",
                .summary = "Download one file of a version, checked against its SHA-256 first (Range and If-None-Match "
                           "supported; the ETag is the SHA-256)",
                .responses = {{200, "the file's bytes"},
                              {304, "not modified (If-None-Match)"},
                              {404, "no such file"},
                              {500, "the file changed on disk since it was registered (not served)"}},
                .produces = "application/octet-stream",
                .compute = true,  // a file is hashed before it is served
                .handler = [&s, &cat, kind](RequestContext& ctx) {
                  if (!cat) return Unavailable501(ctx);
                  auto n = VersionParam(ctx);
                  if (!n.has_value()) return ctx.Error(n.error());
                  const std::string name = ctx.path_params["name"];
                  const std::string path = ctx.path_params["path"];
                  auto file = cat->OpenFile(kind, name, *n, path, CallerOf(s, ctx));
                  if (!file.has_value()) return ctx.Error(file.error());
                  // A download of the whole thing counts once: the file every load reads first (a
                  // model's config.json, a dataset's first file: its only one, or the first of a folder).
                  if (kind == Kind::kDataset ? file->first : path == "config.json")
                    cat->Count(kind, name, metadata::CatalogCounter::kDownloads);
                  StreamObject(ctx, std::move(file->reader), "\"sha256-" + file->file.sha256 + "\"", path);
                }});

  s.router.Add({.method = "GET",
                .access = Access::kPublic,
                .pattern = base + "/{name}/aliases",
                .tag = "catalog",
                .summary = "The aliases of a " + one + " and the versions they point at",
                .responses = {{200, "{aliases: [{alias, version, updated_by, updated_at}]}"}, {404, "no such " + one}},
                .handler = [&s, &cat, kind](RequestContext& ctx) {
                  if (!cat) return Unavailable501(ctx);
                  auto aliases = cat->Aliases(kind, ctx.path_params["name"], CallerOf(s, ctx));
                  if (!aliases.has_value()) return ctx.Error(aliases.error());
                  json out = json::array();
                  for (const auto& a : *aliases)
                    out.push_back({{"alias", a.alias}, {"version", a.version}, {"updated_by", a.updated_by},
                                   {"updated_at", FormatIsoUtc(a.updated_ms)}});
                  ctx.Json(200, {{"aliases", out}});
                }});

  s.router.Add({.method = "PUT",
                .access = Access::kWrite,
                .pattern = base + "/{name}/aliases/{alias}",
                .tag = "catalog",
                .summary = "Point an alias at a version (create or move it, atomically; kept in the audit trail). "
                           "Deployments of catalog://<name>@<alias> follow it",
                .body = BodyKind::kJson,
                .request_schema = schemas::Object({{"version", {{"type", "integer"}, {"minimum", 1}}}}, {"version"}),
                .responses = {{200, "the move {alias, from_version, to_version, by, at}"},
                              {400, "invalid alias"},
                              {403, "not the owner"},
                              {404, "no such " + one + " or version"}},
                .handler = [&s, &cat, kind](RequestContext& ctx) {
                  if (!cat) return Unavailable501(ctx);
                  auto e = cat->MoveAlias(kind, ctx.path_params["name"], ctx.path_params["alias"],
                                          ctx.body["version"].get<int64_t>(), CallerOf(s, ctx));
                  if (!e.has_value()) return ctx.Error(e.error());
                  ctx.Json(200, AliasEventView(*e));
                }});

  s.router.Add({.method = "DELETE",
                .access = Access::kWrite,
                .pattern = base + "/{name}/aliases/{alias}",
                .tag = "catalog",
                .summary = "Delete an alias (kept in the audit trail)",
                .responses = {{200, "the move"}, {403, "not the owner"}, {404, "no such alias"}},
                .handler = [&s, &cat, kind](RequestContext& ctx) {
                  if (!cat) return Unavailable501(ctx);
                  auto e = cat->MoveAlias(kind, ctx.path_params["name"], ctx.path_params["alias"], 0, CallerOf(s, ctx));
                  if (!e.has_value()) return ctx.Error(e.error());
                  ctx.Json(200, AliasEventView(*e));
                }});

  s.router.Add({.method = "GET",
                .access = Access::kPublic,
                .pattern = base + "/{name}/alias-history",
                .tag = "catalog",
                .summary = "The audit trail of alias moves (who, when, from which version to which), oldest first",
                .query = {{"limit", {{"type", "integer"}, {"minimum", 1}, {"maximum", 1000}, {"default", 100}}, "moves"},
                          {"cursor", {{"type", "string"}}, "next_cursor of the previous page"}},
                .responses = {{200, "{events, next_cursor}"}, {400, "bad query parameter"}, {404, "no such " + one}},
                .handler = [&s, &cat, kind](RequestContext& ctx) {
                  if (!cat) return Unavailable501(ctx);
                  auto cursor = CursorNumber(ctx, 0);  // the moves after it
                  if (!cursor.has_value()) return ctx.Error(cursor.error());
                  const int64_t after = *cursor;
                  auto limit = IntQuery(ctx, "limit", 100, 1, 1000);
                  if (!limit.has_value()) return ctx.Error(limit.error());
                  auto events = cat->AliasHistory(kind, ctx.path_params["name"], after, static_cast<size_t>(*limit),
                                                  CallerOf(s, ctx));
                  if (!events.has_value()) return ctx.Error(events.error());
                  json out = json::array();
                  for (const auto& e : *events) out.push_back(AliasEventView(e));
                  const bool full = events->size() == static_cast<size_t>(*limit);
                  ctx.Json(200, {{"events", out},
                                 {"next_cursor", full ? json(Base64UrlEncode(std::to_string(events->back().seq))) : json()}});
                }});
}

}  // namespace

void AddCatalogRoutes(ServerState& s) {
  AddKindRoutes(s, Kind::kModel);
  AddKindRoutes(s, Kind::kDataset);
  s.router.Add({.method = "GET",
                .access = Access::kPublic,
                .pattern = "/api/v1/catalog/resolve",
                .tag = "catalog",
                .summary = "The version a catalog:// reference names now (verified), with its files",
                .query = {{"ref", {{"type", "string"}}, "catalog://<name>[/<n>|@<alias>] or catalog://datasets/..."}},
                .responses = {{200, "the version"}, {400, "not a reference"}, {404, "nothing it names"}},
                .compute = true,  // the version's files are hashed
                .handler = [&s](RequestContext& ctx) {
                  if (!s.services.catalog) return Unavailable501(ctx);
                  auto ref = catalog::ParseReference(ctx.Query("ref").value_or(""), "ref");
                  if (!ref.has_value()) return ctx.Error(ref.error());
                  auto r = s.services.catalog->Resolve(*ref, CallerOf(s, ctx));
                  if (!r.has_value()) return ctx.Error(r.error());
                  json view = VersionView(r->version, ref->kind, true);
                  view["kind"] = catalog::KindName(ref->kind);
                  view["asked"] = ref->ToString();
                  ctx.Json(200, view);
                }});
}

}  // namespace mlaas::api
