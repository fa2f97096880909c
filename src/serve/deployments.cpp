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
#include "tasks/resources.h"
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
  std::vector<std::string> labels;  // the hosts it may load on have every one
  int gpus = 0;                     // ... and at least this many GPUs
};

bool ValidName(const std::string& s, size_t max) {
  static const std::regex re("[A-Za-z0-9][A-Za-z0-9_.-]*");
  return !s.empty() && s.size() <= max && std::regex_match(s, re);
}

Result<Spec> ParseSpecUnchecked(const json& r, const ServeOptions& defaults) {
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
  // Pinning to hosts: the task resources block, without data-parallel workers.
  if (auto res = r.find("resources"); res != r.end() && !res->is_null()) {
    if (res->is_object() && res->contains("workers"))
      return InvalidArgument("resources.workers is for training tasks; a deployment takes labels and gpus",
                             "resources.workers");
    MLAAS_ASSIGN_OR_RETURN(metadata::TaskRequirements req, tasks::ParseResources(json{{"resources", *res}}));
    s.labels = std::move(req.labels);
    s.gpus = req.gpus;
  }
  return s;
}

// ParseSpecUnchecked, with a field of an unexpected JSON type (a record or an imported file that
// the API's schema never checked) an error rather than an exception.
Result<Spec> ParseSpec(const json& r, const ServeOptions& defaults) {
  try {
    return ParseSpecUnchecked(r, defaults);
  } catch (const json::exception& e) {
    return InvalidArgument(std::string("the deploy request has a field of the wrong type: ") + e.what());
  }
}

struct Version {
  std::string id;  // the record's, unique: a name deployed again reuses version names
  std::string version;
  int64_t sequence = 0;  // deploy order: a version never takes traffic from a newer one
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
  std::string incarnation;  // the record's: a name deployed anew is another deployment
  std::string owner;
  std::vector<VersionPtr> versions;  // loading, serving and the last failed ones
  VersionPtr active, canary;
  int canary_percent = 0;
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

// The state of a version across the servers that hold it: ready anywhere wins, then loading.
const char* Aggregate(const std::vector<std::string>& states) {
  auto has = [&](const char* s) { return std::find(states.begin(), states.end(), s) != states.end(); };
  if (has("ready")) return "ready";
  if (has("loading")) return "loading";
  if (has("failed")) return "failed";
  return "pending";  // no live server that may host it holds it yet
}

// What a server needs to load the deployment of `r`, in words.
std::string Needs(const metadata::DeploymentRecord& r) {
  std::string out = r.labels.empty() ? "" : "the labels " + Join(r.labels, ", ");
  if (r.gpus > 0) out += (out.empty() ? "" : " and ") + std::to_string(r.gpus) + " GPU(s)";
  return out;
}

bool Subset(const std::vector<std::string>& need, const std::vector<std::string>& have) {
  return std::all_of(need.begin(), need.end(),
                     [&](const std::string& l) { return std::find(have.begin(), have.end(), l) != have.end(); });
}

}  // namespace

struct DeploymentManager::Impl {
  const storage::StorageRegistry& storage;
  ServeOptions options;
  metadata::DeploymentStore& store;
  mutable std::mutex mu;
  mutable std::condition_variable loads_changed;
  // What this server holds, of the deployments it may host.
  std::map<std::string, std::shared_ptr<Deployment>> deployments;
  // The records as last read (every deployment, hosted here or not), and the live hosts.
  std::map<std::string, metadata::DeploymentRecord> records;
  std::vector<metadata::ServingHost> hosts;
  int loading = 0;
  bool stopping = false;
  // Versions let go of under the lock: freed (their batchers joined, their weights released)
  // after it, so that requests to the others do not wait (lock held to add).
  std::vector<VersionPtr> retired;
  struct Loader {
    std::thread thread;
    VersionPtr version;  // counts against the limits until its load ends, undeployed or not
    std::shared_ptr<std::atomic<bool>> done = std::make_shared<std::atomic<bool>>(false);
  };
  std::vector<Loader> loaders;

  // Sync: one at a time; the revision last applied; whether to apply it again (a load that
  // could not start).
  mutable std::mutex sync_mu;
  int64_t synced_revision = -1;
  bool retry_sync = false;
  // The thread that follows the records and beats.
  std::mutex wake_mu;
  std::condition_variable wake;
  bool beat_now = false;
  bool changed = false;  // the store said another server wrote a deployment
  std::unique_ptr<metadata::ChangeFeed> feed;  // such news; none: sync_interval's polling only
  std::thread follower;

  Impl(const storage::StorageRegistry& s, ServeOptions o) : storage(s), options(std::move(o)), store(*options.store) {
    if (options.host_id.empty()) options.host_id = NewUuid();
  }

  bool MayHost(const metadata::DeploymentRecord& r) const {
    return r.gpus <= options.gpus && Subset(r.labels, options.labels);
  }

  // The versions that hold or may soon hold memory: every local one, and every one whose
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

  // The state of `version` on the other live hosts.
  std::vector<std::string> RemoteStates(const std::string& name, const std::string& version) const {
    std::vector<std::string> out;
    for (const auto& h : hosts) {
      if (h.id == options.host_id || !h.replicas.contains(name) || !h.replicas[name].is_object()) continue;
      const json& vs = h.replicas[name];
      if (vs.contains(version) && vs[version].is_string()) out.push_back(vs[version].get<std::string>());
    }
    return out;
  }

