#include "serve/deployments.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <regex>
#include <system_error>
#include <thread>

#include "common/file_util.h"
#include "common/json_file.h"
#include "common/text.h"
#include "common/time_util.h"
#include "nn/config.h"
#include "predict/model_files.h"
#include "serve/batcher.h"
#include "serve/serve_metrics.h"

namespace mlaas::serve {

namespace fs = std::filesystem;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

enum class State { kLoading, kReady, kFailed };

const char* StateName(State s) {
  switch (s) {
    case State::kLoading: return "loading";
    case State::kReady: return "ready";
    case State::kFailed: return "failed";
  }
  return "failed";
}

// What a deploy request asks for, checked.
struct Spec {
  std::string name;
  std::string owner;  // who deployed it ("" on a server without accounts)
  std::optional<std::string> version;
  json model, tokenizer;  // request blocks ({path, storage_type, objective})
  std::string objective, device, dtype;
  BatchingOptions batching;
  uint64_t max_memory_bytes = 0;
  int canary_percent = 100;
};

bool ValidName(const std::string& s, size_t max) {
  static const std::regex re("[A-Za-z0-9][A-Za-z0-9_.-]*");
  return !s.empty() && s.size() <= max && std::regex_match(s, re);
}

Result<Spec> ParseSpec(const json& r, const ServeOptions& defaults) {
  if (!r.is_object()) return InvalidArgument("the request body must be a JSON object");
  Spec s;
  auto name = r.find("name");
  if (name == r.end() || !name->is_string() || !ValidName(name->get<std::string>(), 64))
    return InvalidArgument("name must be 1-64 letters, digits, '_', '-' or '.', starting with a letter or digit",
                           "name");
  s.name = name->get<std::string>();
  if (auto o = r.find("owner"); o != r.end() && o->is_string()) s.owner = o->get<std::string>();
  if (auto v = r.find("version"); v != r.end() && !v->is_null()) {
    std::string text = v->is_number_integer() && v->get<int64_t>() > 0 ? std::to_string(v->get<int64_t>())
                       : v->is_string()                                 ? v->get<std::string>()
                                                                        : "";
    if (!ValidName(text, 32))
      return InvalidArgument("version must be a positive integer or 1-32 letters, digits, '_', '-' or '.'", "version");
    s.version = text;
  }
  auto model = r.find("model");
  if (model == r.end() || !model->is_object()) return InvalidArgument("model is required: {path, storage_type, objective}", "model");
  if (!model->contains("path") || !(*model)["path"].is_string() || (*model)["path"].get<std::string>().empty())
    return InvalidArgument("model.path is required: the model directory in storage", "model.path");
  s.model = *model;
  s.objective = model->value("objective", std::string());
  if (!s.objective.empty()) MLAAS_RETURN_IF_ERROR(predict::CheckServedObjective(s.objective));
  if (auto t = r.find("tokenizer"); t != r.end() && !t->is_null()) {
    if (!t->is_object() || !t->contains("path") || !(*t)["path"].is_string())
      return InvalidArgument("tokenizer must be {path, storage_type}", "tokenizer");
    s.tokenizer = *t;
  }
  s.device = r.value("device", defaults.device);
  s.dtype = r.value("dtype", defaults.dtype);
  if (s.dtype != "float32" && s.dtype != "bfloat16") return InvalidArgument("dtype must be float32 or bfloat16", "dtype");
  MLAAS_ASSIGN_OR_RETURN(s.batching, BatchingOptions::FromJson(r.value("batching", json()), "batching"));
  if (auto m = r.find("max_memory_bytes"); m != r.end() && !m->is_null()) {
    if (!m->is_number_integer() || m->get<int64_t>() <= 0)
      return InvalidArgument("max_memory_bytes must be a positive integer", "max_memory_bytes");
    s.max_memory_bytes = m->get<uint64_t>();
  }
  if (auto c = r.find("canary_percent"); c != r.end() && !c->is_null()) {
    if (!c->is_number_integer() || c->get<int64_t>() < 1 || c->get<int64_t>() > 100)
      return InvalidArgument("canary_percent must be an integer in 1..100", "canary_percent");
    s.canary_percent = c->get<int>();
  }
  return s;
}

struct Version {
  std::string version;
  uint64_t sequence = 0;  // deploy order: a version never takes traffic from a newer one
  json request;
  Spec spec;
  State state = State::kLoading;
  std::string error;
  int64_t created_ms = 0, ready_ms = 0;
  std::shared_ptr<const predict::ServableModel> model;
  std::shared_ptr<Batcher> batcher;
  std::shared_ptr<ModelMetrics> metrics = std::make_shared<ModelMetrics>();
  predict::ModelFiles model_files, tokenizer_files;  // keep scratch copies alive
  uint64_t reserved_bytes = 0;  // of the deployments' memory budget, from the model's config
};
using VersionPtr = std::shared_ptr<Version>;

struct Deployment {
  std::string name;
  std::string owner;
  std::vector<VersionPtr> versions;  // loading, serving and the last failed ones
  VersionPtr active, canary;
  int canary_percent = 0;
  uint64_t next_number = 1;
  std::atomic<uint64_t> requests{0};  // for the traffic split
};

json VersionView(const Version& v) {
  json j = {{"version", v.version},
            {"status", StateName(v.state)},
            {"model", v.spec.model},
            {"device", v.spec.device},
            {"dtype", v.spec.dtype},
            {"batching", v.spec.batching.ToJson()},
            {"created_at", FormatIsoUtc(v.created_ms)}};
  if (!v.spec.tokenizer.is_null()) j["tokenizer"] = v.spec.tokenizer;
  if (v.state == State::kFailed) j["error"] = v.error;
  if (v.state == State::kReady) {
    j["ready_at"] = FormatIsoUtc(v.ready_ms);
    j["load_seconds"] = v.metrics->load_seconds;
    j["model_info"] = v.model->info().ToJson();
    j["queue_depth"] = v.batcher->queue_depth();
  }
  return j;
}

}  // namespace

