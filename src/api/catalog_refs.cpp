#include "api/catalog_refs.h"

#include "api/ownership.h"
#include "common/text.h"

namespace mlaas::api {

using nlohmann::json;

catalog::Caller CallerOf(const ServerState& s, const RequestContext& ctx) {
  return {ctx.principal.user, SeesAll(s, ctx)};
}

Status ResolveCatalogRefs(ServerState& s, const RequestContext& ctx, json& body) {
  if (!body.is_object()) return Status::Ok();
  for (const char* block : {"model_save", "vector_store_save"}) {
    auto b = body.find(block);
    if (b == body.end() || !b->is_object() || b->value("storage_type", "local") != "local") continue;
    const std::string path = b->value("path", "");
    if (path == "catalog" || StartsWith(path, "catalog/") || catalog::IsReference(path))
      return InvalidArgument("catalog/ holds the catalog's immutable versions: save elsewhere and register with "
                             "POST /api/v1/catalog/models/{name}/versions (or the training request's catalog block)",
                             std::string(block) + ".path");
  }
  for (const char* block : {"model", "tokenizer", "dataset"}) {
    auto b = body.find(block);
    if (b == body.end() || !b->is_object()) continue;
    auto path = b->find("path");
    if (path == b->end() || !path->is_string() || !catalog::IsReference(path->get<std::string>())) continue;
    const std::string field = std::string(block) + ".path";
    MLAAS_ASSIGN_OR_RETURN(catalog::Reference ref, catalog::ParseReference(path->get<std::string>(), field));
    const bool want_dataset = std::string_view(block) == "dataset";
    if ((ref.kind == catalog::Kind::kDataset) != want_dataset)
      return InvalidArgument(want_dataset ? "dataset.path names a model: use catalog://datasets/<name>"
                                          : field + " names a dataset: use catalog://<model name>",
                             field);
    if (s.services.catalog == nullptr) return Unimplemented("this server has no catalog", field);
    auto resolved = s.services.catalog->Resolve(ref, CallerOf(s, ctx));
    if (!resolved.has_value()) {
      const Status& e = resolved.error();
      return Status(e.code(), e.message(), e.code() == StatusCode::kInternal ? std::string() : field);
    }
    (*b)["path"] = resolved->key;
    (*b)["storage_type"] = "local";
    (*b)["catalog"] = {{"reference", ref.ToString()},
                       {"name", ref.name},
                       {"version", resolved->version.version},
                       {"digest", resolved->version.digest}};
  }
  return Status::Ok();
}

void CountCatalogUse(ServerState& s, const json& body, metadata::CatalogCounter counter) {
  if (s.services.catalog == nullptr || !body.is_object()) return;
  for (const char* block : {"model", "dataset"}) {
    auto b = body.find(block);
    if (b == body.end() || !b->is_object() || !b->contains("catalog")) continue;
    const json& c = (*b)["catalog"];
    if (!c.is_object() || !c.contains("name") || !c["name"].is_string()) continue;
    s.services.catalog->Count(std::string_view(block) == "dataset" ? catalog::Kind::kDataset : catalog::Kind::kModel,
                              c["name"].get<std::string>(), counter);
  }
}

}  // namespace mlaas::api