  // A deployment's view: the record's versions, each as this server holds it or, when it does
  // not, as the other servers do (lock held).
  json View(const metadata::DeploymentRecord& r) const {
    auto local_it = deployments.find(r.name);
    const Deployment* d = local_it == deployments.end() ? nullptr : local_it->second.get();
    json versions = json::array();
    std::string status = "failed", error, active, canary;
    int canary_percent = 0;
    bool any_ready = false, any_pending = false;
    auto add = [&](const json& view, int percent) {
      const std::string st = view.value("status", "");
      if (st == "ready") {
        any_ready = true;
        if (percent == 100 || active.empty()) active = view["version"];
        else canary = view["version"], canary_percent = percent;
      }
      if (st == "loading" || st == "pending") any_pending = true;
      if (st == "failed") error = view.value("error", "");
      versions.push_back(view);
    };
    // Versions this server holds that the record no longer lists (the one serving until its
    // replacement is ready here) come first: they are older.
    if (d != nullptr) {
      for (const auto& v : d->versions) {
        if (std::none_of(r.versions.begin(), r.versions.end(), [&](const auto& x) { return x.id == v->id; }))
          add(VersionView(*v), v->spec.canary_percent);
      }
    }
    for (const auto& rv : r.versions) {
      const Version* local = nullptr;
      if (d != nullptr)
        for (const auto& v : d->versions)
          if (v->id == rv.id) local = v.get();
      if (local != nullptr) {
        add(VersionView(*local), rv.canary_percent);
        continue;
      }
      auto spec = ParseSpec(rv.request, options);
      json j = {{"version", rv.version},
                {"status", Aggregate(RemoteStates(r.name, rv.version))},
                {"model", rv.request.value("model", json::object())},
                {"created_at", FormatIsoUtc(rv.created_ms)}};
      if (spec.has_value()) {
        j["device"] = spec->device;
        j["dtype"] = spec->dtype;
        j["batching"] = spec->batching.ToJson();
      }
      if (rv.request.contains("tokenizer")) j["tokenizer"] = rv.request["tokenizer"];
      add(j, rv.canary_percent);
    }
    if (d != nullptr) {  // here, the traffic split is this server's own
      active = d->active ? d->active->version : "";
      canary = d->canary ? d->canary->version : "";
      canary_percent = d->canary_percent;
    }
    if (!active.empty() || any_ready) status = "ready";
    else if (any_pending) status = "loading";
    json held = json::array();
    for (const auto& h : hosts) {
      if (h.replicas.contains(r.name)) held.push_back({{"id", h.id}, {"url", h.url}, {"versions", h.replicas[r.name]}});
    }
    json j = {{"name", r.name},
              {"owner", r.owner},
              {"status", status},
              {"versions", versions},
              {"resources", {{"labels", r.labels}, {"gpus", r.gpus}}},
              {"hosts", held},
              {"endpoints", {{"infer", "/v2/models/" + r.name + "/infer"}, {"ready", "/v2/models/" + r.name + "/ready"}}}};
    if (!active.empty()) j["active_version"] = active;
    if (!canary.empty()) j["canary"] = {{"version", canary}, {"percent", canary_percent}};
    if (status == "failed" && !error.empty()) j["error"] = error;
    if (status == "loading" && !any_ready && d == nullptr && held.empty()) {
      j["status"] = "pending";
      j["message"] = "no live server may load it: it needs a server with " + Needs(r);
    }
    return j;
  }

  // Which version serves and which is the canary, from the versions ready here: the newest one
  // with all the traffic serves (without one, the newest ready one), the newest newer canary
  // takes its share, and every other ready version retires (lock held).
  void Settle(Deployment& d) {
    VersionPtr active, newest_ready;
    for (const auto& v : d.versions) {
      if (v->state != State::kReady) continue;
      if (!newest_ready || v->sequence > newest_ready->sequence) newest_ready = v;
      if (v->spec.canary_percent == 100 && (!active || v->sequence > active->sequence)) active = v;
    }
    // Without a ready version meant for all the traffic, the newest ready one serves, unless an
    // older one meant for all of it is still loading here (a canary never takes all the traffic
    // while what it is measured against comes).
    const bool full_loading = std::any_of(d.versions.begin(), d.versions.end(), [&](const VersionPtr& x) {
      return x->state == State::kLoading && x->spec.canary_percent == 100 && newest_ready &&
             x->sequence < newest_ready->sequence;
    });
    if (!active && !full_loading) active = newest_ready;
    VersionPtr canary;
    for (const auto& v : d.versions) {
      if (v->state == State::kReady && v != active && v->spec.canary_percent < 100 && active &&
          v->sequence > active->sequence && (!canary || v->sequence > canary->sequence))
        canary = v;
    }
    if (active != d.active && active) spdlog::info("deployment {}: version {} serves", d.name, active->version);
    if (canary != d.canary && canary)
      spdlog::info("deployment {}: version {} takes {}% of the traffic", d.name, canary->version,
                   canary->spec.canary_percent);
    d.active = active;
    d.canary = canary;
    d.canary_percent = canary ? canary->spec.canary_percent : 0;
    std::erase_if(d.versions, [&](const VersionPtr& x) {
      // (A failed version stays while the record lists it: it is not loaded again here.)
      const bool retire = x->state == State::kReady && active && x != active && x != canary;
      if (retire && x->state == State::kReady) spdlog::info("deployment {}: version {} retired", d.name, x->version);
      if (retire) retired.push_back(x);
      return retire;
    });
  }

