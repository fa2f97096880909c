// Model serving: deployments (/api/v1/deployments) and the Open Inference Protocol v2 of
// KServe and Triton (/v2/...), whose errors are {"error": "..."} (see api_server.cpp).
#include "api/schemas.h"
#include "api/server_state.h"
#include "serve/deployments.h"

namespace mlaas::api {

using nlohmann::json;

namespace {

// Flattens nested arrays (the protocol allows tensor data flat or nested) into `out`.
void Flatten(const json& data, std::vector<const json*>& out) {
  if (data.is_array()) {
    for (const auto& e : data) Flatten(e, out);
  } else {
    out.push_back(&data);
  }
}

Result<int64_t> Elements(const json& shape, const std::string& field) {
  int64_t n = 1;
  for (const auto& d : shape) {
    if (!d.is_number_integer() || d.get<int64_t>() < 0) return InvalidArgument("shape must hold non-negative integers", field);
    n *= d.get<int64_t>();
    if (n > (int64_t{1} << 31)) return InvalidArgument("shape is too large", field);
  }
  return n;
}

// The inputs of an infer request: texts (BYTES), or token ids (INT64/INT32 [n, seq]) with an
// optional attention mask of the same shape.
Result<serve::InferRequest> ParseInferRequest(const json& body) {
  serve::InferRequest r;
  MLAAS_ASSIGN_OR_RETURN(r.options, predict::ParseOutputOptions(body.value("parameters", json()), "parameters"));
  const json* text = nullptr;
  const json* ids = nullptr;
  const json* mask = nullptr;
  std::string text_field;
  const json& inputs = body["inputs"];
  for (size_t i = 0; i < inputs.size(); ++i) {
    const json& in = inputs[i];
    const std::string field = "inputs[" + std::to_string(i) + "]";
    const std::string name = in["name"], type = in["datatype"];
    if (type == "BYTES") {
      if (text) return InvalidArgument("only one BYTES (text) input is accepted", field);
      text = &in;
      text_field = field + ".data";
    } else if (name == "input_ids") {
      ids = &in;
    } else if (name == "attention_mask") {
      mask = &in;
    } else {
      return InvalidArgument("unknown input '" + name + "': give texts as a BYTES input, or INT64 input_ids (with an "
                             "optional attention_mask)", field + ".name");
    }
  }
  if (text && ids) return InvalidArgument("give either a BYTES text input or input_ids, not both", "inputs");
  if (text) {
    MLAAS_ASSIGN_OR_RETURN(int64_t n, Elements((*text)["shape"], text_field.substr(0, text_field.size() - 5) + ".shape"));
    std::vector<const json*> flat;
    Flatten((*text)["data"], flat);
    if (static_cast<int64_t>(flat.size()) != n)
      return InvalidArgument("data holds " + std::to_string(flat.size()) + " elements but shape says " + std::to_string(n),
                             text_field);
    for (size_t i = 0; i < flat.size(); ++i) {
      if (!flat[i]->is_string())
        return InvalidArgument("element " + std::to_string(i) + " of a BYTES input must be a string", text_field);
      r.texts.push_back(flat[i]->get<std::string>());
    }
    r.field = text_field;
    return r;
  }
  if (!ids) return InvalidArgument("no input: give texts as a BYTES input (or input_ids)", "inputs");
  const json& shape = (*ids)["shape"];
  if (shape.size() != 2) return InvalidArgument("input_ids must have shape [batch, sequence]", "inputs.input_ids.shape");
  MLAAS_ASSIGN_OR_RETURN(int64_t n, Elements(shape, "inputs.input_ids.shape"));
  std::vector<const json*> flat, flat_mask;
  Flatten((*ids)["data"], flat);
  if (static_cast<int64_t>(flat.size()) != n)
    return InvalidArgument("input_ids data holds " + std::to_string(flat.size()) + " elements but shape says " +
                               std::to_string(n),
                           "inputs.input_ids.data");
  if (mask) {
    if ((*mask)["shape"] != shape) return InvalidArgument("attention_mask must have input_ids' shape", "inputs.attention_mask.shape");
    Flatten((*mask)["data"], flat_mask);
    if (flat_mask.size() != flat.size())
      return InvalidArgument("attention_mask data does not match its shape", "inputs.attention_mask.data");
  }
  const int64_t rows = shape[0], cols = shape[1];
  for (int64_t b = 0; b < rows; ++b) {
    std::vector<int64_t> row;
    for (int64_t t = 0; t < cols; ++t) {
      const size_t k = static_cast<size_t>(b * cols + t);
      if (!flat[k]->is_number_integer()) return InvalidArgument("input_ids must be integers", "inputs.input_ids.data");
      if (mask && !(flat_mask[k]->is_number_integer() && flat_mask[k]->get<int64_t>() != 0)) continue;
      row.push_back(flat[k]->get<int64_t>());
    }
    r.token_ids.push_back(std::move(row));
  }
  r.field = "inputs.input_ids";
  return r;
}

json Tensor(const std::string& name, const std::string& type, std::vector<int64_t> shape, json data) {
  return {{"name", name}, {"datatype", type}, {"shape", std::move(shape)}, {"data", std::move(data)}};
}

// The outputs an objective produces, as the metadata endpoint describes them.
json OutputsMetadata(const predict::ModelInfo& info) {
  if (info.objective == "text-classification") {
    return json::array({{{"name", "label"}, {"datatype", "BYTES"}, {"shape", {-1}}},
                        {{"name", "score"}, {"datatype", "FP32"}, {"shape", {-1}}},
                        {{"name", "probabilities"}, {"datatype", "FP32"}, {"shape", {-1, static_cast<int64_t>(info.labels.size())}}}});
  }
  if (info.objective == "masked-lm") {
    return json::array({{{"name", "sequence"}, {"datatype", "BYTES"}, {"shape", {-1}}},
                        {{"name", "candidates"}, {"datatype", "BYTES"}, {"shape", {-1}}}});
  }
  return json::array({{{"name", "embedding"}, {"datatype", "FP32"}, {"shape", {-1, info.embedding_size}}}});
}

Result<json> InferResponse(const std::string& model, const serve::InferResult& r, const std::vector<std::string>& wanted) {
  const auto& info = r.model->info();
  const auto n = static_cast<int64_t>(r.predictions.size());
  std::vector<json> outputs;
  if (info.objective == "text-classification") {
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
  } else {
    json flat = json::array();
    for (const auto& p : r.predictions)
      for (const auto& x : p["embedding"]) flat.push_back(x);
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
    j["inputs"] = json::array({{{"name", "text"}, {"datatype", "BYTES"}, {"shape", {-1}}}});
    j["outputs"] = OutputsMetadata(info);
    j["parameters"] = {{"objective", info.objective}, {"max_tokens", info.max_tokens}};
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

}  // namespace

void AddServeRoutes(ServerState& s) {
  serve::DeploymentManager*& deployments = s.services.deployments;
  const json view_schema = {{"type", "object"}, {"description", "a deployment: name, status, versions, endpoints"}};

  s.router.Add({.method = "POST",
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
                .handler = [&deployments](RequestContext& ctx) {
                  if (!deployments) return Unavailable501(ctx);
                  auto r = deployments->Deploy(ctx.body);
                  if (!r.has_value()) return ctx.Error(r.error());
                  ctx.res.set_header("Location", "/api/v1/deployments/" + (*r)["name"].get<std::string>());
                  ctx.Json(202, *r);
                }});
  s.router.Add({.method = "GET",
                .pattern = "/api/v1/deployments",
                .tag = "serving",
                .summary = "List deployments with their status",
                .responses = {{200, "the deployments"}},
                .handler = [&deployments](RequestContext& ctx) {
                  if (!deployments) return Unavailable501(ctx);
                  ctx.Json(200, {{"deployments", deployments->List()}});
                }});
  s.router.Add({.method = "GET",
                .pattern = "/api/v1/deployments/{name}",
                .tag = "serving",
                .summary = "A deployment: status (loading, ready, failed with the reason), versions, traffic",
                .responses = {{200, "the deployment"}, {404, "no such deployment"}},
                .response_schema = view_schema,
                .handler = [&deployments](RequestContext& ctx) {
                  if (!deployments) return Unavailable501(ctx);
                  auto r = deployments->Get(ctx.path_params["name"]);
                  if (!r.has_value()) return ctx.Error(r.error());
                  ctx.Json(200, *r);
                }});
  s.router.Add({.method = "DELETE",
                .pattern = "/api/v1/deployments/{name}",
                .tag = "serving",
                .summary = "Undeploy: stop serving and unload every version (requests in flight finish)",
                .responses = {{200, "undeployed"}, {404, "no such deployment"}},
                .handler = [&deployments](RequestContext& ctx) {
                  if (!deployments) return Unavailable501(ctx);
                  const std::string name = ctx.path_params["name"];
                  if (Status st = deployments->Undeploy(name); !st.ok()) return ctx.Error(st);
                  ctx.Json(200, {{"name", name}, {"deleted", true}});
                }});
  for (const char* action : {"promote", "rollback"}) {
    const bool promote = std::string(action) == "promote";
    s.router.Add({.method = "POST",
                  .pattern = std::string("/api/v1/deployments/{name}/") + action,
                  .tag = "serving",
                  .summary = promote ? "Give the canary version all the traffic (the version it replaces is unloaded)"
                                     : "Drop the canary version: the serving version takes all the traffic again",
                  .responses = {{200, "the deployment"}, {404, "no such deployment"}, {409, "no canary version"}},
                  .response_schema = view_schema,
                  .handler = [&deployments, promote](RequestContext& ctx) {
                    if (!deployments) return Unavailable501(ctx);
                    auto r = promote ? deployments->Promote(ctx.path_params["name"])
                                     : deployments->Rollback(ctx.path_params["name"]);
                    if (!r.has_value()) return ctx.Error(r.error());
                    ctx.Json(200, *r);
                  }});
  }

  // Open Inference Protocol v2.
  s.router.Add({.method = "GET",
                .pattern = "/v2",
                .tag = "inference-v2",
                .summary = "Server metadata (Open Inference Protocol v2)",
                .responses = {{200, "name, version, extensions"}},
                .handler = [&s](RequestContext& ctx) {
                  ctx.Json(200, {{"name", "mlaas"}, {"version", s.options.version}, {"extensions", json::array()}});
                }});
  s.router.Add({.method = "GET",
                .pattern = "/v2/health/live",
                .tag = "inference-v2",
                .summary = "Server liveness (Open Inference Protocol v2)",
                .responses = {{200, "live"}},
                .handler = [](RequestContext& ctx) { ctx.Json(200, {{"live", true}}); }});
  s.router.Add({.method = "GET",
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
                  .pattern = base,
                  .tag = "inference-v2",
                  .summary = "Model metadata: versions, platform, inputs and outputs (Open Inference Protocol v2)",
                  .responses = {{200, "model metadata"}, {404, "no such model or version"}},
                  .handler = [&deployments](RequestContext& ctx) {
                    if (!deployments) return Unavailable501(ctx);
                    auto v = deployments->Model(ctx.path_params["model"], VersionParam(ctx));
                    if (!v.has_value()) return ctx.Error(v.error());
                    ctx.Json(200, ModelMetadata(*v));
                  }});
    s.router.Add({.method = "GET",
                  .pattern = base + "/ready",
                  .tag = "inference-v2",
                  .summary = "Model readiness (Open Inference Protocol v2)",
                  .responses = {{200, "ready"}, {503, "loading or failed"}, {404, "no such model or version"}},
                  .handler = [&deployments](RequestContext& ctx) {
                    if (!deployments) return Unavailable501(ctx);
                    auto v = deployments->Model(ctx.path_params["model"], VersionParam(ctx));
                    if (!v.has_value()) return ctx.Error(v.error());
                    ctx.Json(v->ready ? 200 : 503, {{"name", v->name}, {"ready", v->ready}});
                  }});
    s.router.Add({.method = "POST",
                  .pattern = base + "/infer",
                  .tag = "inference-v2",
                  .summary = "Inference (Open Inference Protocol v2): BYTES texts or INT64 input_ids in; labels, "
                             "scores, probabilities, embeddings or filled masks out. Requests are batched dynamically.",
                  .body = BodyKind::kJson,
                  .request_schema = schemas::InferenceRequestV2(),
                  .responses = {{200, "outputs"},
                                {400, "invalid inputs"},
                                {404, "no such model or version"},
                                {429, "the model's queue is full (Retry-After)"},
                                {503, "the model is loading or failed to load"},
                                {504, "the request's deadline passed"}},
                  .handler = [&deployments](RequestContext& ctx) {
                    if (!deployments) return Unavailable501(ctx);
                    auto request = ParseInferRequest(ctx.body);
                    if (!request.has_value()) return ctx.Error(request.error());
                    request->version = VersionParam(ctx);
                    std::vector<std::string> wanted;
                    for (const auto& o : ctx.body.value("outputs", json::array())) wanted.push_back(o["name"]);
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
