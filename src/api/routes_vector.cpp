// Saved vector stores: their manifest, and documents added to or removed from them without a
// rebuild (/api/v1/vector-stores/{path}[/documents]). The store's path may hold slashes;
// ?storage_type= picks the storage (default local).
#include "api/catalog_refs.h"
#include "api/schemas.h"
#include "api/ownership.h"
#include "api/server_state.h"
#include "vector/searcher.h"

namespace mlaas::api {

using nlohmann::json;

namespace {

json StoreBlock(const ServerState& s, const RequestContext& ctx) {
  return {{"path", HomeOf(s, ctx) + ctx.path_params.at("path")},
          {"storage_type", ctx.Query("storage_type").value_or("local")}};
}

QueryParam StorageTypeParam() {
  return {"storage_type", {{"type", "string"}, {"enum", {"local", "s3"}}, {"default", "local"}},
          "where the store is kept"};
}

// Runs `call` when this server searches vector stores, 501 otherwise.
template <class Call>
void WithSearcher(ServerState& s, RequestContext& ctx, Call call) {
  if (s.services.vector_searcher == nullptr)
    return ctx.Error(Unimplemented("vector stores are not available in this server"));
  Result<json> out = call(*s.services.vector_searcher);
  if (!out.has_value()) return ctx.Error(out.error());
  ctx.Json(200, *out);
}

}  // namespace

void AddVectorRoutes(ServerState& s) {
  using schemas::Object;
  json document = Object({{"id", {{"type", {"string", "integer"}}, {"description", "document id (default: a new UUID)"}}},
                          {"page_content", {{"type", "string"}, {"minLength", 1}, {"description", "the document's text"}}},
                          {"metadata", {{"type", "object"}, {"description", "fields returned with hits and matched by filters"}}}},
                         {"page_content"});
  s.router.Add({.method = "POST",
                .access = Access::kWrite,
                .pattern = "/api/v1/vector-stores/{path+}/documents",
                .tag = "ml",
                .summary = "Add documents to a saved vector store (embedded with the model that built it)",
                .body = BodyKind::kJson,
                .request_schema = Object({{"documents", {{"type", "array"}, {"minItems", 1}, {"maxItems", 100000}, {"items", document}}}},
                                         {"documents"}),
                .query = {StorageTypeParam()},
                .responses = {{200, "{added, ids, count}"},
                              {400, "invalid documents or not a vector store"},
                              {409, "an id is already in the store, or the store's model has changed"},
                              {429, "too many requests in progress, or a store update waiting (Retry-After)"}},
                .compute = true,
                .handler = [&s](RequestContext& ctx) {
                  if (Status st = NotIntoCatalog(s, StoreBlock(s, ctx), "path", "path"); !st.ok()) return ctx.Error(st);
                  WithSearcher(s, ctx, [&](vector::VectorSearcher& v) { return v.AddDocuments(StoreBlock(s, ctx), ctx.body); });
                }});
  s.router.Add({.method = "DELETE",
                .access = Access::kWrite,
                .pattern = "/api/v1/vector-stores/{path+}/documents",
                .tag = "ml",
                .summary = "Remove documents (by id) from a saved vector store",
                .body = BodyKind::kJson,
                .request_schema = Object({{"ids", {{"type", "array"}, {"minItems", 1}, {"maxItems", 100000},
                                                   {"items", {{"type", {"string", "integer"}}}}}}},
                                         {"ids"}),
                .query = {StorageTypeParam()},
                .responses = {{200, "{removed, count}"}, {400, "invalid ids or not a vector store"}, {429, "too many requests in progress, or a store update waiting (Retry-After)"}},
                .compute = true,
                .handler = [&s](RequestContext& ctx) {
                  if (Status st = NotIntoCatalog(s, StoreBlock(s, ctx), "path", "path"); !st.ok()) return ctx.Error(st);
                  WithSearcher(s, ctx, [&](vector::VectorSearcher& v) { return v.RemoveDocuments(StoreBlock(s, ctx), ctx.body); });
                }});
  s.router.Add({.method = "GET",
                .access = Access::kRead,
                .pattern = "/api/v1/vector-stores/{path+}",
                .tag = "ml",
                .summary = "A saved vector store's manifest (model, pooling, metric, dimension, count, index)",
                .query = {StorageTypeParam()},
                .responses = {{200, "the manifest"}, {400, "not a vector store"},
                              {429, "too many requests in progress (Retry-After)"},
                              {503, "the store is still loading: retry (Retry-After)"}},
                .compute = true,
                .handler = [&s](RequestContext& ctx) {
                  WithSearcher(s, ctx, [&](vector::VectorSearcher& v) { return v.Describe(StoreBlock(s, ctx)); });
                }});
}

}  // namespace mlaas::api