  // Frees what was retired and joins the loaders that finished (lock not held).
  void FreeRetired() {
    std::vector<VersionPtr> gone;
    std::vector<Loader> finished;
    {
      std::lock_guard<std::mutex> lock(mu);
      gone.swap(retired);
      for (auto& l : loaders)
        if (l.done->load()) finished.push_back(std::move(l));
      std::erase_if(loaders, [](const Loader& l) { return !l.thread.joinable(); });
    }
    for (auto& l : finished) l.thread.join();
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
        [model](const std::vector<const predict::ModelRow*>& rows, const predict::OutputOptions& o,
                const predict::ServableModel::RowWanted& wanted) { return model->RunUntil(rows, o, wanted); },
        v.spec.batching, v.metrics);
    // One pass before the first request, so that it does not pay for the first allocations.
    const predict::ModelInfo& info = model->info();
    auto warm = model->modality() == Modality::kImage
                    ? model->ImagesFromPixels(std::vector<float>(static_cast<size_t>(info.image_channels * info.image_height *
                                                                                     info.image_width),
                                                                 0.5f),
                                              1, info.image_channels, info.image_height, info.image_width, "warm-up")
                : info.objective == ObjectiveName(Objective::kNextSentencePrediction)
                    ? model->EncodePairs({"warm up"}, {"warm up"}, "warm-up")
                : info.objective == ObjectiveName(Objective::kQuestionAnswering)
                    ? model->EncodeQuestions({"warm up"}, {"warm up"}, "warm-up")
                    : model->EncodeTexts({info.mask_token.empty() ? "warm up" : "warm " + info.mask_token}, "warm-up");
    if (warm.has_value()) {
      std::vector<const predict::ModelRow*> rows = {&(*warm)[0]};
      MLAAS_RETURN_IF_ERROR(model->Run(rows, {}).status());
    }
    return Status::Ok();
  }

  bool Held(const std::shared_ptr<Deployment>& d, const VersionPtr& v) const {
    auto it = deployments.find(d->name);
    return it != deployments.end() && it->second == d &&
           std::find(d->versions.begin(), d->versions.end(), v) != d->versions.end();
  }

  void Load(std::shared_ptr<Deployment> d, VersionPtr v) {
    const auto t0 = Clock::now();
    {
      std::lock_guard<std::mutex> lock(mu);
      if (!Held(d, v)) {
        v->state = State::kFailed;
        v->error = "undeployed before it loaded";
        return;
      }
    }
    Status st;
    try {  // nothing in a model's files may end the process
      st = LoadVersion(*v);
    } catch (const std::exception& e) {
      st = Internal(std::string("loading failed: ") + e.what());
    } catch (...) {
      st = Internal("loading failed");
    }
    std::string active_id;
    int64_t active_sequence = 0, canary_sequence = 0;
    {
      std::lock_guard<std::mutex> lock(mu);
      if (!st.ok()) {
        v->state = State::kFailed;
        v->error = st.message();
        // A refused version holds nothing: its model (loaded before a check failed) goes now.
        retired.push_back(std::make_shared<Version>());
        std::swap(retired.back()->model, v->model);
        std::swap(retired.back()->batcher, v->batcher);
        v->reserved_bytes = 0;
        spdlog::warn("deployment {} version {} failed to load: {}", d->name, v->version, st.message());
      } else {
        v->metrics->load_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
        v->state = State::kReady;
        v->ready_ms = NowMs();
        if (!Held(d, v)) {  // undeployed meanwhile: its weights go after the lock
          retired.push_back(v);
        } else {
          spdlog::info("deployment {} version {} loaded in {:.2f} s", d->name, v->version, v->metrics->load_seconds);
          Settle(*d);
          if (d->active) {
            active_id = d->active->id;
            active_sequence = d->active->sequence;
          }
          if (d->canary) canary_sequence = d->canary->sequence;
        }
      }
    }
    FreeRetired();
    Beat();
    if (active_id.empty()) return;  // failed, undeployed meanwhile, or nothing serves yet
    // The record learns what this load settled: the versions the one now serving here
    // supersedes (not loaded by servers that start later), and that a version serving without
    // an older one meant for all the traffic takes all of it (it was deployed as a canary of
    // nothing).
    Status edited = Edit(d->name, [&](metadata::DeploymentRecord& r) {
      if (r.incarnation != d->incarnation) return false;  // undeployed and deployed anew
      auto active = std::find_if(r.versions.begin(), r.versions.end(), [&](const auto& x) { return x.id == active_id; });
      if (active == r.versions.end()) return false;  // a version the record no longer lists
      bool changed = false;
      if (active->canary_percent < 100 && std::none_of(r.versions.begin(), r.versions.end(), [&](const auto& x) {
            return x.canary_percent == 100 && x.sequence < active_sequence;
          })) {
        active->canary_percent = 100;
        changed = true;
      }
      const bool full = active->canary_percent == 100;
      const size_t before = r.versions.size();
      std::erase_if(r.versions, [&](const metadata::DeploymentVersionRecord& x) {
        if (full && x.sequence < active_sequence) return true;
        return canary_sequence > 0 && x.canary_percent < 100 && x.sequence < canary_sequence &&
               x.sequence > active_sequence;
      });
      return changed || r.versions.size() != before;
    });
    if (!edited.ok() && edited.code() != StatusCode::kNotFound)
      spdlog::warn("deployment {}: cannot record the outcome of version {}'s load: {}", d->name, v->version,
                   edited.ToString());
    if (Status synced = Sync(/*force=*/false); !synced.ok())
      spdlog::warn("deployments: cannot read the records back: {}", synced.ToString());
  }

  // LoadSpec::admit of version `v`: its weights' bytes fit its own limit and, with every other
  // local version's, the deployments' budget.
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

  // Starts loading record version `rv` of `d` here (lock held).
  void StartLoad(const std::shared_ptr<Deployment>& d, const metadata::DeploymentVersionRecord& rv) {
    json request = rv.request;
    request["version"] = rv.version;
    request["canary_percent"] = rv.canary_percent;
    auto v = std::make_shared<Version>();
    v->id = rv.id;
    v->version = rv.version;
    v->sequence = rv.sequence;
    v->request = rv.request;
    v->created_ms = rv.created_ms;
    auto spec = ParseSpec(request, options);
    if (!spec.has_value()) {  // a record written by another release, say
      v->state = State::kFailed;
      v->error = spec.error().message();
      d->versions.push_back(v);
      return;
    }
    v->spec = *spec;
    d->versions.push_back(v);
    ++loading;
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
    } catch (const std::system_error&) {  // no thread to be had: tried again at the next sync
      std::erase(d->versions, v);
      --loading;
      spdlog::warn("deployment {}: cannot start loading version {} now (no thread available)", d->name, v->version);
      retry_sync = true;
      return;
    }
    loaders.push_back(std::move(loader));
  }

  // Brings what this server holds in line with the records (lock held).
  void Apply(const std::vector<metadata::DeploymentRecord>& all) {
    records.clear();
    for (const auto& r : all) records[r.name] = r;
    for (auto it = deployments.begin(); it != deployments.end();) {
      auto r = records.find(it->first);
      if (r == records.end() || !MayHost(r->second) || r->second.incarnation != it->second->incarnation) {
        spdlog::info("deployment {}: {}", it->first, r == records.end() || r->second.incarnation != it->second->incarnation
                                                         ? "undeployed"
                                                         : "no longer hosted here");
        for (auto& v : it->second->versions) retired.push_back(v);
        it = deployments.erase(it);
      } else {
        ++it;
      }
    }
    if (stopping) return;
    for (const auto& [name, r] : records) {
      if (!MayHost(r)) continue;
      auto& slot = deployments[name];
      if (!slot) {
        slot = std::make_shared<Deployment>();
        slot->name = name;
        slot->incarnation = r.incarnation;
      }
      slot->owner = r.owner;
      Deployment& d = *slot;
      // Versions the record no longer lists go, but the one serving here stays until a newer
      // one is ready here.
      std::erase_if(d.versions, [&](const VersionPtr& x) {
        if (std::any_of(r.versions.begin(), r.versions.end(), [&](const auto& y) { return y.id == x->id; }))
          return false;
        const bool gone = x != d.active || std::any_of(d.versions.begin(), d.versions.end(), [&](const VersionPtr& y) {
          return y->state == State::kReady && y->sequence > x->sequence &&
                 std::any_of(r.versions.begin(), r.versions.end(), [&](const auto& z) { return z.id == y->id; });
        });
        if (gone) retired.push_back(x);
        return gone;
      });
      // Versions older than the newest one meant to take all the traffic that is ready somewhere
      // are not loaded here.
      int64_t newest_full = 0;
      for (const auto& rv : r.versions) {
        if (rv.canary_percent != 100 || rv.sequence <= newest_full) continue;
        const auto states = RemoteStates(name, rv.version);
        const bool here = std::any_of(d.versions.begin(), d.versions.end(), [&](const VersionPtr& x) {
          return x->id == rv.id && x->state == State::kReady;
        });
        if (here || std::find(states.begin(), states.end(), "ready") != states.end()) newest_full = rv.sequence;
      }
      for (const auto& rv : r.versions) {
        auto local = std::find_if(d.versions.begin(), d.versions.end(), [&](const VersionPtr& x) { return x->id == rv.id; });
        if (local != d.versions.end()) {
          (*local)->spec.canary_percent = rv.canary_percent;  // promoted meanwhile
          continue;
        }
        if (rv.sequence < newest_full) continue;
        StartLoad(slot, rv);
      }
      Settle(d);
    }
    std::erase_if(deployments, [](const auto& e) { return e.second->versions.empty(); });
  }

  // Reads the records when they changed (or when `force`) and applies them.
  Status Sync(bool force) {
    std::lock_guard sync_lock(sync_mu);
    MLAAS_ASSIGN_OR_RETURN(int64_t revision, store.DeploymentsRevision());
    {
      std::lock_guard<std::mutex> lock(mu);
      if (!force && revision == synced_revision) return Status::Ok();
    }
    MLAAS_ASSIGN_OR_RETURN(auto all, store.ListDeployments());
    {
      std::lock_guard<std::mutex> lock(mu);
      retry_sync = false;
      Apply(all);
      synced_revision = retry_sync ? -1 : revision;
    }
    FreeRetired();
    return Status::Ok();
  }

  // What this server holds, for its heartbeat.
  metadata::ServingHost HostEntry() const {
    metadata::ServingHost h;
    h.id = options.host_id;
    h.url = options.url;
    h.labels = options.labels;
    h.gpus = options.gpus;
    std::lock_guard<std::mutex> lock(mu);
    for (const auto& [name, d] : deployments) {
      json versions = json::object();
      for (const auto& v : d->versions) versions[v->version] = StateName(v->state);
      h.replicas[name] = versions;
    }
    return h;
  }

  // Asks the follower for a heartbeat now.
  void Beat() {
    {
      std::lock_guard lock(wake_mu);
      beat_now = true;
    }
    wake.notify_all();
  }

  // Every sync_interval, or at once when the store tells of a write: apply the records'
  // changes; heartbeat every two sync_intervals (or at once when asked), then refresh the live
  // hosts.
  void Follow() {
    auto last_beat = std::chrono::steady_clock::now() - 2 * options.sync_interval;
    bool warned = false;
    for (;;) {
      bool beat;
      {
        std::unique_lock lock(wake_mu);
        wake.wait_for(lock, options.sync_interval, [&] { return beat_now || changed || stopping_follower; });
        if (stopping_follower) return;
        changed = false;
        beat = std::exchange(beat_now, false) || std::chrono::steady_clock::now() - last_beat >= 2 * options.sync_interval;
      }
      if (beat) last_beat = std::chrono::steady_clock::now();
      Status st = Sync(/*force=*/false);
      if (st.ok() && beat) st = store.BeatHost(HostEntry());
      if (st.ok() && beat) {
        auto all = store.Hosts();
        if (all.has_value()) {
          std::erase_if(*all, [&](const metadata::ServingHost& h) { return h.age_ms > options.host_timeout.count(); });
          std::lock_guard<std::mutex> lock(mu);
          hosts = std::move(*all);
        } else {
          st = all.error();
        }
      }
      if (!st.ok() && !std::exchange(warned, true)) {
        spdlog::warn("deployments: cannot follow the database ({}); serving what is loaded", st.ToString());
      } else if (st.ok() && std::exchange(warned, false)) {
        spdlog::info("deployments: following the database again");
      }
    }
  }
  bool stopping_follower = false;

  // Read-modify-write of record `name` by compare-and-swap: `edit` changes the record and says
  // whether it did; retried from a fresh read when another write came first. NotFound when absent.
  Status Edit(const std::string& name, const std::function<bool(metadata::DeploymentRecord&)>& edit) {
    for (int attempt = 0; attempt < 50; ++attempt) {
      MLAAS_ASSIGN_OR_RETURN(auto stored, store.GetDeployment(name));
      if (!stored) return NotFound("no deployment named '" + name + "'");
      if (!edit(*stored)) return Status::Ok();
      Status st = store.PutDeployment(*stored).status();
      if (!metadata::IsConflict(st)) return st;
    }
    return Unavailable("deployment " + name + " changes too often to be changed now; try again");
  }

  // The record of `name`, from the last read or, when it is not there (just made through
  // another server), after reading again.
  Result<metadata::DeploymentRecord> Record(const std::string& name) {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (auto it = records.find(name); it != records.end()) return it->second;
    }
    // Not read yet: this one record (request threads never wait for a whole sync).
    MLAAS_ASSIGN_OR_RETURN(auto stored, store.GetDeployment(name));
    if (!stored) return NotFound("no deployment named '" + name + "'");
    Beat();  // the follower applies it soon
    return *stored;
  }

  Result<json> Deploy(const json& request) {
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
    json stored = request;
    stored.erase("version");
    stored.erase("canary_percent");
    if (spec.objective.empty()) {  // what the model's config.json names (its architectures)
      auto text = ref.store->GetString(ref.key + "/config.json", 16u << 20);
      if (!text.has_value())
        return InvalidArgument("model.objective is required: the model's config.json cannot be read (" +
                                   text.error().message() + ")",
                               "model.objective");
      MLAAS_ASSIGN_OR_RETURN(Objective objective, predict::ObjectiveOfConfigJson(*text));
      stored["model"]["objective"] = std::string(ObjectiveName(objective));
    }
    {
      std::lock_guard<std::mutex> lock(mu);
      if (stopping) return Unavailable("the server is shutting down");
    }
    MLAAS_RETURN_IF_ERROR(Sync(/*force=*/false));
    for (int attempt = 0; attempt < 50; ++attempt) {
      MLAAS_ASSIGN_OR_RETURN(auto existing, store.GetDeployment(spec.name));
      metadata::DeploymentRecord r;
      if (existing) {
        r = *existing;
        if (r.owner != spec.owner)
          return Status(StatusCode::kAlreadyExists, "the deployment name '" + spec.name + "' is taken by another user",
                        "name");
        // A new version without its own resources stays where the deployment is pinned.
        if (!request.contains("resources") || request["resources"].is_null()) {
          spec.labels = r.labels;
          spec.gpus = r.gpus;
        }
      } else {
        r.name = spec.name;
        r.incarnation = NewUuid();
        r.owner = spec.owner;
      }
      if (options.max_versions > 0) {
        size_t versions = 0;
        {
          std::lock_guard<std::mutex> lock(mu);
          for (const auto& [name, other] : records)
            if (name != spec.name)
              versions += other.versions.size();
        }
        versions += r.versions.size();
        if (versions >= options.max_versions)
          return ResourceExhausted(std::to_string(versions) + " model versions are deployed, the most this platform "
                                   "keeps; undeploy one first");
      }
      metadata::DeploymentVersionRecord v;
      if (spec.version) {
        if (std::any_of(r.versions.begin(), r.versions.end(), [&](const auto& x) { return x.version == *spec.version; }))
          return Status(StatusCode::kAlreadyExists, "deployment " + spec.name + " already has a version " + *spec.version,
                        "version");
        v.version = *spec.version;
        if (auto n = std::strtoll(v.version.c_str(), nullptr, 10); n >= r.next_number) r.next_number = n + 1;
      } else {
        for (;;) {
          std::string candidate = std::to_string(r.next_number++);
          if (std::none_of(r.versions.begin(), r.versions.end(), [&](const auto& x) { return x.version == candidate; })) {
            v.version = candidate;
            break;
          }
        }
      }
      v.sequence = 1;
      for (const auto& x : r.versions) v.sequence = std::max(v.sequence, x.sequence + 1);
      v.id = NewUuid();
      v.request = stored;
      v.canary_percent = spec.canary_percent;
      v.created_ms = NowMs();
      r.labels = spec.labels;
      r.gpus = spec.gpus;
      r.versions.push_back(v);
      auto written = store.PutDeployment(r);
      if (!written.has_value() && metadata::IsConflict(written.error())) continue;
      MLAAS_RETURN_IF_ERROR(written.status());
      r.revision = *written;
      // Recorded: what follows only shows it (a failure here must not make the caller deploy twice).
      if (Status synced = Sync(/*force=*/true); !synced.ok())
        spdlog::warn("deployment {} recorded; this server loads it once it reads the database again: {}", spec.name,
                     synced.ToString());
      Beat();
      std::lock_guard<std::mutex> lock(mu);
      auto it = records.find(spec.name);
      return View(it != records.end() && it->second.revision >= r.revision ? it->second : r);
    }
    return Unavailable("deployment " + spec.name + " changes too often to deploy now; try again");
  }

  static bool nn_device_ok(const std::string& d) {
    static const std::regex re("cpu|cuda(:[0-9]+)?");
    return std::regex_match(d, re);
  }

  // The canaries of a record: the versions with a share of the traffic below 100 that are newer
  // than the newest version meant to take all of it, oldest first.
  static std::vector<const metadata::DeploymentVersionRecord*> RecordCanaries(const metadata::DeploymentRecord& r) {
    int64_t newest_full = 0;
    for (const auto& x : r.versions)
      if (x.canary_percent == 100) newest_full = std::max(newest_full, x.sequence);
    std::vector<const metadata::DeploymentVersionRecord*> out;
    if (newest_full == 0) return out;
    for (const auto& x : r.versions)
      if (x.canary_percent < 100 && x.sequence > newest_full) out.push_back(&x);
    std::sort(out.begin(), out.end(), [](const auto* a, const auto* b) { return a->sequence < b->sequence; });
    return out;
  }

  // Whether version `v` of `name` is ready here or on a live server.
  bool ReadySomewhere(const std::string& name, const metadata::DeploymentVersionRecord& v) const {
    std::lock_guard<std::mutex> lock(mu);
    if (auto it = deployments.find(name); it != deployments.end())
      for (const auto& x : it->second->versions)
        if (x->id == v.id && x->state == State::kReady) return true;
    const auto states = RemoteStates(name, v.version);
    return std::find(states.begin(), states.end(), "ready") != states.end();
  }

  // The deployment as this server holds it. Unavailable when it is recorded but not held here.
  Result<std::shared_ptr<Deployment>> Local(const std::string& name) {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (auto it = deployments.find(name); it != deployments.end()) return it->second;
    }
    MLAAS_ASSIGN_OR_RETURN(auto r, Record(name));
    std::lock_guard<std::mutex> lock(mu);
    if (auto it = deployments.find(name); it != deployments.end()) return it->second;
    if (!MayHost(r))
      return Unavailable("deployment " + name + " is served by the servers with " + Needs(r) +
                         ", not by this one, and none of them serves it now");
    return Unavailable("deployment " + name + " has no version this server can load");
  }

  // The view after a change was recorded (as last read when the database cannot be read now).
  Result<json> ViewAfterSync(const std::string& name) {
    if (Status synced = Sync(/*force=*/true); !synced.ok())
      spdlog::warn("deployment {} changed; this server applies it once it reads the database again: {}", name,
                   synced.ToString());
    Beat();
    std::lock_guard<std::mutex> lock(mu);
    auto it = records.find(name);
    if (it == records.end()) return NotFound("no deployment named '" + name + "'");
    return View(it->second);
  }
};

