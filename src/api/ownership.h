// Whose things a request may touch (docs/security.md, "Accounts and tokens"), internal to the
// api module. With auth on, a user's object keys and request paths are relative to their home,
// users/<name>/: alice's `models/m1` is stored as `users/alice/models/m1`, and answers show it
// as `models/m1` again. An admin, and every request of a server with auth off, addresses the
// whole store. Tasks are seen, listed and cancelled by who submitted them (and admins); another
// user's task answers 404, as an unknown one.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "api/server_state.h"
#include "metadata/task_store.h"

namespace mlaas::api {

// "users/<name>/" for a user of a server with auth on; "" for an admin or with auth off.
std::string HomeOf(const ServerState& s, const RequestContext& ctx);

// `key` inside `home`; InvalidArgument naming `field` for a key that is not one.
Result<std::string> InHome(const std::string& home, const std::string& key, const std::string& field);

// Fits the `path` of each storage block of a request body (tokenizer, model, dataset,
// model_save, vector_store_save) to its caller: local paths move into the caller's home; s3
// paths stay, in buckets the caller may use (MayUseBucket); hub paths stay (the hub is public
// and read-only). Errors name the block's path. catalog:// references are left for
// ResolveCatalogRefs (catalog_refs.h).
Status PathsToHome(const ServerState& s, const RequestContext& ctx, nlohmann::json& body);

// Whether the caller may read and write S3 bucket `bucket` with the server's credentials: an
// admin (and anyone with auth off) any bucket, other users those of `mlaas serve --s3-buckets`.
// PermissionDenied naming `field` otherwise.
Status MayUseBucket(const ServerState& s, const RequestContext& ctx, const std::string& bucket, const std::string& field);
// The storage blocks of a request body, by their field names ("model", "dataset.eval_dataset", ...).
std::vector<std::pair<std::string, nlohmann::json*>> StorageBlocks(nlohmann::json& body);

// Who submits tasks from this request: the user with auth on, "" otherwise.
std::string Submitter(const ServerState& s, const RequestContext& ctx);

// Whether the caller sees everyone's things (an admin, anyone with auth off).
bool SeesAll(const ServerState& s, const RequestContext& ctx);
// Whether the caller may see task `t` (its submitter, or SeesAll).
bool MaySee(const ServerState& s, const RequestContext& ctx, const metadata::TaskRecord& t);

// `text` with `home` cut out ("users/alice/models/m1" -> "models/m1").
std::string StripHome(const std::string& home, std::string text);

}  // namespace mlaas::api