struct DeploymentManager::Impl {
  const storage::StorageRegistry& storage;
  ServeOptions options;
  mutable std::mutex mu;
  mutable std::condition_variable loads_changed;
  std::map<std::string, std::shared_ptr<Deployment>> deployments;
  uint64_t sequence = 0;
  int loading = 0;
  bool stopping = false;
  struct Loader {
    std::thread thread;
    VersionPtr version;  // counts against the limits until its load ends, undeployed or not
    std::shared_ptr<std::atomic<bool>> done = std::make_shared<std::atomic<bool>>(false);
  };

  // The versions that hold or may soon hold memory: every deployed one, and every one whose
  // loader still runs (an undeployed version may be in the middle of its load). Lock held.
  std::vector<const Version*> LiveVersions() const {
    std::vector<const Version*> out;
    for (const auto& [name, d] : deployments)
      for (const auto& x : d->versions) out.push_back(x.get());
    for (const auto& l : loaders)
      if (!l.done->load() && std::find(out.begin(), out.end(), l.version.get()) == out.end())
        out.push_back(l.version.get());
    return out;
  }
  std::vector<Loader> loaders;

  Impl(const storage::StorageRegistry& s, ServeOptions o) : storage(s), options(std::move(o)) {}

  json View(const Deployment& d) const {
    json versions = json::array();
    for (const auto& v : d.versions) versions.push_back(VersionView(*v));
    std::string status = "failed", error;
    if (d.active) {
      status = "ready";
    } else {
      for (const auto& v : d.versions) {
        if (v->state == State::kLoading) status = "loading";
        if (v->state == State::kFailed) error = v->error;
      }
    }
    json j = {{"name", d.name},
              {"owner", d.owner},
              {"status", status},
              {"versions", versions},
              {"endpoints", {{"infer", "/v2/models/" + d.name + "/infer"}, {"ready", "/v2/models/" + d.name + "/ready"}}}};
    if (d.active) j["active_version"] = d.active->version;
    if (d.canary) j["canary"] = {{"version", d.canary->version}, {"percent", d.canary_percent}};
    if (status == "failed" && !error.empty()) j["error"] = error;
    return j;
  }