DeploymentManager::DeploymentManager(const storage::StorageRegistry& storage, ServeOptions options)
    : impl_(std::make_unique<Impl>(storage, std::move(options))) {}

DeploymentManager::~DeploymentManager() {
  {
    std::lock_guard lock(impl_->wake_mu);
    impl_->stopping_follower = true;
  }
  impl_->feed.reset();  // no more news once it returns
  impl_->wake.notify_all();
  if (impl_->follower.joinable()) impl_->follower.join();
  std::vector<Impl::Loader> loaders;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->stopping = true;
    loaders = std::move(impl_->loaders);
  }
  for (auto& l : loaders) l.thread.join();
  if (Status st = impl_->store.RemoveHost(impl_->options.host_id); !st.ok())
    spdlog::warn("cannot remove this server from the serving hosts: {}", st.ToString());
}

void DeploymentManager::Advertise(std::string url) { impl_->options.url = std::move(url); }

Status DeploymentManager::Start() {
  MLAAS_RETURN_IF_ERROR(impl_->Sync(/*force=*/true));
  MLAAS_RETURN_IF_ERROR(impl_->store.BeatHost(impl_->HostEntry()));
  impl_->feed = impl_->store.Subscribe([impl = impl_.get()] {
    {
      std::lock_guard lock(impl->wake_mu);
      impl->changed = true;
    }
    impl->wake.notify_all();
  });
  impl_->follower = std::thread([this] { impl_->Follow(); });
  return Status::Ok();
}

