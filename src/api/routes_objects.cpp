// Object store endpoints: S3-style listing, streamed upload, download and delete.
#include <algorithm>
#include <ctime>
#include <optional>
#include <regex>

#include "api/schemas.h"
#include "api/ownership.h"
#include "api/server_state.h"
#include "common/text.h"
#include "common/time_util.h"

namespace mlaas::api {

using nlohmann::json;

namespace {

constexpr size_t kChunk = 256 * 1024;

json InfoJson(const storage::ObjectInfo& o) {
  return {{"key", o.key},
          {"size", o.size},
          {"last_modified", FormatIsoUtc(o.last_modified_ms)},
          {"etag", o.etag}};
}

std::string HttpDate(int64_t ms) {
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof(buf), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return buf;
}

std::string ContentTypeFor(const std::string& key) {
  auto ends = [&](std::string_view ext) {
    return key.size() >= ext.size() && key.compare(key.size() - ext.size(), ext.size(), ext) == 0;
  };
  if (ends(".json")) return "application/json";
  if (ends(".jsonl") || ends(".ndjson")) return "application/x-ndjson";
  if (ends(".csv")) return "text/csv; charset=utf-8";
  if (ends(".txt") || ends(".md")) return "text/plain; charset=utf-8";
  // Anything else (HTML included) is served as bytes, never rendered by a browser.
  return "application/octet-stream";
}

Result<storage::ObjectStore*> LocalStore(ServerState& s) { return s.services.storage.Get("local"); }

Status KeyStatus(const std::string& key) {
  Status st = storage::ValidateKey(key);
  return st.ok() ? st : InvalidArgument(st.message(), "key");
}

// The catalog's versions are immutable: only the catalog writes under catalog/.
Status NotInCatalog(const std::string& key) {
  if (key == "catalog" || StartsWith(key, "catalog/"))
    return Status(StatusCode::kPermissionDenied,
                  "catalog/ holds the catalog's immutable versions: change them through /api/v1/catalog", "key");
  return Status::Ok();
}

void Upload(ServerState& s, RequestContext& ctx) {
  if (Status st = KeyStatus(ctx.path_params["key"]); !st.ok()) return ctx.Error(st);
  const std::string key = HomeOf(s, ctx) + ctx.path_params["key"];
  if (Status st = NotInCatalog(key); !st.ok()) return ctx.Error(st);
  auto store = LocalStore(s);
  if (!store.has_value()) return ctx.Error(store.error());
  const uint64_t limit = s.options.max_upload_bytes;
  auto too_large = [&] {
    ctx.res.set_header("Connection", "close");
    ctx.res.status = 413;
    ctx.res.set_content(
        DumpJson({{"error", {{"code", "payload_too_large"},
                             {"message", "upload is larger than the " + FormatBytes(limit) +
                                             " allowed (see --max-upload-bytes)"},
                             {"request_id", ctx.request_id}}}}),
        "application/json");
  };
  if (ctx.req.has_header("Content-Length") &&
      ctx.req.get_header_value<uint64_t>("Content-Length") > limit) {
    return too_large();
  }
  auto writer = (*store)->Create(key);
  if (!writer.has_value()) return ctx.Error(writer.error().WithField("key"));
  if (ctx.reader != nullptr) {
    Status write_error;
    bool exceeded = false;
    bool ok = (*ctx.reader)([&](const char* data, size_t len) {
      if ((*writer)->bytes_written() + len > limit) {
        exceeded = true;
        return false;
      }
      write_error = (*writer)->Write(std::string_view(data, len));
      return write_error.ok();
    });
    if (exceeded) return too_large();
    if (!write_error.ok()) return ctx.Error(write_error);
    if (!ok) {
      ctx.res.set_header("Connection", "close");
      return ctx.Error(InvalidArgument("the upload was interrupted before its end"));
    }
  }
  auto info = (*writer)->Commit();
  if (!info.has_value()) return ctx.Error(info.error());
  ctx.res.set_header("ETag", "\"" + info->etag + "\"");
  ctx.Json(201, InfoJson(*info));
}

void Download(ServerState& s, RequestContext& ctx) {
  if (Status st = KeyStatus(ctx.path_params["key"]); !st.ok()) return ctx.Error(st);
  const std::string key = HomeOf(s, ctx) + ctx.path_params["key"];
  auto store = LocalStore(s);
  if (!store.has_value()) return ctx.Error(store.error());
  auto opened = (*store)->Open(key);
  if (!opened.has_value()) return ctx.Error(opened.error());
  std::shared_ptr<storage::ObjectReader> reader = std::move(opened).value();
  StreamObject(ctx, reader, "\"" + reader->info().etag + "\"", key);
}

}  // namespace

void StreamObject(RequestContext& ctx, std::shared_ptr<storage::ObjectReader> reader, const std::string& etag,
                  const std::string& name) {
  const storage::ObjectInfo info = reader->info();
  ctx.res.set_header("ETag", etag);
  ctx.res.set_header("Last-Modified", HttpDate(info.last_modified_ms));
  ctx.res.set_header("X-Content-Type-Options", "nosniff");
  if (ctx.req.get_header_value("If-None-Match") == etag) {
    ctx.res.status = 304;
    return;
  }
  // Ranges as RFC 9110 reads them against the object's size, before cpp-httplib (0.11) serves
  // them unchecked: a suffix longer than the object is all of it, an end past it is its end, a
  // start past it leaves the range out; none left is a 416.
  // An empty object, a malformed range ("bytes=-") or more than 16 ranges (each may ask for the
  // whole object again): the Range is ignored and the object sent whole (200), as RFC 9110 allows.
  const bool malformed = std::any_of(ctx.req.ranges.begin(), ctx.req.ranges.end(),
                                     [](const auto& r) { return r.first < 0 && r.second < 0; });
  if (!ctx.req.ranges.empty() && (info.size == 0 || malformed || ctx.req.ranges.size() > 16))
    const_cast<httplib::Request&>(ctx.req).ranges.clear();
  if (!ctx.req.ranges.empty()) {
    const auto size = static_cast<ssize_t>(info.size);
    httplib::Ranges satisfiable;
    for (auto [first, last] : ctx.req.ranges) {
      if (first < 0) {  // the last `last` bytes
        if (last <= 0) continue;
        first = size - std::min(last, size);
        last = size - 1;
      } else {
        if (first >= size) continue;
        last = last < 0 ? size - 1 : std::min(last, size - 1);
      }
      satisfiable.emplace_back(first, last);
    }
    // The request is the server's own (its handlers see it const): the checked ranges replace the
    // asked ones, none for a 416, whose body is the error's.
    const bool none = satisfiable.empty();
    const_cast<httplib::Request&>(ctx.req).ranges = std::move(satisfiable);
    if (none) {
      ctx.res.set_header("Content-Range", "bytes */" + std::to_string(info.size));
      return ctx.Json(416, ErrorBody(Status(StatusCode::kInvalidArgument,
                                            "the Range asks only for bytes past the end of '" + EscapeForLog(name) + "' (" +
                                                std::to_string(info.size) + " bytes)",
                                            "Range"),
                                     ctx.request_id));
    }
  }
  auto position = std::make_shared<uint64_t>(0);
  ctx.res.set_content_provider(
      info.size, ContentTypeFor(name),
      [reader, position](size_t offset, size_t length, httplib::DataSink& sink) {
        if (offset != *position) {
          if (!reader->Seek(offset).ok()) return false;
          *position = offset;
        }
        std::string buf(std::min(length, kChunk), '\0');
        auto n = reader->Read(buf.data(), buf.size());
        if (!n.has_value() || *n == 0) return false;
        *position += *n;
        return sink.write(buf.data(), *n);
      });
}

void AddObjectRoutes(ServerState& s) {
  s.router.Add(
      {.method = "GET",
       .access = Access::kRead,
       .pattern = "/api/v1/ml/utilities/s3/object",
       .tag = "objects",
       .summary = "List objects in the object store, or in an S3 bucket (ListObjectsV2 semantics)",
       .query = {{"bucket", {{"type", "string"}},
                  "an S3 bucket to list (storage_type s3) instead of the server's own store"},
                 {"prefix", {{"type", "string"}}, "only keys starting with this"},
                 {"delimiter", {{"type", "string"}}, "roll keys up to common prefixes (e.g. /)"},
                 {"max_keys", {{"type", "integer"}, {"minimum", 1}, {"maximum", 1000},
                               {"default", 1000}}, "objects and prefixes per page"},
                 {"continuation_token", {{"type", "string"}},
                  "next_continuation_token of the previous page"},
                 {"start_after", {{"type", "string"}}, "only keys after this one"}},
       .responses = {{200, "{storage_type, bucket, objects: [{key, size, last_modified, etag}], common_prefixes, "
                           "is_truncated, next_continuation_token, key_count}"},
                     {400, "bad query parameter"},
                     {403, "a bucket not shared with accounts"},
                     {404, "no such bucket"},
                     {501, "S3 is not configured"}},
       .handler = [&s](RequestContext& ctx) {
         // The server's own store, in the caller's home; or a bucket, keys as S3 has them.
         const std::optional<std::string> bucket = ctx.Query("bucket");
         std::string root;
         Result<storage::ObjectStore*> store = LocalStore(s);
         if (bucket) {
           static const std::regex bucket_name("[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]");
           if (!std::regex_match(*bucket, bucket_name))
             return ctx.Error(InvalidArgument("'" + *bucket + "' is not an S3 bucket name", "bucket"));
           if (Status st = MayUseBucket(s, ctx, *bucket, "bucket"); !st.ok()) return ctx.Error(st);
           store = s.services.storage.Get("s3");
           root = *bucket + "/";
         } else {
           root = HomeOf(s, ctx);
         }
         if (!store.has_value()) return ctx.Error(store.error());
         storage::ListOptions o;
         o.prefix = root + ctx.Query("prefix").value_or("");
         o.delimiter = ctx.Query("delimiter").value_or("");
         o.continuation_token = ctx.Query("continuation_token").value_or("");
         o.start_after = ctx.Query("start_after").value_or("");
         if (!o.start_after.empty()) o.start_after = root + o.start_after;
         auto max_keys = IntQuery(ctx, "max_keys", 1000, 1, 1000);
         if (!max_keys.has_value()) return ctx.Error(max_keys.error());
         o.max_keys = static_cast<size_t>(*max_keys);
         if (o.delimiter.size() > 16) {
           return ctx.Error(InvalidArgument("delimiter must be at most 16 bytes", "delimiter"));
         }
         auto page = (*store)->List(o);
         if (!page.has_value()) return ctx.Error(page.error());
         json objects = json::array();
         auto relative = [&](const std::string& key) { return bucket ? key.substr(std::min(key.size(), root.size())) : key; };
         for (auto obj : page->objects) {
           obj.key = relative(obj.key);
           objects.push_back(InfoJson(obj));
         }
         json prefixes = json::array();
         for (const auto& p : page->common_prefixes) prefixes.push_back(relative(p));
         json out = {{"storage_type", (*store)->storage_type()},
                     {"bucket", bucket ? json(*bucket) : json()},
                     {"prefix", ctx.Query("prefix").value_or("")},
                     {"delimiter", o.delimiter},
                     {"max_keys", o.max_keys},
                     {"key_count", page->objects.size() + page->common_prefixes.size()},
                     {"is_truncated", page->is_truncated},
                     {"objects", objects},
                     {"common_prefixes", prefixes}};
         out["next_continuation_token"] =
             page->is_truncated ? json(page->next_continuation_token) : json();
         ctx.Json(200, out);
       }});

  s.router.Add({.method = "PUT",
                .access = Access::kWrite,
                .pattern = "/api/v1/objects/{key+}",
                .tag = "objects",
                .summary = "Upload an object (streamed to disk, replaced atomically)",
                .body = BodyKind::kStream,
                .responses = {{201, "stored"},
                              {400, "bad key"},
                              {409, "the key collides with an existing prefix or object"},
                              {413, "larger than --max-upload-bytes"}},
                .response_schema = schemas::ObjectInfo(),
                .handler = [&s](RequestContext& ctx) { Upload(s, ctx); }});

  s.router.Add({.method = "GET",
                .access = Access::kRead,
                .pattern = "/api/v1/objects/{key+}",
                .tag = "objects",
                .summary = "Download an object (streamed; Range and If-None-Match supported)",
                .responses = {{200, "the object's bytes"},
                              {304, "not modified (If-None-Match)"},
                              {404, "no such object"}},
                .produces = "application/octet-stream",
                .handler = [&s](RequestContext& ctx) { Download(s, ctx); }});

  s.router.Add({.method = "DELETE",
                .access = Access::kWrite,
                .pattern = "/api/v1/objects/{key+}",
                .tag = "objects",
                .summary = "Delete an object",
                .responses = {{204, "deleted"}, {404, "no such object"}},
                .handler = [&s](RequestContext& ctx) {
                  if (Status st = KeyStatus(ctx.path_params["key"]); !st.ok()) return ctx.Error(st);
                  const std::string key = HomeOf(s, ctx) + ctx.path_params["key"];
                  if (Status st = NotInCatalog(key); !st.ok()) return ctx.Error(st);
                  auto store = LocalStore(s);
                  if (!store.has_value()) return ctx.Error(store.error());
                  if (Status st = (*store)->Delete(key); !st.ok()) return ctx.Error(st);
                  ctx.res.status = 204;
                }});
}

}  // namespace mlaas::api