  // Records the versions that serve or load, in deploy order (lock held).
  void Persist() {
    if (options.state_file.empty()) return;
    json all = json::array();
    for (const auto& [name, d] : deployments) {
      json versions = json::array();
      for (const auto& v : d->versions) {
        if (v->state == State::kFailed) continue;
        json r = v->request;
        r["version"] = v->version;
        if (v == d->canary) r["canary_percent"] = d->canary_percent;
        versions.push_back(r);
      }
      if (!versions.empty()) all.push_back({{"name", name}, {"versions", versions}});
    }
    if (Status st = WriteFileAtomic(options.state_file, json{{"deployments", all}}.dump(2)); !st.ok())
      spdlog::error("cannot record the deployments: {}", st.ToString());
  }

  // A version finished loading: it takes the traffic its policy gives it (lock held).
  void Activate(Deployment& d, const VersionPtr& v) {
    auto retire = [&](const VersionPtr& old) {
      if (!old || old == v) return;
      std::erase(d.versions, old);
      spdlog::info("deployment {}: version {} retired", d.name, old->version);
    };
    if (d.active && d.active->sequence > v->sequence) {
      retire(v);  // a newer version already serves
      return;
    }
    if (d.active && v->spec.canary_percent < 100) {
      if (d.canary && d.canary->sequence > v->sequence) return retire(v);
      retire(d.canary);
      d.canary = v;
      d.canary_percent = v->spec.canary_percent;
      spdlog::info("deployment {}: version {} takes {}% of the traffic", d.name, v->version, d.canary_percent);
      return;
    }
    VersionPtr old = d.active;
    d.active = v;
    if (d.canary && d.canary->sequence < v->sequence) {
      retire(d.canary);
      d.canary.reset();
    }
    retire(old);
    // Failed versions older than the one now serving are of no more interest.
    std::erase_if(d.versions, [&](const VersionPtr& x) { return x->state == State::kFailed && x->sequence < v->sequence; });
    spdlog::info("deployment {}: version {} serves", d.name, v->version);
  }

  // Localizes, loads and warms version `v` up (its model and batcher), within its budgets.
  Status LoadVersion(Version& v) {
    predict::LoadSpec load;
    MLAAS_ASSIGN_OR_RETURN(v.model_files, predict::LocalizeDirectory(storage, v.spec.model, "model", options.scratch));
    load.model_dir = v.model_files.path;
    if (!v.spec.tokenizer.is_null()) {
      MLAAS_ASSIGN_OR_RETURN(v.tokenizer_files,
                             predict::LocalizeTokenizer(storage, v.spec.tokenizer, "tokenizer", options.scratch));
      load.tokenizer = v.tokenizer_files.path;
    }
    load.objective = v.spec.objective;
    load.device = v.spec.device;
    load.dtype = v.spec.dtype;
    load.source = v.spec.model.value("path", std::string());
    load.admit = [this, &v](uint64_t bytes) { return Reserve(v, bytes); };
    MLAAS_ASSIGN_OR_RETURN(v.model, predict::ServableModel::Load(load));
    // The weights as loaded (packed for inference, maybe bfloat16) against the request's limit.
    MLAAS_RETURN_IF_ERROR(predict::CheckModelBytes(v.model->info().parameter_bytes, v.spec.max_memory_bytes,
                                                   "max_memory_bytes"));
    auto model = v.model;
    v.batcher = std::make_shared<Batcher>(
        [model](const std::vector<const predict::ModelRow*>& rows, const predict::OutputOptions& o) {
          return model->Run(rows, o);
        },
        v.spec.batching, v.metrics);
    // One pass before the first request, so that it does not pay for the first allocations.
    const predict::ModelInfo& info = model->info();
    auto warm = model->modality() == Modality::kImage
                    ? model->ImagesFromPixels(std::vector<float>(static_cast<size_t>(info.image_channels * info.image_height *
                                                                                     info.image_width),
                                                                 0.5f),
                                              1, info.image_channels, info.image_height, info.image_width, "warm-up")
                    : model->EncodeTexts({info.mask_token.empty() ? "warm up" : "warm " + info.mask_token}, "warm-up");
    if (warm.has_value()) {
      std::vector<const predict::ModelRow*> rows = {&(*warm)[0]};
      MLAAS_RETURN_IF_ERROR(model->Run(rows, {}).status());
    }
    return Status::Ok();
  }