Result<json> DeploymentManager::Deploy(const json& request) { return impl_->Deploy(request); }

Result<json> DeploymentManager::Get(const std::string& name) const {
  MLAAS_ASSIGN_OR_RETURN(auto r, impl_->Record(name));
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->View(r);
}

json DeploymentManager::List() const {  // as last read (at most a second ago)
  std::lock_guard<std::mutex> lock(impl_->mu);
  json out = json::array();
  for (const auto& [name, r] : impl_->records) out.push_back(impl_->View(r));
  return out;
}

Status DeploymentManager::Undeploy(const std::string& name) {
  for (int attempt = 0; attempt < 50; ++attempt) {
    MLAAS_ASSIGN_OR_RETURN(auto stored, impl_->store.GetDeployment(name));
    if (!stored) return NotFound("no deployment named '" + name + "'");
    Status st = impl_->store.DeleteDeployment(name, stored->revision);
    if (metadata::IsConflict(st)) continue;
    MLAAS_RETURN_IF_ERROR(st);
    if (Status synced = impl_->Sync(/*force=*/true); !synced.ok())
      spdlog::warn("deployment {} undeployed, but this server has not read it back yet: {}", name, synced.ToString());
    impl_->Beat();
    return Status::Ok();
  }
  return Unavailable("deployment " + name + " changes too often to undeploy now; try again");
}

