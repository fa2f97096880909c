// Accounts: who am I, and API tokens — made by an admin (the secret shown once), listed
// without secrets, revoked (docs/security.md, "Accounts and tokens").
#include "api/schemas.h"
#include "api/server_state.h"
#include "common/time_util.h"

namespace mlaas::api {

using nlohmann::json;

namespace {

json TokenJson(const metadata::TokenRecord& t) {
  json j = {{"id", t.id},
            {"user", t.user},
            {"scopes", t.scopes},
            {"description", t.description},
            {"created_at", FormatIsoUtc(t.created_ms)},
            {"expires_at", t.expires_ms ? json(FormatIsoUtc(t.expires_ms)) : json()},
            {"last_used_at", t.last_used_ms ? json(FormatIsoUtc(t.last_used_ms)) : json()},
            {"revoked", t.revoked_ms != 0}};
  if (t.revoked_ms) j["revoked_at"] = FormatIsoUtc(t.revoked_ms);
  return j;
}

bool IsAdmin(const RequestContext& ctx) { return ctx.principal.Has(auth::Scope::kAdmin); }

// Runs `call` when this server has accounts (auth on), 409 otherwise.
template <class Call>
void WithAccounts(ServerState& s, RequestContext& ctx, Call call) {
  if (s.services.authenticator == nullptr)
    return ctx.Error(FailedPrecondition("this server runs without accounts: start it with `mlaas serve --auth on`"));
  call(*s.services.authenticator);
}

}  // namespace

void AddAccountRoutes(ServerState& s) {
  using schemas::Object;
  s.router.Add({.method = "GET",
                .access = Access::kRead,
                .pattern = "/api/v1/whoami",
                .tag = "accounts",
                .summary = "The caller: user, scopes, token id, and whether this server checks tokens",
                .responses = {{200, "{user, scopes, token_id, auth}"}, {401, "no valid token"}},
                .handler = [&s](RequestContext& ctx) {
                  json scopes = json::array();
                  for (auth::Scope sc : ctx.principal.scopes) scopes.push_back(std::string(auth::ScopeName(sc)));
                  ctx.Json(200, {{"user", ctx.principal.user},
                                 {"scopes", scopes},
                                 {"token_id", ctx.principal.token_id.empty() ? json() : json(ctx.principal.token_id)},
                                 {"auth", s.services.authenticator ? "on" : "off"}});
                }});
  s.router.Add(
      {.method = "POST",
       .access = Access::kAdmin,
       .pattern = "/api/v1/tokens",
       .tag = "accounts",
       .summary = "Make an API token for a user (created when new); the token is in this answer only",
       .body = BodyKind::kJson,
       .request_schema = Object({{"user", {{"type", "string"}, {"minLength", 1}, {"maxLength", 64}}},
                                 {"scopes", {{"type", "array"}, {"minItems", 1}, {"maxItems", 3},
                                             {"items", {{"type", "string"}, {"enum", {"read", "write", "admin"}}}}}},
                                 {"expires_in", {{"type", "integer"}, {"minimum", 0}, {"maximum", 100LL * 365 * 86400},
                                                 {"description", "seconds (at most 100 years); 0 or absent: never"}}},
                                 {"description", {{"type", "string"}, {"maxLength", 256}}}},
                                {"user", "scopes"}),
       .responses = {{201, "{token, id, user, scopes, expires_at, ...}: keep the token, it is not shown again"},
                     {400, "invalid user name or scope"},
                     {403, "only an admin makes tokens"}},
       .handler = [&s](RequestContext& ctx) {
         WithAccounts(s, ctx, [&](auth::Authenticator& a) {
           std::vector<std::string> scopes = ctx.body["scopes"].get<std::vector<std::string>>();
           auto issued = a.Issue(ctx.body["user"].get<std::string>(), scopes, ctx.body.value("expires_in", int64_t{0}),
                                 ctx.body.value("description", std::string()));
           if (!issued.has_value()) return ctx.Error(issued.error());
           json j = TokenJson(issued->record);
           j["token"] = issued->token;
           ctx.res.set_header("Cache-Control", "no-store");
           ctx.Json(201, j);
         });
       }});
  s.router.Add({.method = "GET",
                .access = Access::kRead,
                .pattern = "/api/v1/tokens",
                .tag = "accounts",
                .summary = "API tokens, without their secrets: the caller's own (an admin: everyone's, or ?user=)",
                .query = {{"user", {{"type", "string"}}, "an admin: only this user's tokens"}},
                .responses = {{200, "{tokens: [...]}"}},
                .handler = [&s](RequestContext& ctx) {
                  WithAccounts(s, ctx, [&](auth::Authenticator& a) {
                    std::string user = ctx.principal.user;
                    if (IsAdmin(ctx)) user = ctx.Query("user").value_or("");
                    auto list = a.List(user);
                    if (!list.has_value()) return ctx.Error(list.error());
                    json tokens = json::array();
                    for (const auto& t : *list) tokens.push_back(TokenJson(t));
                    ctx.Json(200, {{"tokens", tokens}});
                  });
                }});
  s.router.Add({.method = "DELETE",
                .access = Access::kRead,
                .pattern = "/api/v1/tokens/{id}",
                .tag = "accounts",
                .summary = "Revoke a token (one's own; an admin: any)",
                .responses = {{200, "the revoked token"}, {403, "the token has a scope the caller's token lacks"}, {404, "no such token of yours"}},
                .handler = [&s](RequestContext& ctx) {
                  WithAccounts(s, ctx, [&](auth::Authenticator& a) {
                    const std::string id = ctx.path_params["id"];
                    auto t = a.Get(id);
                    // Another user's token is as absent as an unknown one.
                    if (!t.has_value() || (!IsAdmin(ctx) && t->user != ctx.principal.user))
                      return ctx.Error(NotFound("no token '" + id + "'").WithField("id"));
                    // A token revokes none that can do more than it can (a read-only token
                    // does not lock its user's write or admin tokens out).
                    for (const std::string& name : t->scopes) {
                      auto scope = auth::ParseScope(name);
                      if (scope && !ctx.principal.Has(*scope))
                        return ctx.Error(Status(StatusCode::kPermissionDenied,
                                                "token '" + id + "' has the " + name +
                                                    " scope, which this token lacks: revoke it with a token that has it")
                                             .WithField("id"));
                    }
                    if (Status st = a.Revoke(id); !st.ok()) return ctx.Error(st);
                    auto after = a.Get(id);
                    if (!after.has_value()) return ctx.Error(after.error());
                    ctx.Json(200, TokenJson(*after));
                  });
                }});
}

}  // namespace mlaas::api