  void Load(std::shared_ptr<Deployment> d, VersionPtr v) {
    const auto t0 = Clock::now();
    {
      std::lock_guard<std::mutex> lock(mu);
      auto it = deployments.find(d->name);
      if (it == deployments.end() || it->second != d ||
          std::find(d->versions.begin(), d->versions.end(), v) == d->versions.end()) {
        v->state = State::kFailed;
        v->error = "undeployed before it loaded";
        return;
      }
    }
    auto fail = [&](const Status& st) {
      std::lock_guard<std::mutex> lock(mu);
      v->state = State::kFailed;
      v->error = st.message();
      // A refused version holds nothing: its model (loaded before a check failed) goes now.
      v->model.reset();
      v->batcher.reset();
      v->reserved_bytes = 0;
      spdlog::warn("deployment {} version {} failed to load: {}", d->name, v->version, st.message());
      Persist();
    };
    Status st;
    try {  // nothing in a model's files may end the process
      st = LoadVersion(*v);
    } catch (const std::exception& e) {
      st = Internal(std::string("loading failed: ") + e.what());
    } catch (...) {
      st = Internal("loading failed");
    }
    if (!st.ok()) return fail(st);
    std::lock_guard<std::mutex> lock(mu);
    v->metrics->load_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    v->state = State::kReady;
    v->ready_ms = NowMs();
    auto it = deployments.find(d->name);
    if (it == deployments.end() || it->second != d) return;  // undeployed meanwhile
    if (std::find(d->versions.begin(), d->versions.end(), v) == d->versions.end()) return;
    spdlog::info("deployment {} version {} loaded in {:.2f} s", d->name, v->version, v->metrics->load_seconds);
    Activate(*d, v);
    Persist();
  }

  // LoadSpec::admit of version `v`: its weights' bytes fit its own limit and, with every other
  // deployed version's, the deployments' budget.
  Status Reserve(Version& v, uint64_t float32_bytes) {
    const uint64_t bytes = v.spec.dtype == "bfloat16" ? float32_bytes / 2 : float32_bytes;
    MLAAS_RETURN_IF_ERROR(predict::CheckModelBytes(bytes, v.spec.max_memory_bytes, "max_memory_bytes")
                              .WithField("max_memory_bytes"));
    std::lock_guard<std::mutex> lock(mu);
    uint64_t others = 0;
    for (const Version* x : LiveVersions())
      if (x != &v) others += x->reserved_bytes;
    if (options.max_total_bytes > 0 && others + bytes > options.max_total_bytes)
      return ResourceExhausted("the deployed models take " + FormatBytes(others) + " of the " +
                               FormatBytes(options.max_total_bytes) + " budget and this one needs " + FormatBytes(bytes) +
                               "; undeploy a model first");
    v.reserved_bytes = bytes;
    return Status::Ok();
  }

