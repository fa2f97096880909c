#include "api/catalog_refs.h"

#include "api/ownership.h"
#include "common/text.h"

namespace mlaas::api {

using nlohmann::json;

catalog::Caller CallerOf(const ServerState& s, const RequestContext& ctx) {
  return {ctx.principal.user, SeesAll(s, ctx)};
}

Status ResolveCatalogRefs(ServerState& s, const RequestContext& ctx, json& body, Modality datasets) {
  for (auto& [name, block] : StorageBlocks(body)) {
    auto path = block->find("path");
    if (path == block->end() || !path->is_string()) continue;
    const std::string field = name + ".path";
    const bool output = name == "model_save" || name == "vector_store_save";
    if (output || !catalog::IsReference(path->get<std::string>())) {
      // Nobody but the catalog writes under catalog/, however the path is spelled.
      if (!output) continue;
      if (catalog::IsReference(path->get<std::string>()))
        return InvalidArgument("an output goes to a storage path, not a catalog reference", field);
      MLAAS_RETURN_IF_ERROR(NotIntoCatalog(s, *block, name, field));
      continue;
    }
    MLAAS_ASSIGN_OR_RETURN(catalog::Reference ref, catalog::ParseReference(path->get<std::string>(), field));
    const bool want_dataset = StartsWith(name, "dataset");
    if ((ref.kind == catalog::Kind::kDataset) != want_dataset)
      return InvalidArgument(want_dataset ? field + " names a model: use catalog://datasets/<name>"
                                          : field + " names a dataset: use catalog://<model name>",
                             field);
    if (s.services.catalog == nullptr) return Unimplemented("this server has no catalog", field);
    auto resolved = s.services.catalog->Resolve(ref, CallerOf(s, ctx));
    if (!resolved.has_value()) {
      const Status& e = resolved.error();
      return Status(e.code(), e.message(), e.code() == StatusCode::kInternal ? std::string() : field);
    }
    if (want_dataset) {
      const json& facts = resolved->version.facts;
      const std::string format = facts.is_object() ? facts.value("format", std::string()) : std::string();
      const bool images = catalog::IsFolderDataset(facts);
      if (images != (datasets == Modality::kImage))
        return InvalidArgument(ref.ToString() + " is " + (images ? "an image dataset (" + format + "): image "
                                                                   "classification trains on it (/api/v1/ml/cv/train/model)"
                                                                 : "a " + format + " file of rows, not an image folder: "
                                                                   "register the images as an image_folder or idx dataset"),
                               field);
      if (!block->contains("format") && !format.empty()) {
        (*block)["format"] = format;
      } else if (block->contains("format") && !format.empty() && (*block)["format"] != format) {
        return InvalidArgument(ref.ToString() + " is a " + format + " dataset, not " + (*block)["format"].dump() +
                                   ": leave dataset.format out (the version knows it)",
                               name + ".format");
      }
    }
    (*block)["path"] = resolved->key;
    (*block)["storage_type"] = "local";
    (*block)["catalog"] = {{"reference", ref.ToString()},
                           {"name", ref.name},
                           {"version", resolved->version.version},
                           {"digest", resolved->version.digest},
                           {"entry_created_ms", resolved->entry_created_ms}};
  }
  return Status::Ok();
}

Status NotIntoCatalog(ServerState& s, const json& block, const std::string& name, const std::string& field) {
  auto ref = s.services.storage.Resolve(block, name);
  if (ref.has_value() && ref->store->storage_type() == "local" && (ref->key == "catalog" || StartsWith(ref->key, "catalog/")))
    return InvalidArgument("catalog/ holds the catalog's immutable versions: save elsewhere and register with "
                           "POST /api/v1/catalog/models/{name}/versions (or the training request's catalog block)",
                           field);
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