// Promote: the newest canary ready somewhere takes all the traffic (the versions before it go;
// newer canaries stay canaries of it). Rollback: every canary goes.
Result<json> DeploymentManager::Promote(const std::string& name) {
  Status refused;
  MLAAS_RETURN_IF_ERROR(impl_->Edit(name, [&](metadata::DeploymentRecord& r) {
    const auto canaries = Impl::RecordCanaries(r);
    const metadata::DeploymentVersionRecord* chosen = nullptr;
    for (const auto* c : canaries)
      if (impl_->ReadySomewhere(name, *c)) chosen = c;
    if (canaries.empty()) {
      refused = FailedPrecondition("deployment " + name + " has no canary version to promote");
    } else if (!chosen) {
      refused = FailedPrecondition("the canary version " + canaries.back()->version + " of " + name +
                                   " is not ready on any server yet");
    }
    if (!chosen) return false;
    refused = Status::Ok();
    const int64_t sequence = chosen->sequence;
    std::erase_if(r.versions, [&](const auto& x) { return x.sequence < sequence; });
    for (auto& x : r.versions)
      if (x.sequence == sequence) x.canary_percent = 100;
    return true;
  }));
  MLAAS_RETURN_IF_ERROR(refused);
  return impl_->ViewAfterSync(name);
}