  Result<json> Deploy(const json& request, bool persist) {
    MLAAS_ASSIGN_OR_RETURN(Spec spec, ParseSpec(request, options));
    if (!nn_device_ok(spec.device)) return InvalidArgument("device must be cpu, cuda or cuda:N", "device");
    // The files must be there now (a missing model is the caller's mistake: 400); whether they
    // load is found out in the background (a failed version reports why).
    MLAAS_ASSIGN_OR_RETURN(storage::ObjectRef ref, storage.Resolve(spec.model, "model"));
    if (auto info = ref.store->Stat(ref.key + "/config.json"); !info.has_value()) {
      if (info.error().code() != StatusCode::kNotFound) return info.error();
      return InvalidArgument("no model at '" + spec.model.value("path", std::string()) + "' in " +
                                 std::string(ref.store->storage_type()) + " storage (config.json is missing)",
                             "model.path");
    }
    if (!spec.tokenizer.is_null()) MLAAS_RETURN_IF_ERROR(storage.Resolve(spec.tokenizer, "tokenizer").status());
    if (spec.objective.empty()) {  // what the model's config.json names (its architectures)
      auto text = ref.store->GetString(ref.key + "/config.json", 16u << 20);
      if (!text.has_value())
        return InvalidArgument("model.objective is required: the model's config.json cannot be read (" +
                                   text.error().message() + ")",
                               "model.objective");
      MLAAS_ASSIGN_OR_RETURN(Objective objective, predict::ObjectiveOfConfigJson(*text));
      spec.objective = std::string(ObjectiveName(objective));
      spec.model["objective"] = spec.objective;
    }

    std::unique_lock<std::mutex> lock(mu);
    if (stopping) return Unavailable("the server is shutting down");
    const size_t versions = LiveVersions().size();
    if (options.max_versions > 0 && versions >= options.max_versions)
      return ResourceExhausted(std::to_string(versions) + " model versions are deployed, the most this server keeps; "
                               "undeploy one first");
    // Loader threads that have finished are joined here (their deployments keep the results).
    std::erase_if(loaders, [](Loader& l) {
      if (!l.done->load()) return false;
      l.thread.join();
      return true;
    });
    if (auto existing = deployments.find(spec.name); existing != deployments.end() && existing->second->owner != spec.owner)
      return Status(StatusCode::kAlreadyExists, "the deployment name '" + spec.name + "' is taken by another user", "name");
    auto& slot = deployments[spec.name];
    if (!slot) {
      slot = std::make_shared<Deployment>();
      slot->name = spec.name;
      slot->owner = spec.owner;
    }
    std::shared_ptr<Deployment> d = slot;
    auto v = std::make_shared<Version>();
    if (spec.version) {
      for (const auto& other : d->versions) {
        if (other->version == *spec.version)
          return Status(StatusCode::kAlreadyExists, "deployment " + spec.name + " already has a version " + *spec.version,
                        "version");
      }
      v->version = *spec.version;
      if (auto n = std::strtoull(v->version.c_str(), nullptr, 10); n >= d->next_number) d->next_number = n + 1;
    } else {
      for (;;) {
        std::string candidate = std::to_string(d->next_number++);
        if (std::none_of(d->versions.begin(), d->versions.end(), [&](const VersionPtr& x) { return x->version == candidate; })) {
          v->version = candidate;
          break;
        }
      }
    }
    v->sequence = ++sequence;
    v->request = request;
    v->request.erase("version");
    v->spec = spec;
    v->created_ms = NowMs();
    d->versions.push_back(v);
    ++loading;
    if (persist) Persist();
    json view = View(*d);
    Loader loader;
    loader.version = v;
    try {
      loader.thread = std::thread([this, d, v, done = loader.done] {
        Load(d, v);
        {
          std::lock_guard<std::mutex> l(mu);
          --loading;
          loads_changed.notify_all();
        }
        *done = true;
      });
    } catch (const std::system_error&) {  // no thread to be had: the version is not deployed
      std::erase(d->versions, v);
      if (d->versions.empty() && !d->active) deployments.erase(spec.name);
      --loading;
      if (persist) Persist();
      return Unavailable("cannot start loading the model now (no thread available); try again");
    }
    loaders.push_back(std::move(loader));
    return view;
  }

