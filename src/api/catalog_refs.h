// catalog:// references in request bodies (docs/catalog.md), internal to the api module.
#pragma once

#include <nlohmann/json.hpp>

#include "api/server_state.h"
#include "catalog/catalog.h"
#include "common/objective.h"

namespace mlaas::api {

// Whom the catalog sees in this request.
catalog::Caller CallerOf(const ServerState& s, const RequestContext& ctx);

// Replaces each catalog reference in the `path` of a request's model, tokenizer and dataset
// blocks by the verified version's files (local storage) and records what it named in the
// block's "catalog" member ({reference, name, version, digest}); refuses outputs
// (model_save, vector_store_save) inside the catalog's own storage. Errors name the field
// (a version the caller may not see answers 404, like an unknown one). A dataset version must
// be of the route's modality (`datasets`: a text file, or an image folder); a dataset block
// without a format takes the version's.
Status ResolveCatalogRefs(ServerState& s, const RequestContext& ctx, nlohmann::json& body,
                          Modality datasets = Modality::kText);

// InvalidArgument naming `field` when `block` ({path, storage_type}) names the catalog's own
// storage (catalog/ of the local store, however the path is spelled): nobody but the catalog
// writes there.
Status NotIntoCatalog(ServerState& s, const nlohmann::json& block, const std::string& name, const std::string& field);

// Counts a use of each catalog entry `body`'s blocks name (after ResolveCatalogRefs).
void CountCatalogUse(ServerState& s, const nlohmann::json& body, metadata::CatalogCounter counter);

}  // namespace mlaas::api
