#include "api/ownership.h"

#include <cctype>

#include "catalog/catalog.h"
#include "storage/object_store.h"

namespace mlaas::api {

using nlohmann::json;

namespace {

bool Accounts(const ServerState& s) { return s.services.authenticator != nullptr; }

}  // namespace

Result<std::string> InHome(const std::string& home, const std::string& key, const std::string& field) {
  if (home.empty()) return key;
  if (Status st = storage::ValidateKey(key); !st.ok()) return InvalidArgument(st.message(), field);
  return home + key;
}

std::vector<std::pair<std::string, json*>> StorageBlocks(json& body) {
  std::vector<std::pair<std::string, json*>> out;
  if (!body.is_object()) return out;
  for (const char* block : {"tokenizer", "model", "dataset", "model_save", "vector_store_save"}) {
    auto b = body.find(block);
    if (b == body.end() || !b->is_object()) continue;
    out.emplace_back(block, &*b);
    if (std::string_view(block) == "dataset") {
      if (auto e = b->find("eval_dataset"); e != b->end() && e->is_object()) out.emplace_back("dataset.eval_dataset", &*e);
    }
  }
  return out;
}

Status PathsToHome(const ServerState& s, const RequestContext& ctx, json& body) {
  const std::string home = HomeOf(s, ctx);
  // One path of `storage_type`: an S3 key's bucket must be shared; a local key moves to the home.
  auto to_home = [&](json& path, const std::string& storage_type, const std::string& field) -> Status {
    if (storage_type == "s3") {
      std::string p = path.get<std::string>();
      if (p.rfind("s3://", 0) == 0) p.erase(0, 5);
      return MayUseBucket(s, ctx, p.substr(0, p.find('/')), field);
    }
    if (home.empty()) return Status::Ok();
    MLAAS_ASSIGN_OR_RETURN(std::string key, InHome(home, path.get<std::string>(), field));
    path = key;
    return Status::Ok();
  };
  auto storage_type_of = [](const json& block) {
    auto type = block.find("storage_type");
    return type != block.end() && type->is_string() ? type->get<std::string>() : std::string("local");
  };
  for (auto& [name, block] : StorageBlocks(body)) {
    auto path = block->find("path");
    if (path == block->end() || !path->is_string() || catalog::IsReference(path->get<std::string>())) continue;
    const std::string storage_type = storage_type_of(*block);
    if (storage_type == "hugging_face_hub") continue;
    MLAAS_RETURN_IF_ERROR(to_home(*path, storage_type, name + ".path"));
  }
  // Images named by key (cv predict): each one, as a block's path.
  auto in = body.is_object() ? body.find("predict_input") : body.end();
  if (in != body.end() && in->is_object()) {
    auto paths = in->find("paths");
    if (paths != in->end() && paths->is_array()) {
      const std::string storage_type = storage_type_of(*in);
      for (auto& p : *paths)
        if (p.is_string()) MLAAS_RETURN_IF_ERROR(to_home(p, storage_type, "predict_input.paths"));
    }
  }
  return Status::Ok();
}

Status MayUseBucket(const ServerState& s, const RequestContext& ctx, const std::string& bucket, const std::string& field) {
  if (SeesAll(s, ctx)) return Status::Ok();
  for (const auto& shared : s.options.s3_buckets)
    if (shared == bucket) return Status::Ok();
  return Status(StatusCode::kPermissionDenied,
                "S3 bucket '" + bucket + "' is not shared with accounts (an admin shares it: mlaas serve --s3-buckets)")
      .WithField(field);
}

std::string Submitter(const ServerState& s, const RequestContext& ctx) {
  return Accounts(s) ? ctx.principal.user : std::string();
}

bool SeesAll(const ServerState& s, const RequestContext& ctx) {
  return !Accounts(s) || ctx.principal.Has(auth::Scope::kAdmin);
}

bool MaySee(const ServerState& s, const RequestContext& ctx, const metadata::TaskRecord& t) {
  return SeesAll(s, ctx) || t.submitted_by == ctx.principal.user;
}

std::string HomeOf(const ServerState& s, const RequestContext& ctx) {
  if (SeesAll(s, ctx) || ctx.principal.anonymous()) return "";
  return "users/" + ctx.principal.user + "/";
}

std::string StripHome(const std::string& home, std::string text) {
  if (home.empty()) return text;
  // Where a key starts: not inside a key ("data/users/bob/x" keeps its "users/bob/"), and once
  // at a place (the user's own key "users/bob/x" is home + "users/bob/x").
  auto in_key = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-' || c == '/'; };
  // The end of the JSON string whose text starts at `i` (its closing quote), or npos.
  auto string_end = [&text](size_t i) {
    for (; i < text.size(); ++i) {
      if (text[i] == '\\') ++i;
      else if (text[i] == '"') return i;
    }
    return std::string::npos;
  };
  std::string out;
  out.reserve(text.size());
  size_t from = 0;
  for (size_t at = text.find(home); at != std::string::npos; at = text.find(home, at + 1)) {
    // (a letter after a backslash ends a JSON escape, "\n": no key goes on through it)
    const bool escaped = at >= 2 && text[at - 2] == '\\';
    if (at < from || (at > 0 && in_key(text[at - 1]) && !escaped)) continue;
    out.append(text, from, at - from);
    from = at + home.size();
    // A JSON string that starts with the home is a key (a closing quote is never followed by a
    // letter): the home is cut at its start only, the rest is the key's own name, whatever it
    // holds ("sp/x users/bob/y" is a name with a space).
    if (at > 0 && text[at - 1] == '"' && !escaped) {
      const size_t end = string_end(from);
      if (end == std::string::npos) break;
      out.append(text, from, end - from);
      from = end;
    }
  }
  out.append(text, from, std::string::npos);
  return out;
}

}  // namespace mlaas::api