  static bool nn_device_ok(const std::string& d) {
    static const std::regex re("cpu|cuda(:[0-9]+)?");
    return std::regex_match(d, re);
  }

  Result<std::shared_ptr<Deployment>> Find(const std::string& name) const {
    auto it = deployments.find(name);
    if (it == deployments.end()) return NotFound("no deployment named '" + name + "'");
    return it->second;
  }
};

DeploymentManager::DeploymentManager(const storage::StorageRegistry& storage, ServeOptions options)
    : impl_(std::make_unique<Impl>(storage, std::move(options))) {}

DeploymentManager::~DeploymentManager() {
  std::vector<Impl::Loader> loaders;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->stopping = true;
    loaders = std::move(impl_->loaders);
  }
  for (auto& l : loaders) l.thread.join();
}

Status DeploymentManager::Restore() {
  if (impl_->options.state_file.empty() || !fs::exists(impl_->options.state_file)) return Status::Ok();
  auto state = ReadJsonFile(impl_->options.state_file, "the deployments state file");
  if (!state.has_value() || !state->is_object() || !state->contains("deployments") ||
      !(*state)["deployments"].is_array())
    return Internal("the deployments state file is corrupt" + (state.has_value() ? "" : ": " + state.error().message()));
  for (const auto& d : (*state)["deployments"]) {
    if (!d.is_object() || !d.contains("versions") || !d["versions"].is_array()) {
      spdlog::error("the deployments state file has an entry that is not a deployment; skipped");
      continue;
    }
    for (const auto& v : d["versions"]) {
      auto r = impl_->Deploy(v, /*persist=*/false);
      if (!r.has_value()) spdlog::error("cannot restore a deployment: {}", r.error().ToString());
    }
  }
  return Status::Ok();
}

Result<json> DeploymentManager::Deploy(const json& request) { return impl_->Deploy(request, /*persist=*/true); }

Result<json> DeploymentManager::Get(const std::string& name) const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  MLAAS_ASSIGN_OR_RETURN(auto d, impl_->Find(name));
  return impl_->View(*d);
}

json DeploymentManager::List() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  json out = json::array();
  for (const auto& [name, d] : impl_->deployments) out.push_back(impl_->View(*d));
  return out;
}

Status DeploymentManager::Undeploy(const std::string& name) {
  std::shared_ptr<Deployment> gone;  // unloaded outside the lock
  std::lock_guard<std::mutex> lock(impl_->mu);
  MLAAS_ASSIGN_OR_RETURN(gone, impl_->Find(name));
  impl_->deployments.erase(name);
  impl_->Persist();
  return Status::Ok();
}

Result<json> DeploymentManager::Promote(const std::string& name) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  MLAAS_ASSIGN_OR_RETURN(auto d, impl_->Find(name));
  if (!d->canary) return FailedPrecondition("deployment " + name + " has no canary version to promote");
  VersionPtr old = d->active;
  d->active = d->canary;
  d->canary.reset();
  std::erase(d->versions, old);
  impl_->Persist();
  return impl_->View(*d);
}

Result<json> DeploymentManager::Rollback(const std::string& name) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  MLAAS_ASSIGN_OR_RETURN(auto d, impl_->Find(name));
  if (!d->canary) return FailedPrecondition("deployment " + name + " has no canary version to roll back");
  std::erase(d->versions, d->canary);
  d->canary.reset();
  impl_->Persist();
  return impl_->View(*d);
}

