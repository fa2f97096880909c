// Model serving: deployments (/api/v1/deployments) and the Open Inference Protocol v2 of
// KServe and Triton (/v2/...), whose errors are {"error": "..."} (see api_server.cpp).
#include "api/catalog_refs.h"
#include "api/forward.h"
#include "api/schemas.h"
#include "api/ownership.h"
#include "api/server_state.h"
#include "serve/deployments.h"

#include <spdlog/spdlog.h>

#include <mutex>

namespace mlaas::api {

using nlohmann::json;

namespace {

json Tensor(const std::string& name, const std::string& type, std::vector<int64_t> shape, json data) {
  return {{"name", name}, {"datatype", type}, {"shape", std::move(shape)}, {"data", std::move(data)}};
}

// The outputs an objective produces, as the metadata endpoint describes them.
json OutputsMetadata(const predict::ModelInfo& info) {
  if (info.objective == "text-classification" || info.objective == "image-classification") {
    return json::array({{{"name", "label"}, {"datatype", "BYTES"}, {"shape", {-1}}},
                        {{"name", "score"}, {"datatype", "FP32"}, {"shape", {-1}}},
                        {{"name", "probabilities"}, {"datatype", "FP32"}, {"shape", {-1, static_cast<int64_t>(info.labels.size())}}}});
  }
  if (info.objective == "masked-lm") {
    return json::array({{{"name", "sequence"}, {"datatype", "BYTES"}, {"shape", {-1}}},
                        {{"name", "candidates"}, {"datatype", "BYTES"}, {"shape", {-1}}}});
  }
  if (info.objective == "token-classification") {  // each text's entities as a JSON list
    return json::array({{{"name", "entities"}, {"datatype", "BYTES"}, {"shape", {-1}}}});
  }
  if (info.objective == "next-sentence-prediction") {  // score: the probability that the pair follows
    return json::array({{{"name", "is_next"}, {"datatype", "BOOL"}, {"shape", {-1}}},
                        {{"name", "score"}, {"datatype", "FP32"}, {"shape", {-1}}}});
  }
  if (info.objective == "question-answering") {  // start, end: code points of the context, [start, end)
    return json::array({{{"name", "answer"}, {"datatype", "BYTES"}, {"shape", {-1}}},
                        {{"name", "score"}, {"datatype", "FP32"}, {"shape", {-1}}},
                        {{"name", "start"}, {"datatype", "INT64"}, {"shape", {-1}}},
                        {{"name", "end"}, {"datatype", "INT64"}, {"shape", {-1}}}});
  }
  if (info.objective == "causal-lm") {
    return json::array({{{"name", "generated_text"}, {"datatype", "BYTES"}, {"shape", {-1}}},
                        {{"name", "finish_reason"}, {"datatype", "BYTES"}, {"shape", {-1}}},
                        {{"name", "new_tokens"}, {"datatype", "INT64"}, {"shape", {-1}}}});
  }
  return json::array({{{"name", "embedding"}, {"datatype", "FP32"}, {"shape", {-1, info.embedding_size}}}});
}

Result<json> InferResponse(const std::string& model, const serve::InferResult& r, const std::vector<std::string>& wanted) {
  const auto& info = r.model->info();
  const auto n = static_cast<int64_t>(r.predictions.size());
  std::vector<json> outputs;
  if (info.objective == "text-classification" || info.objective == "image-classification") {
    json labels = json::array(), scores = json::array(), probs = json::array();
    for (const auto& p : r.predictions) {
      labels.push_back(p["label"]);
      scores.push_back(p["score"]);
      for (const auto& s : p.value("scores", json::array())) probs.push_back(s);
    }
    outputs.push_back(Tensor("label", "BYTES", {n}, std::move(labels)));
    outputs.push_back(Tensor("score", "FP32", {n}, std::move(scores)));
    outputs.push_back(Tensor("probabilities", "FP32", {n, static_cast<int64_t>(info.labels.size())}, std::move(probs)));
  } else if (info.objective == "masked-lm") {
    json sequences = json::array(), candidates = json::array();
    for (const auto& p : r.predictions) {
      sequences.push_back(p["sequence"]);
      candidates.push_back(p["masks"].dump());
    }
    outputs.push_back(Tensor("sequence", "BYTES", {n}, std::move(sequences)));
    outputs.push_back(Tensor("candidates", "BYTES", {n}, std::move(candidates)));
  } else if (info.objective == "token-classification") {
    json entities = json::array();
    for (const auto& p : r.predictions) entities.push_back(p.dump());
    outputs.push_back(Tensor("entities", "BYTES", {n}, std::move(entities)));
  } else if (info.objective == "next-sentence-prediction") {
    json is_next = json::array(), scores = json::array();
    for (const auto& p : r.predictions) {
      is_next.push_back(p.value("is_next", false));
      scores.push_back(p.value("score", 0.0));
    }
    outputs.push_back(Tensor("is_next", "BOOL", {n}, std::move(is_next)));
    outputs.push_back(Tensor("score", "FP32", {n}, std::move(scores)));
  } else if (info.objective == "question-answering") {
    json answers = json::array(), scores = json::array(), starts = json::array(), ends = json::array();
    for (const auto& p : r.predictions) {
      answers.push_back(p.value("answer", ""));
      scores.push_back(p.value("score", 0.0));
      starts.push_back(p.value("start", 0));
      ends.push_back(p.value("end", 0));
    }
    outputs.push_back(Tensor("answer", "BYTES", {n}, std::move(answers)));
    outputs.push_back(Tensor("score", "FP32", {n}, std::move(scores)));
    outputs.push_back(Tensor("start", "INT64", {n}, std::move(starts)));
    outputs.push_back(Tensor("end", "INT64", {n}, std::move(ends)));
  } else if (info.objective == "causal-lm") {
    json texts = json::array(), reasons = json::array(), counts = json::array();
    for (const auto& p : r.predictions) {
      texts.push_back(p.value("generated_text", ""));
      reasons.push_back(p.value("finish_reason", ""));
      counts.push_back(p.value("new_tokens", 0));
    }
    outputs.push_back(Tensor("generated_text", "BYTES", {n}, std::move(texts)));
    outputs.push_back(Tensor("finish_reason", "BYTES", {n}, std::move(reasons)));
    outputs.push_back(Tensor("new_tokens", "INT64", {n}, std::move(counts)));
  } else {
    json flat = json::array();
    for (const auto& p : r.predictions)
      for (const auto& x : p.value("embedding", json::array())) flat.push_back(x);
    outputs.push_back(Tensor("embedding", "FP32", {n, info.embedding_size}, std::move(flat)));
  }
  json out = json::array();
  if (wanted.empty()) {
    for (auto& o : outputs) out.push_back(std::move(o));
  } else {
    for (size_t i = 0; i < wanted.size(); ++i) {
      auto it = std::find_if(outputs.begin(), outputs.end(), [&](const json& o) { return o["name"] == wanted[i]; });
      if (it == outputs.end())
        return InvalidArgument("model " + model + " has no output '" + wanted[i] + "'", "outputs[" + std::to_string(i) + "].name");
      out.push_back(*it);
    }
  }
  return json{{"model_name", model}, {"model_version", r.version}, {"outputs", std::move(out)}};
}

json ModelMetadata(const serve::ModelView& v) {
  json j = {{"name", v.name}, {"versions", v.versions}, {"platform", "mlaas"}};
  if (v.model) {
    const auto& info = v.model->info();
    j["platform"] = "mlaas_" + info.architecture;
    if (info.image_channels > 0) {
      // Encoded files (base64 PNG/JPEG), or pixels of any size (resized to image_size).
      j["inputs"] = json::array({{{"name", "image"}, {"datatype", "BYTES"}, {"shape", {-1}}},
                                 {{"name", "pixel_values"}, {"datatype", "FP32"}, {"shape", {-1, info.image_channels, -1, -1}}}});
    } else if (info.objective == "question-answering") {
      j["inputs"] = json::array({{{"name", "question"}, {"datatype", "BYTES"}, {"shape", {-1}}},
                                 {{"name", "context"}, {"datatype", "BYTES"}, {"shape", {-1}}}});
    } else if (info.objective == "next-sentence-prediction") {
      j["inputs"] = json::array({{{"name", "text"}, {"datatype", "BYTES"}, {"shape", {-1}}},
                                 {{"name", "pair_text"}, {"datatype", "BYTES"}, {"shape", {-1}}}});
    } else {
      j["inputs"] = json::array({{{"name", "text"}, {"datatype", "BYTES"}, {"shape", {-1}}}});
    }
    j["outputs"] = OutputsMetadata(info);
    j["parameters"] = {{"objective", info.objective}};
    if (info.image_channels > 0) j["parameters"]["image_size"] = {info.image_height, info.image_width};
    else j["parameters"]["max_tokens"] = info.max_tokens;
    if (!info.labels.empty()) j["parameters"]["labels"] = info.labels;
  }
  return j;
}

std::optional<std::string> VersionParam(const RequestContext& ctx) {
  auto it = ctx.path_params.find("version");
  if (it == ctx.path_params.end()) return std::nullopt;
  return it->second;
}

void Unavailable501(RequestContext& ctx) { ctx.Error(Unimplemented("model serving is not enabled in this server")); }

// With accounts, a deployment is its owner's (and admins'): to anyone else it does not exist.
Status MayUse(ServerState& s, const RequestContext& ctx, const std::string& name) {
  if (SeesAll(s, ctx)) return Status::Ok();
  auto owner = s.services.deployments->Owner(name);
  if (owner.has_value() && *owner == ctx.principal.user) return Status::Ok();
  return NotFound("no deployment named '" + name + "'");
}

// A request for a deployment this server does not serve now (pinned to other servers, or still
// loading here) goes to a server that does; true when one answered it.
bool ServedElsewhere(ServerState& s, RequestContext& ctx) {
  if (WasForwarded(ctx)) return false;
  auto placement = s.services.deployments->Locate(ctx.path_params["model"], VersionParam(ctx));
  return !placement.here && !placement.urls.empty() && Forward(ctx, placement.urls);
}

}  // namespace

// A deployment of catalog://<name>@<alias> follows the alias: when it moves, the deployment
// gets a new version of the model the alias now names, which takes the traffic once loaded
// (the serving version answers meanwhile), as any new version does.
void FollowCatalogAliases(ServerState& s) {
  if (s.services.catalog == nullptr || s.services.deployments == nullptr) return;
  s.services.catalog->SetAliasListener([&s](catalog::Kind kind, const std::string& name, const catalog::AliasEvent& e) {
    if (kind != catalog::Kind::kModel || e.to_version == 0) return;
    const catalog::Reference ref{kind, name, 0, e.alias};
    // One roll at a time, each to where the alias points when it runs: of two quick moves, the
    // last one wins.
    static std::mutex rolling;
    std::lock_guard lock(rolling);
    for (json request : s.services.deployments->Following(ref.ToString())) {
      // As its owner sees the catalog: a model made private, or deleted and registered again by
      // someone else, is not followed.
      const std::string owner = request.value("owner", "");
      const catalog::Caller caller{owner, owner.empty() || owner == auth::LocalAdmin().user};
      auto resolved = s.services.catalog->Resolve(ref, caller);
      if (!resolved.has_value()) {
        spdlog::error("deployment {} stays where it is, not following {}: {}", request.value("name", ""), ref.ToString(),
                      resolved.error().ToString());
        continue;
      }
      if (request["model"]["catalog"].value("entry_created_ms", int64_t{0}) != resolved->entry_created_ms) {
        spdlog::error("deployment {} stays where it is: {} was deleted and registered again since it was deployed",
                      request.value("name", ""), ref.ToString());
        continue;
      }
      request.erase("version");
      request.erase("canary_percent");
      request["model"]["path"] = resolved->key;
      request["model"]["storage_type"] = "local";
      request["model"]["catalog"]["version"] = resolved->version.version;
      request["model"]["catalog"]["digest"] = resolved->version.digest;
      auto r = s.services.deployments->Deploy(request);
      if (!r.has_value()) {
        spdlog::error("deployment {} cannot follow {} to version {}: {}", request.value("name", ""), ref.ToString(),
                      e.to_version, r.error().ToString());
      } else {
        spdlog::info("deployment {} follows {} to version {}", request.value("name", ""), ref.ToString(), e.to_version);
      }
    }
  });
}

void AddServeRoutes(ServerState& s) {
  serve::DeploymentManager*& deployments = s.services.deployments;
  const json view_schema = {{"type", "object"}, {"description", "a deployment: name, status, versions, endpoints"}};

  s.router.Add({.method = "POST",
                .access = Access::kWrite,
                .pattern = "/api/v1/deployments",
                .tag = "serving",
                .summary = "Deploy a model (or a new version of a deployment): it loads in the background and "
                           "takes the traffic when ready",
                .body = BodyKind::kJson,
                .request_schema = schemas::Deployment(),
                .responses = {{202, "accepted; the version is loading (poll GET /api/v1/deployments/{name})"},
                              {400, "invalid request or no model at model.path"},
                              {409, "the version exists"}},
                .response_schema = view_schema,
                .handler = [&s, &deployments](RequestContext& ctx) {
                  if (!deployments) return Unavailable501(ctx);
                  if (Status st = PathsToHome(s, ctx, ctx.body); !st.ok()) return ctx.Error(st);
                  if (Status st = ResolveCatalogRefs(s, ctx, ctx.body); !st.ok()) return ctx.Error(st);
                  ctx.body["owner"] = Submitter(s, ctx);
                  auto r = deployments->Deploy(ctx.body);
                  if (!r.has_value()) return ctx.Error(r.error());
                  CountCatalogUse(s, ctx.body, metadata::CatalogCounter::kDeployments);
                  ctx.res.set_header("Location", "/api/v1/deployments/" + (*r)["name"].get<std::string>());
                  ctx.Json(202, *r);
                }});
  s.router.Add({.method = "GET",
                .access = Access::kRead,
                .pattern = "/api/v1/deployments",
                .tag = "serving",
                .summary = "List deployments with their status",
                .responses = {{200, "the deployments"}},
                .handler = [&s, &deployments](RequestContext& ctx) {
                  if (!deployments) return Unavailable501(ctx);
                  json all = deployments->List();
                  if (!SeesAll(s, ctx)) {
                    json mine = json::array();
                    for (auto& d : all) {
                      if (d.value("owner", "") == ctx.principal.user) mine.push_back(std::move(d));
                    }
                    all = std::move(mine);
                  }
                  ctx.Json(200, {{"deployments", all}});
                }});
  s.router.Add({.method = "GET",
                .access = Access::kRead,
                .pattern = "/api/v1/deployments/{name}",
                .tag = "serving",
                .summary = "A deployment: status (loading, ready, failed with the reason), versions, traffic",
                .responses = {{200, "the deployment"}, {404, "no such deployment"}},
                .response_schema = view_schema,
                .handler = [&s, &deployments](RequestContext& ctx) {
                  if (!deployments) return Unavailable501(ctx);
                  if (Status st = MayUse(s, ctx, ctx.path_params["name"]); !st.ok()) return ctx.Error(st);
                  auto r = deployments->Get(ctx.path_params["name"]);
                  if (!r.has_value()) return ctx.Error(r.error());
                  ctx.Json(200, *r);
                }});
  s.router.Add({.method = "DELETE",
                .access = Access::kWrite,
                .pattern = "/api/v1/deployments/{name}",
                .tag = "serving",
                .summary = "Undeploy: stop serving and unload every version (requests in flight finish)",
                .responses = {{200, "undeployed"}, {404, "no such deployment"}},
                .handler = [&s, &deployments](RequestContext& ctx) {
                  if (!deployments) return Unavailable501(ctx);
                  const std::string name = ctx.path_params["name"];
                  if (Status st = MayUse(s, ctx, name); !st.ok()) return ctx.Error(st);
                  if (Status st = deployments->Undeploy(name); !st.ok()) return ctx.Error(st);
                  ctx.Json(200, {{"name", name}, {"deleted", true}});
                }});
  for (const char* action : {"promote", "rollback"}) {
    const bool promote = std::string(action) == "promote";
    s.router.Add({.method = "POST",
                  .access = Access::kWrite,
                  .pattern = std::string("/api/v1/deployments/{name}/") + action,
                  .tag = "serving",
                  .summary = promote ? "Give the canary version all the traffic (the version it replaces is unloaded)"
                                     : "Drop the canary version: the serving version takes all the traffic again",
                  .responses = {{200, "the deployment"}, {404, "no such deployment"}, {409, "no canary version"}},
                  .response_schema = view_schema,
                  .handler = [&s, &deployments, promote](RequestContext& ctx) {
                    if (!deployments) return Unavailable501(ctx);
                    if (Status st = MayUse(s, ctx, ctx.path_params["name"]); !st.ok()) return ctx.Error(st);
                    auto r = promote ? deployments->Promote(ctx.path_params["name"])
                                     : deployments->Rollback(ctx.path_params["name"]);
                    if (!r.has_value()) return ctx.Error(r.error());
                    ctx.Json(200, *r);
                  }});
  }

  // Open Inference Protocol v2.
  s.router.Add({.method = "GET",
                .access = Access::kRead,
                .pattern = "/v2",
                .tag = "inference-v2",
                .summary = "Server metadata (Open Inference Protocol v2)",
                .responses = {{200, "name, version, extensions"}},
                .handler = [&s](RequestContext& ctx) {
                  ctx.Json(200, {{"name", "mlaas"}, {"version", s.options.version}, {"extensions", json::array()}});
                }});
  s.router.Add({.method = "GET",
                .access = Access::kPublic,
                .pattern = "/v2/health/live",
                .tag = "inference-v2",
                .summary = "Server liveness (Open Inference Protocol v2)",
                .responses = {{200, "live"}},
                .handler = [](RequestContext& ctx) { ctx.Json(200, {{"live", true}}); }});
  s.router.Add({.method = "GET",
                .access = Access::kPublic,
                .pattern = "/v2/health/ready",
                .tag = "inference-v2",
                .summary = "Server readiness: no deployment is still loading its first version",
                .responses = {{200, "ready"}, {503, "not ready"}},
                .handler = [&deployments](RequestContext& ctx) {
                  const bool ready = deployments == nullptr || deployments->Ready();
                  ctx.Json(ready ? 200 : 503, {{"ready", ready}});
                }});
  for (const std::string base : {"/v2/models/{model}", "/v2/models/{model}/versions/{version}"}) {
    s.router.Add({.method = "GET",
                  .access = Access::kRead,
                  .pattern = base,
                  .tag = "inference-v2",
                  .summary = "Model metadata: versions, platform, inputs and outputs (Open Inference Protocol v2)",
                  .responses = {{200, "model metadata"}, {404, "no such model or version"}},
                  .handler = [&s, &deployments](RequestContext& ctx) {
                    if (!deployments) return Unavailable501(ctx);
                    if (Status st = MayUse(s, ctx, ctx.path_params["model"]); !st.ok()) return ctx.Error(st);
                    if (ServedElsewhere(s, ctx)) return;
                    auto v = deployments->Model(ctx.path_params["model"], VersionParam(ctx));
                    if (!v.has_value()) return ctx.Error(v.error());
                    ctx.Json(200, ModelMetadata(*v));
                  }});
    s.router.Add({.method = "GET",
                  .access = Access::kRead,
                  .pattern = base + "/ready",
                  .tag = "inference-v2",
                  .summary = "Model readiness (Open Inference Protocol v2)",
                  .responses = {{200, "ready"}, {503, "loading or failed"}, {404, "no such model or version"}},
                  .handler = [&s, &deployments](RequestContext& ctx) {
                    if (!deployments) return Unavailable501(ctx);
                    if (Status st = MayUse(s, ctx, ctx.path_params["model"]); !st.ok()) return ctx.Error(st);
                    if (ServedElsewhere(s, ctx)) return;
                    auto v = deployments->Model(ctx.path_params["model"], VersionParam(ctx));
                    if (!v.has_value()) return ctx.Error(v.error());
                    ctx.Json(v->ready ? 200 : 503, {{"name", v->name}, {"ready", v->ready}});
                  }});
    s.router.Add({.method = "POST",
                  .access = Access::kRead,
                  .pattern = base + "/infer",
                  .tag = "inference-v2",
                  .summary = "Inference (Open Inference Protocol v2): BYTES texts (text + pair_text for pairs, "
                             "question + context for question answering), INT64 input_ids or images in; labels, "
                             "scores, probabilities, embeddings, filled masks, entities, generations, is_next or "
                             "answers out. Requests are batched dynamically.",
                  .body = BodyKind::kJson,
                  .request_schema = schemas::InferenceRequestV2(),
                  .responses = {{200, "outputs"},
                                {400, "invalid inputs"},
                                {404, "no such model or version"},
                                {429, "the model's queue is full (Retry-After)"},
                                {503, "the model is loading or failed to load"},
                                {504, "the request's deadline passed"}},
                  .handler = [&s, &deployments](RequestContext& ctx) {
                    if (!deployments) return Unavailable501(ctx);
                    if (Status st = MayUse(s, ctx, ctx.path_params["model"]); !st.ok()) return ctx.Error(st);
                    if (ServedElsewhere(s, ctx)) return;
                    auto request = serve::ParseInferRequestV2(ctx.body);
                    if (!request.has_value()) return ctx.Error(request.error());
                    request->version = VersionParam(ctx);
                    const std::vector<std::string> wanted = request->outputs;
                    if (std::find(wanted.begin(), wanted.end(), "probabilities") != wanted.end() || wanted.empty())
                      request->options.all_scores = true;
                    const std::string model = ctx.path_params["model"];
                    auto r = deployments->Infer(model, std::move(*request));
                    if (!r.has_value()) {
                      if (r.error().code() == StatusCode::kResourceExhausted) ctx.res.set_header("Retry-After", "1");
                      return ctx.Error(r.error());
                    }
                    auto response = InferResponse(model, *r, wanted);
                    if (!response.has_value()) return ctx.Error(response.error());
                    if (ctx.body.contains("id")) (*response)["id"] = ctx.body["id"];
                    ctx.Json(200, *response);
                  }});
  }
}

}  // namespace mlaas::api