Result<json> DeploymentManager::Rollback(const std::string& name) {
  bool had_canary = false;
  MLAAS_RETURN_IF_ERROR(impl_->Edit(name, [&](metadata::DeploymentRecord& r) {
    std::vector<std::string> ids;
    for (const auto* c : Impl::RecordCanaries(r)) ids.push_back(c->id);
    had_canary = !ids.empty();
    std::erase_if(r.versions, [&](const auto& x) { return std::find(ids.begin(), ids.end(), x.id) != ids.end(); });
    return had_canary;
  }));
  if (!had_canary) return FailedPrecondition("deployment " + name + " has no canary version to roll back");
  return impl_->ViewAfterSync(name);
}

Result<InferResult> DeploymentManager::Infer(const std::string& name, InferRequest request) {
  const auto t0 = Clock::now();
  VersionPtr v;
  MLAAS_ASSIGN_OR_RETURN(auto d, impl_->Local(name));
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
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
  // More than the queue ever holds: no retry would fit it.
  if (static_cast<int64_t>(n) > limits.max_queue) {
    return refuse(InvalidArgument(std::to_string(n) + " inputs are more than this deployment queues (batching.max_queue " +
                                      std::to_string(limits.max_queue) + "): send fewer a request",
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
  if (images && !(request.pairs.empty() && request.contexts.empty()))
    return refuse(InvalidArgument("this deployment's model takes images, not text pairs or questions", request.second_field));
  std::vector<size_t> windows;  // question answering: the rows (windows) each question became
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
    for (const auto* texts : {&request.texts, &request.pairs, &request.contexts}) {
      for (size_t i = 0; i < texts->size(); ++i) {
        if ((*texts)[i].size() > impl_->options.max_text_bytes) {
          return refuse(InvalidArgument("input " + std::to_string(i) + " is " + std::to_string((*texts)[i].size()) +
                                            " bytes long; at most " + std::to_string(impl_->options.max_text_bytes) +
                                            " are accepted",
                                        texts == &request.texts ? request.field : request.second_field));
        }
      }
    }
    // What the model reads: a question with its context, a text with its pair, or a text.
    const std::string& objective = v->model->info().objective;
    const bool answers = objective == ObjectiveName(Objective::kQuestionAnswering);
    const bool pairs = objective == ObjectiveName(Objective::kNextSentencePrediction);
    if (!answers && !request.contexts.empty())
      return refuse(InvalidArgument("this deployment's model (" + objective + ") does not answer questions: context is "
                                        "for question-answering models",
                                    request.second_field));
    if (answers && request.contexts.empty())
      return refuse(InvalidArgument("this deployment answers questions: give two BYTES inputs, question and context",
                                    "inputs"));
    if (pairs && request.pairs.empty())
      return refuse(InvalidArgument("this deployment reads text pairs: give a BYTES input named pair_text beside the texts",
                                    "inputs"));
    auto encoded = answers                  ? v->model->EncodeQuestions(request.texts, request.contexts, request.field)
                   : !request.pairs.empty() ? v->model->EncodePairs(request.texts, request.pairs, request.second_field)
                                            : v->model->EncodeTexts(request.texts, request.field);
    if (!encoded) {
      // EncodeQuestions names the question's field, or else its context's (here the second input).
      const Status& st = encoded.error();
      return refuse(answers && st.field() != request.field ? st.WithField(request.second_field) : st);
    }
    rows = std::move(*encoded);
    if (answers) {
      // Each window a row of its own: a long context's windows share passes with other requests.
      rows = predict::SplitQuestionWindows(std::move(rows), windows);
      if (static_cast<int64_t>(rows.size()) > limits.max_queue)
        return refuse(InvalidArgument("the contexts make " + std::to_string(rows.size()) + " windows of " +
                                          std::to_string(v->model->info().max_tokens) +
                                          " tokens; this deployment queues at most " + std::to_string(limits.max_queue),
                                      request.second_field));
    }
  } else if (v->model->info().objective == ObjectiveName(Objective::kQuestionAnswering)) {
    // Answers are spans of the context's text, which token ids do not carry.
    return refuse(InvalidArgument("this deployment answers questions about texts: give two BYTES inputs, question and "
                                  "context, not input_ids",
                                  request.field));
  } else {
    const auto& info = v->model->info();
    if (!request.token_type_ids.empty() && request.token_type_ids.size() != request.token_ids.size())
      return refuse(InvalidArgument("token_type_ids must have a row for each row of input_ids", request.field));
    for (size_t i = 0; i < request.token_ids.size(); ++i) {
      const auto& ids = request.token_ids[i];
      const std::vector<int64_t>* types = request.token_type_ids.empty() ? nullptr : &request.token_type_ids[i];
      if (types && types->size() != ids.size())
        return refuse(InvalidArgument("token_type_ids must have input_ids' shape", request.field));
      if (types && info.type_vocab_size > 0) {
        for (int64_t t : *types) {
          if (t < 0 || t >= info.type_vocab_size)
            return refuse(InvalidArgument("token type " + std::to_string(t) + " is outside this model's types (0.." +
                                              std::to_string(info.type_vocab_size - 1) + ")",
                                          request.field));
        }
      }
      if (ids.empty() || static_cast<int64_t>(ids.size()) > info.max_tokens) {
        return refuse(InvalidArgument("input " + std::to_string(i) + " has " + std::to_string(ids.size()) +
                                          " token ids; 1.." + std::to_string(info.max_tokens) + " are accepted",
                                      request.field));
      }
      tokenizers::Encoding e;
      for (size_t t = 0; t < ids.size(); ++t) {
        const int64_t id = ids[t];
        if (id < 0 || id >= info.vocab_size)
          return refuse(InvalidArgument("token id " + std::to_string(id) + " is outside the vocabulary (0.." +
                                            std::to_string(info.vocab_size - 1) + ")",
                                        request.field));
        e.ids.push_back(static_cast<uint32_t>(id));
        e.type_ids.push_back(types && info.type_vocab_size > 0 ? static_cast<uint32_t>((*types)[t]) : 0u);
      }
      rows.emplace_back(std::in_place_type<tokenizers::Encoding>, std::move(e));
    }
  }
  // A prompt too long for a causal LM's positions, or more asked of a model than a request may
  // ask, is this request's error, not its batch's.
  if (Status st = predict::CheckOutputFits(*v->model, rows, request.options, "parameters"); !st.ok())
    return refuse(st);
  auto out = v->batcher->Infer(std::move(rows), request.options, t0 + std::chrono::milliseconds(limits.timeout_ms));
  if (!out) {
    switch (out.error().code()) {
      case StatusCode::kResourceExhausted: metrics.failure_queue++; break;
      case StatusCode::kDeadlineExceeded: metrics.failure_timeout++; break;
      default: metrics.failure_other++; break;
    }
    return out.error();
  }
  if (!windows.empty()) *out = predict::MergeWindowAnswers(std::move(*out), windows);
  metrics.success++;
  metrics.request_seconds.Observe(std::chrono::duration<double>(Clock::now() - t0).count());
  return InferResult{v->version, std::move(*out), v->model};
}

Result<std::string> DeploymentManager::Owner(const std::string& name) const {
  MLAAS_ASSIGN_OR_RETURN(auto r, impl_->Record(name));
  return r.owner;
}

std::vector<nlohmann::json> DeploymentManager::Following(const std::string& reference) const {
  std::vector<json> out;  // as last read
  std::lock_guard<std::mutex> lock(impl_->mu);
  for (const auto& [name, r] : impl_->records) {
    if (r.versions.empty()) continue;
    json request = r.versions.back().request;
    request["name"] = name;
    const json& model = request.contains("model") ? request["model"] : json();
    if (model.is_object() && model.contains("catalog") && model["catalog"].is_object() &&
        model["catalog"].value("reference", "") == reference)
      out.push_back(request);
  }
  return out;
}

Result<ModelView> DeploymentManager::Model(const std::string& name, const std::optional<std::string>& version) const {
  MLAAS_ASSIGN_OR_RETURN(auto d, impl_->Local(name));
  std::lock_guard<std::mutex> lock(impl_->mu);
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

DeploymentManager::Placement DeploymentManager::Locate(const std::string& name,
                                                     const std::optional<std::string>& version) const {
  Placement p;
  std::lock_guard<std::mutex> lock(impl_->mu);
  if (auto it = impl_->deployments.find(name); it != impl_->deployments.end()) {
    const Deployment& d = *it->second;
    if (!version) {
      p.here = d.active != nullptr;
    } else {
      p.here = std::any_of(d.versions.begin(), d.versions.end(),
                           [&](const VersionPtr& v) { return v->version == *version && v->state == State::kReady; });
    }
  }
  if (p.here) return p;
  for (const auto& h : impl_->hosts) {
    // Never this server itself, under its id or its URL (a restarted one, or a shared address).
    if (h.id == impl_->options.host_id || h.url.empty() || h.url == impl_->options.url || !h.replicas.contains(name) ||
        !h.replicas[name].is_object())
      continue;
    for (const auto& [v, state] : h.replicas[name].items()) {
      if (state == "ready" && (!version || v == *version)) {
        p.urls.push_back(h.url);
        break;
      }
    }
  }
  return p;
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