Result<InferResult> DeploymentManager::Infer(const std::string& name, InferRequest request) {
  const auto t0 = Clock::now();
  VersionPtr v;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    MLAAS_ASSIGN_OR_RETURN(auto d, impl_->Find(name));
    if (request.version) {
      for (const auto& x : d->versions)
        if (x->version == *request.version) v = x;
      if (!v) return NotFound("deployment " + name + " has no version " + *request.version);
      if (v->state == State::kLoading) return Unavailable("version " + v->version + " of " + name + " is still loading");
      if (v->state == State::kFailed) return Unavailable("version " + v->version + " of " + name + " failed to load: " + v->error);
    } else if (d->active) {
      v = d->active;
      if (d->canary && static_cast<int>(d->requests++ % 100) < d->canary_percent) v = d->canary;
    } else {
      for (const auto& x : d->versions) {
        if (x->state == State::kLoading) return Unavailable("deployment " + name + " is still loading");
      }
      return Unavailable("deployment " + name + " failed to load: " +
                         (d->versions.empty() ? std::string("no version") : d->versions.back()->error));
    }
  }
  ModelMetrics& metrics = *v->metrics;
  const BatchingOptions& limits = v->spec.batching;
  auto refuse = [&](Status st) -> Status {
    (st.code() == StatusCode::kInvalidArgument ? metrics.failure_input : metrics.failure_other)++;
    return st;
  };
  const size_t n = !request.texts.empty() ? request.texts.size()
                   : request.images > 0   ? static_cast<size_t>(request.images)
                                          : request.token_ids.size();
  if (n == 0) return refuse(InvalidArgument("no inputs: give at least one text", request.field));
  if (static_cast<int64_t>(n) > limits.max_inputs) {
    return refuse(InvalidArgument(std::to_string(n) + " inputs in one request; this deployment takes at most " +
                                      std::to_string(limits.max_inputs),
                                  request.field));
  }
  // Room in the queue before anything is prepared (images expand to the model's input size).
  if (static_cast<int64_t>(v->batcher->queue_depth() + n) > limits.max_queue) {
    metrics.failure_queue++;
    return ResourceExhausted("the model's queue is full (" + std::to_string(v->batcher->queue_depth()) +
                             " inputs waiting, " + std::to_string(limits.max_queue) + " allowed); retry shortly");
  }
  std::vector<predict::ModelRow> rows;
  const bool images = v->model->modality() == Modality::kImage;
  if (images != (request.images > 0 || (images && !request.texts.empty()))) {
    return refuse(InvalidArgument(images ? "this deployment's model takes images: a BYTES input of base64 PNG/JPEG "
                                           "files or an FP32/UINT8 tensor [N, C, H, W]"
                                         : "this deployment's model takes texts: a BYTES input or input_ids",
                                  request.field));
  }
  if (images && !request.texts.empty()) {
    std::vector<std::string> files;
    files.reserve(request.texts.size());
    for (size_t i = 0; i < request.texts.size(); ++i) {
      auto bytes = Base64Decode(request.texts[i]);
      if (!bytes) return refuse(InvalidArgument("element " + std::to_string(i) + " is not base64", request.field));
      files.push_back(std::move(*bytes));
    }
    auto encoded = v->model->EncodeImages(files, request.field);
    if (!encoded) return refuse(encoded.error());
    rows = std::move(*encoded);
  } else if (images) {
    auto encoded = v->model->ImagesFromPixels(request.pixels, request.images, request.channels, request.height,
                                              request.width, request.field);
    if (!encoded) return refuse(encoded.error());
    rows = std::move(*encoded);
  } else if (!request.texts.empty()) {
    for (size_t i = 0; i < request.texts.size(); ++i) {
      if (request.texts[i].size() > impl_->options.max_text_bytes) {
        return refuse(InvalidArgument("input " + std::to_string(i) + " is " + std::to_string(request.texts[i].size()) +
                                          " bytes long; at most " + std::to_string(impl_->options.max_text_bytes) +
                                          " are accepted",
                                      request.field));
      }
    }
    auto encoded = v->model->EncodeTexts(request.texts, request.field);
    if (!encoded) return refuse(encoded.error());
    rows = std::move(*encoded);
  } else {
    const auto& info = v->model->info();
    for (size_t i = 0; i < request.token_ids.size(); ++i) {
      const auto& ids = request.token_ids[i];
      if (ids.empty() || static_cast<int64_t>(ids.size()) > info.max_tokens) {
        return refuse(InvalidArgument("input " + std::to_string(i) + " has " + std::to_string(ids.size()) +
                                          " token ids; 1.." + std::to_string(info.max_tokens) + " are accepted",
                                      request.field));
      }
      tokenizers::Encoding e;
      for (int64_t id : ids) {
        if (id < 0 || id >= info.vocab_size)
          return refuse(InvalidArgument("token id " + std::to_string(id) + " is outside the vocabulary (0.." +
                                            std::to_string(info.vocab_size - 1) + ")",
                                        request.field));
        e.ids.push_back(static_cast<uint32_t>(id));
        e.type_ids.push_back(0);
      }
      rows.push_back(std::move(e));
    }
  }
  auto out = v->batcher->Infer(std::move(rows), request.options, t0 + std::chrono::milliseconds(limits.timeout_ms));
  if (!out) {
    switch (out.error().code()) {
      case StatusCode::kResourceExhausted: metrics.failure_queue++; break;
      case StatusCode::kDeadlineExceeded: metrics.failure_timeout++; break;
      default: metrics.failure_other++; break;
    }
    return out.error();
  }
  metrics.success++;
  metrics.request_seconds.Observe(std::chrono::duration<double>(Clock::now() - t0).count());
  return InferResult{v->version, std::move(*out), v->model};
}

Result<std::string> DeploymentManager::Owner(const std::string& name) const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  MLAAS_ASSIGN_OR_RETURN(auto d, impl_->Find(name));
  return d->owner;
}

std::vector<nlohmann::json> DeploymentManager::Following(const std::string& reference) const {
  std::vector<json> out;
  std::lock_guard<std::mutex> lock(impl_->mu);
  for (const auto& [name, d] : impl_->deployments) {
    if (d->versions.empty()) continue;
    const json& request = d->versions.back()->request;
    const json& model = request.contains("model") ? request["model"] : json();
    if (model.is_object() && model.contains("catalog") && model["catalog"].is_object() &&
        model["catalog"].value("reference", "") == reference)
      out.push_back(request);
  }
  return out;
}

Result<ModelView> DeploymentManager::Model(const std::string& name, const std::optional<std::string>& version) const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  MLAAS_ASSIGN_OR_RETURN(auto d, impl_->Find(name));
  ModelView view;
  view.name = name;
  VersionPtr chosen = d->active;
  for (const auto& v : d->versions) {
    if (v->state == State::kReady) view.versions.push_back(v->version);
    if (version && v->version == *version) chosen = v;
  }
  if (version && (!chosen || chosen->version != *version))
    return NotFound("deployment " + name + " has no version " + *version);
  if (!chosen && !d->versions.empty()) chosen = d->versions.back();
  if (chosen) {
    view.version = chosen->version;
    view.ready = chosen->state == State::kReady;
    if (view.ready) view.model = chosen->model;
  }
  return view;
}

bool DeploymentManager::Ready() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  for (const auto& [name, d] : impl_->deployments) {
    if (d->active) continue;
    for (const auto& v : d->versions)
      if (v->state == State::kLoading) return false;
  }
  return true;
}

std::string DeploymentManager::RenderMetrics() const {
  std::vector<LabeledMetrics> all;
  std::vector<std::shared_ptr<ModelMetrics>> keep;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    for (const auto& [name, d] : impl_->deployments) {
      for (const auto& v : d->versions) {
        if (v->state != State::kReady) continue;
        keep.push_back(v->metrics);
        all.push_back({name, v->version, v->metrics.get()});
      }
    }
  }
  std::string out;
  RenderModelMetrics(out, all);
  return out;
}

bool DeploymentManager::WaitIdle(std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> lock(impl_->mu);
  return impl_->loads_changed.wait_for(lock, timeout, [&] { return impl_->loading == 0; });
}

}  // namespace mlaas::serve
