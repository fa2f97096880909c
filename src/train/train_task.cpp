#include "train/train_task.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include "common/file_util.h"
#include "common/json_file.h"
#include "common/text.h"
#include "common/time_util.h"
#include "dataset/image_dataset.h"
#include "dataset/record_reader.h"
#include "nn/vision_model.h"
#include "nn/config.h"
#include "nn/static_embedding_config.h"
#include "predict/model_files.h"
#include "sweep/sweep.h"
#include "tasks/resources.h"
#include "train/data_parallel.h"
#include "train/text_data.h"
#include "train/train_spec.h"
#include "train/trainer.h"

namespace mlaas::train {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// The text typo augmentation may add (dataset.augment.typos.copies times the training split's).
constexpr uint64_t kMaxAugmentedTextBytes = 512ull << 20;

bool HasPath(const json& params, const char* block) {
  return params.contains(block) && params[block].is_object() && params[block].contains("path");
}

// A dataset block (the main one, or eval_dataset with the main one's loader settings) opened
// for the objective's columns. Errors name the field: a missing file "<field>.path", a
// missing column the loader_kwargs entry that named it.
Result<std::unique_ptr<dataset::RecordReader>> OpenColumns(const storage::StorageRegistry& storage, json block,
                                                           const json& main_block, const std::string& field,
                                                           const TrainSpec& spec, uint64_t* size = nullptr) {
  if (!block.contains("loader_kwargs") && main_block.contains("loader_kwargs")) block["loader_kwargs"] = main_block["loader_kwargs"];
  MLAAS_ASSIGN_OR_RETURN(storage::ObjectRef ref, storage.Resolve(block, field));
  MLAAS_ASSIGN_OR_RETURN(dataset::ReaderOptions options, dataset::ReaderOptionsFromRequest(block, ref.key, field));
  auto open = [&]() -> Result<std::unique_ptr<storage::ObjectReader>> {
    auto source = ref.store->Open(ref.key);
    if (!source.has_value()) {
      if (source.error().code() == StatusCode::kNotFound)
        return InvalidArgument("no dataset '" + ref.key + "' in " + std::string(ref.store->storage_type()) + " storage",
                               field + ".path");
      return source.error().WithField(field + ".path");
    }
    return std::move(source).value();
  };
  MLAAS_ASSIGN_OR_RETURN(auto header_source, open());
  auto header = dataset::OpenRecordReader(std::move(header_source), options);
  if (!header.has_value()) return header.error().WithField(field + ".path");
  const auto& have = (*header)->columns();
  const std::vector<std::string> want = Columns(spec);
  for (size_t i = 0; i < want.size(); ++i) {
    if (std::find(have.begin(), have.end(), want[i]) == have.end()) {
      return InvalidArgument("column '" + want[i] + "' is not in " + ref.key + " (its columns: " + Join(have, ", ") + ")",
                             ColumnField(spec, i));
    }
  }
  options.columns = want;
  MLAAS_ASSIGN_OR_RETURN(auto source, open());
  if (size) *size = source->info().size;
  auto reader = dataset::OpenRecordReader(std::move(source), options);
  if (!reader.has_value()) return reader.error().WithField(field + ".path");
  return std::move(reader).value();
}

// That `ref` names an object or a directory of objects.
Status Exists(const storage::ObjectRef& ref, const std::string& field, const std::string& what) {
  if (ref.store->Stat(ref.key).has_value()) return Status::Ok();
  storage::ListOptions list;
  list.prefix = ref.key + "/";
  list.max_keys = 1;
  auto listed = ref.store->List(list);
  if (listed.has_value() && !listed->objects.empty()) return Status::Ok();
  return InvalidArgument("no " + what + " '" + ref.key + "' in " + std::string(ref.store->storage_type()) + " storage",
                         field + ".path");
}

Status Validate(const storage::StorageRegistry& storage, const json& params) {
  MLAAS_ASSIGN_OR_RETURN(TrainSpec spec, ParseTrainSpec(params));
  const json model = params.value("model", json::object());
  if (HasPath(params, "model")) {
    MLAAS_ASSIGN_OR_RETURN(storage::ObjectRef ref, storage.Resolve(model, "model"));
    if (!ref.store->Stat(ref.key + "/config.json").has_value())
      return InvalidArgument("no model directory (config.json) at '" + ref.key + "'", "model.path");
  } else if (model.contains("preset")) {  // before a config, as training reads the block
    if (!model["preset"].is_string()) return InvalidArgument("model.preset must be a string", "model.preset");
    MLAAS_RETURN_IF_ERROR(nn::Preset(model["preset"].get<std::string>()).status());
  } else if (nn::IsStaticEmbeddingConfig(model.value("config", json()))) {
    json config = model["config"];
    if (!config.contains("vocab_size")) config["vocab_size"] = 1;  // the tokenizer's, at training
    MLAAS_RETURN_IF_ERROR(nn::ParseStaticEmbeddingConfig(config, "model.config").status());
    MLAAS_RETURN_IF_ERROR(CheckStaticEmbeddingSpec(spec));
  } else if (model.contains("config")) {
    MLAAS_RETURN_IF_ERROR(nn::ParseConfig(model["config"], "model.config").status());
  } else {
    return InvalidArgument("model needs a path, a preset or a config", "model");
  }
  if (HasPath(params, "tokenizer")) {
    MLAAS_ASSIGN_OR_RETURN(storage::ObjectRef ref, storage.Resolve(params["tokenizer"], "tokenizer"));
    MLAAS_RETURN_IF_ERROR(Exists(ref, "tokenizer", "tokenizer"));
  } else if (!HasPath(params, "model")) {
    return InvalidArgument("a tokenizer is required when the model starts from a preset or config", "tokenizer");
  }
  const json ds = params.value("dataset", json::object());
  MLAAS_RETURN_IF_ERROR(OpenColumns(storage, ds, ds, "dataset", spec).status());
  if (spec.has_eval_dataset) {
    MLAAS_RETURN_IF_ERROR(OpenColumns(storage, ds["eval_dataset"], ds, "dataset.eval_dataset", spec).status());
  }
  MLAAS_RETURN_IF_ERROR(storage.Resolve(params.value("model_save", json::object()), "model_save").status());
  return Status::Ok();
}

std::string Fixed(double v, int digits = 4) {
  std::ostringstream s;
  s.setf(std::ios::fixed);
  s.precision(digits);
  s << v;
  return s.str();
}

// `params` as the card shows them: without the catalog instruction (the API's own as_admin flag
// sits there) and with the submitter's home ("users/<name>/", api::HomeOf) cut out of every path,
// so a card published in the catalog tells readers nothing of where its owner keeps files.
json RequestForCard(json params, const std::string& submitted_by) {
  params.erase("catalog");
  if (submitted_by.empty()) return params;
  const std::string home = "users/" + submitted_by + "/";
  std::string text = params.dump(-1, ' ', false, json::error_handler_t::replace);
  for (size_t at = text.find(home); at != std::string::npos; at = text.find(home, at)) text.erase(at, home.size());
  json out = json::parse(text, nullptr, false);
  return out.is_discarded() ? json::object() : out;
}

// The README.md of a trained model: what it is, how it was trained, how well it does. `params`
// come through RequestForCard.
std::string ModelCard(const json& params, const json& result, const std::string& task_id) {
  const json& model = result["model"];
  const json& ds = result["dataset"];
  std::ostringstream md;
  const std::string objective = model["objective"].get<std::string>();
  const bool image = objective == "image-classification";
  const bool static_model = model["model_type"] == "static-embedding";  // this platform's own format
  md << "---\nlibrary_name: " << (static_model || image ? "mlaas" : "transformers") << "\npipeline_tag: "
     << (objective == "text-classification" ? "text-classification"
         : objective == "masked-lm"         ? "fill-mask"
         : image                            ? "image-classification"
                                            : "sentence-similarity")
     << "\ntags:\n- mlaas\n- " << model["model_type"].get<std::string>() << "\n---\n\n";
  md << "# " << model["architecture"].get<std::string>() << "\n\n";
  md << "Trained by mlaas (task `" << task_id << "`, finished " << FormatIsoUtc(NowMs()) << " UTC) for **" << objective << "**"
     << (model["from_scratch"].get<bool>() ? ", from scratch" : ", starting from `" + params["model"].value("path", std::string()) + "`")
     << ". " << model["parameters"].get<int64_t>() << " parameters";
  if (image) {
    md << ", input " << model["channels"].get<int64_t>() << " x " << model["image_size"][0].get<int64_t>() << " x "
       << model["image_size"][1].get<int64_t>() << " (channels x height x width).\n\n";
  } else {
    md << ", " << model["layers"].get<int64_t>() << " layers, hidden size " << model["hidden_size"].get<int64_t>() << ".\n\n";
  }
  md << "## Data\n\n- dataset: `" << params["dataset"].value("path", std::string()) << "`\n- training examples: "
     << ds["samples_train"].get<int64_t>();
  if (ds.contains("tokens")) md << " (" << ds["tokens"].get<int64_t>() << " tokens)";
  if (ds.contains("augmented")) md << ", of which " << ds["augmented"].get<int64_t>() << " typo-augmented copies";
  md << "\n- held-out examples: " << ds["samples_test"].get<int64_t>() << "\n";
  if (ds.value("skipped_images", int64_t{0}) > 0) md << "- unreadable images left out: " << ds["skipped_images"].get<int64_t>() << "\n";
  if (ds.contains("labels")) md << "- labels (" << ds["labels"].size() << "): " << Join(ds["labels"].get<std::vector<std::string>>(), ", ") << "\n";
  md << "\n## Evaluation (held-out split, final epoch)\n\n";
  const json& ev = result["evaluation"];
  if (ev.empty()) md << "No held-out split.\n";
  for (auto it = ev.begin(); it != ev.end(); ++it) {
    if (it.value().is_number_float()) md << "- " << it.key() << ": " << Fixed(it.value().get<double>()) << "\n";
  }
  md << "\n## Training history\n\n| epoch | loss |";
  const json& h = result["history"];
  std::vector<std::string> keys;
  for (auto it = h.begin(); it != h.end(); ++it) {
    if (it.key() != "epoch" && it.key() != "loss") keys.push_back(it.key());
  }
  for (const auto& k : keys) md << " " << k << " |";
  md << "\n|---|---|";
  for (size_t i = 0; i < keys.size(); ++i) md << "---|";
  md << "\n";
  const size_t epochs = h.contains("loss") ? h["loss"].size() : 0;
  for (size_t e = 0; e < epochs; ++e) {
    md << "| " << e + 1 << " | " << Fixed(h["loss"][e].get<double>()) << " |";
    for (const auto& k : keys) {
      md << " " << (e < h[k].size() ? Fixed(h[k][e].get<double>(), k == "learning_rate" ? 8 : 4) : "") << " |";
    }
    md << "\n";
  }
  const json& st = result["stats"];
  const std::string unit = image ? "images" : "tokens";
  md << "\n## Training\n\n- device: " << st["device"].get<std::string>() << ", threads: " << st["threads"].get<int>()
     << "\n- steps: " << st["steps"].get<int64_t>() << ", " << Fixed(st.value(unit + "_per_s", 0.0), 1) << " " << unit
     << "/s\n\nThe request:\n\n```json\n" << params.dump(2) << "\n```\n";
  return md.str();
}

// Publishes the model directory: every file but config.json first, config.json last (a
// directory only looks like a model once it is complete). Stale files of an earlier model at
// the same path go: sentence-transformers modules (modules.json, 1_Pooling/, 2_Dense/,
// config_sentence_transformers.json) this
// model does not have before the upload (an old projection never meets the new encoder), weight
// files of another layout after it.
Result<json> Publish(const fs::path& dir, const storage::ObjectRef& out) {
  MLAAS_ASSIGN_OR_RETURN(const std::vector<std::string> names, storage::ListLocalFiles(dir));
  const std::set<std::string> local(names.begin(), names.end());
  auto stale = [&](bool modules) {
    storage::ListOptions list;
    list.prefix = out.key + "/";
    auto listed = out.store->List(list);
    if (!listed.has_value()) return;
    std::vector<std::string> gone;
    for (const auto& o : listed->objects) {
      const std::string name = o.key.substr(out.key.size() + 1);
      const bool is_module = name == "modules.json" || name == "config_sentence_transformers.json" ||
                             name.rfind("1_Pooling/", 0) == 0 || name.rfind("2_Dense/", 0) == 0;
      const bool is_weights = name.rfind("model", 0) == 0 && name.find('/') == std::string::npos &&
                              name.find(".safetensors") != std::string::npos;
      if ((modules ? is_module : is_weights) && !local.count(name)) gone.push_back(o.key);
    }
    (void)out.store->DeleteMany(gone);
  };
  stale(/*modules=*/true);
  auto keys = out.store->PutDirectory(out.key, dir, "config.json");
  if (!keys.has_value()) return keys.error().WithField("model_save.path");
  stale(/*modules=*/false);
  return json(*keys);
}

}  // namespace

// A task's checkpoints also kept in the server's store (TrainTaskOptions::checkpoint_store), so
// that a retry on another host resumes: <prefix><step>/ holds the files of the checkpoint at that
// optimizer step, state.json written last; only the latest complete one is kept.
struct SharedCheckpoints {
  storage::ObjectStore* store = nullptr;
  std::string prefix;  // ".mlaas/checkpoints/<task id>/"

  Result<std::vector<std::string>> Keys(const std::string& under, std::vector<std::string>* steps = nullptr) const {
    std::vector<std::string> keys;
    storage::ListOptions list;
    list.prefix = under;
    if (steps) list.delimiter = "/";
    for (int pages = 0; pages < 1000; ++pages) {
      MLAAS_ASSIGN_OR_RETURN(storage::ListResult page, store->List(list));
      for (auto& o : page.objects) keys.push_back(std::move(o.key));
      if (steps) {
        for (auto& p : page.common_prefixes) steps->push_back(p.substr(under.size(), p.size() - under.size() - 1));
      }
      if (!page.is_truncated) break;
      list.continuation_token = page.next_continuation_token;
    }
    return keys;
  }

  // Into `dir`/current, when `dir` has no checkpoint of its own and the store has one.
  Status Restore(const fs::path& dir, tasks::TaskContext& ctx) const {
    if (!store || fs::exists(dir / "current" / "state.json") || fs::exists(dir / "previous" / "state.json")) return Status::Ok();
    std::vector<std::string> steps;
    MLAAS_RETURN_IF_ERROR(Keys(prefix, &steps).status());
    std::sort(steps.begin(), steps.end(), [](const std::string& a, const std::string& b) {
      return a.size() != b.size() ? a.size() > b.size() : a > b;  // numbers: the latest first
    });
    for (const auto& step : steps) {
      const std::string base = prefix + step + "/";
      if (!store->Stat(base + "state.json").has_value()) continue;  // incomplete
      const fs::path incoming = dir / "incoming";
      std::error_code ec;
      fs::remove_all(incoming, ec);
      MLAAS_ASSIGN_OR_RETURN(std::vector<std::string> keys, Keys(base));
      for (const auto& key : keys) {
        const std::string rel = key.substr(base.size());
        if (Status st = storage::ValidateKey(rel); !st.ok()) return Internal("a checkpoint file is not a path: '" + rel + "'");
        MLAAS_ASSIGN_OR_RETURN(storage::LocalizedPath local, store->Localize(key));
        const fs::path dest = incoming / rel;
        fs::create_directories(dest.parent_path(), ec);
        if (local.temporary()) fs::rename(local.path(), dest, ec);
        if (!local.temporary() || ec) {
          ec.clear();
          fs::copy_file(local.path(), dest, fs::copy_options::overwrite_existing, ec);
        }
        if (ec) return Internal("cannot restore the checkpoint's " + key + ": " + ec.message());
      }
      fs::rename(incoming, dir / "current", ec);
      if (ec) return Internal("cannot restore the checkpoint: " + ec.message());
      ctx.Log("info", "restored the checkpoint of step " + step + " from the server's store");
      return Status::Ok();
    }
    return Status::Ok();
  }

  // The checkpoint in `current` at `step`: uploaded (state.json last), then the older ones go.
  Status Save(const fs::path& current, int64_t step) const {
    const std::string base = prefix + std::to_string(step);
    MLAAS_RETURN_IF_ERROR(store->PutDirectory(base, current, "state.json").status());
    std::vector<std::string> steps;
    MLAAS_RETURN_IF_ERROR(Keys(prefix, &steps).status());
    for (const auto& other : steps) {
      if (other == std::to_string(step)) continue;
      MLAAS_ASSIGN_OR_RETURN(std::vector<std::string> keys, Keys(prefix + other + "/"));
      MLAAS_RETURN_IF_ERROR(store->DeleteMany(keys));
    }
    return Status::Ok();
  }

  void Drop() const {
    if (!store) return;
    auto keys = Keys(prefix);
    if (keys.has_value()) (void)store->DeleteMany(*keys);
  }
};

namespace {

// Where a dataset block's format is missing: its file name's extension.
json WithFormat(json block) {
  if (block.contains("format") || !block.contains("path") || !block["path"].is_string()) return block;
  const std::string path = block["path"];
  for (const char* ext : {"csv", "tsv", "jsonl"}) {
    if (path.size() > strlen(ext) + 1 && path.ends_with(std::string(".") + ext)) block["format"] = ext;
  }
  return block;
}

// dataset.eval_dataset, with the main block's format when it names none (a held-out folder is
// read as the training one is).
json EvalBlock(const json& ds) {
  json eval_block = ds.value("eval_dataset", json::object());
  if (eval_block.is_object() && !eval_block.contains("format") && ds.contains("format")) eval_block["format"] = ds["format"];
  return eval_block;
}

Status ValidateImages(const storage::StorageRegistry& storage, const json& params) {
  MLAAS_ASSIGN_OR_RETURN(TrainSpec spec, ParseTrainSpec(params));
  if (ModalityOf(spec.objective) != Modality::kImage)
    return InvalidArgument("this route trains image models (image-classification)", "model.objective");
  const json model = params.value("model", json::object());
  if (HasPath(params, "model")) {
    MLAAS_ASSIGN_OR_RETURN(storage::ObjectRef ref, storage.Resolve(model, "model"));
    auto bytes = ref.store->GetString(ref.key + "/config.json", 1u << 20);
    if (!bytes.has_value()) return InvalidArgument("no model directory (config.json) at '" + ref.key + "'", "model.path");
    auto config = ParseJsonText(*bytes, "config.json", "model.path");
    if (!config.has_value() || !nn::IsVisionConfig(*config))
      return InvalidArgument("'" + ref.key + "' is not an image model (its config.json's model_type is none of " +
                                 Join(nn::VisionPresetNames(), ", ") + ")",
                             "model.path");
  } else if (model.contains("preset")) {
    const auto names = nn::VisionPresetNames();
    if (!model["preset"].is_string() || std::find(names.begin(), names.end(), model["preset"].get<std::string>()) == names.end())
      return InvalidArgument("model.preset is one of " + Join(names, ", "), "model.preset");
  } else {
    return InvalidArgument("model needs a path or a preset", "model");
  }
  auto dataset_ok = [&](const json& block, const std::string& field) -> Status {
    const json b = WithFormat(block);
    if (!b.contains("format"))
      return InvalidArgument("an image dataset names its format: idx, image_folder, csv, tsv or jsonl", field + ".format");
    MLAAS_ASSIGN_OR_RETURN(storage::ObjectRef ref, storage.Resolve(b, field));
    return Exists(ref, field, "dataset");
  };
  const json ds = params.value("dataset", json::object());
  MLAAS_RETURN_IF_ERROR(dataset_ok(ds, "dataset"));
  if (spec.has_eval_dataset) MLAAS_RETURN_IF_ERROR(dataset_ok(EvalBlock(ds), "dataset.eval_dataset"));
  MLAAS_RETURN_IF_ERROR(storage.Resolve(params.value("model_save", json::object()), "model_save").status());
  return Status::Ok();
}

// What a handler reads before training: the data into `in`, the model's (and tokenizer's)
// local files kept alive in `keep`.
using LoadInputs =
    std::function<Status(tasks::TaskContext& ctx, const TrainSpec& spec, TrainInputs& in, std::vector<predict::ModelFiles>& keep)>;

// A group gathered through the database for this task (ctx.group()): rank 0 serves the group's
// store on a free port and waits for the others, who connect to the address it published.
Result<std::unique_ptr<DataParallelGroup>> MeetGroup(tasks::TaskContext& ctx, const TrainTaskOptions& options) {
  const metadata::GroupSeat& seat = *ctx.group();
  DataParallelConfig config;
  config.world_size = seat.world;
  config.rank = seat.rank;
  config.timeout = options.group_timeout;
  if (seat.rank == 0) {
    MLAAS_RETURN_IF_ERROR(ctx.CheckCancelled());  // stopping: hand it back before anyone joins
    config.master_addr = options.group_host;
    config.master_port = 0;
    MLAAS_ASSIGN_OR_RETURN(auto group, DataParallelGroup::Host(config));
    MLAAS_RETURN_IF_ERROR(group->TakeLocalRank());
    const std::string host = options.group_host.find(':') != std::string::npos ? "[" + options.group_host + "]"
                                                                               : options.group_host;
    const std::string address = host + ":" + std::to_string(group->config().master_port);
    MLAAS_RETURN_IF_ERROR(ctx.PublishGroupAddress(address));
    ctx.Log("info", "rank 0 of " + std::to_string(seat.world) + ": the group meets at " + address);
    // While it waits, a member whose seat went (it stopped, or died and its seat expired) ends
    // the wait at once.
    bool lost = false;
    auto next_check = std::chrono::steady_clock::now();
    const auto stop = [&] {
      if (ctx.cancelled()) return true;
      if (std::chrono::steady_clock::now() < next_check) return false;
      next_check = std::chrono::steady_clock::now() + std::chrono::seconds(1);
      auto g = ctx.CheckGroup();
      if (ctx.cancelled()) return true;
      lost = g.has_value() && g->members < seat.world;
      return lost;
    };
    if (Status st = group->WaitForMembers(stop); !st.ok()) {
      if (st.code() == StatusCode::kCancelled && !lost) return ctx.CheckCancelled();
      ctx.RetryLater();  // a member went away after the claim: a new group gathers
      return lost ? Unavailable("a member of the group went away before it arrived") : st;
    }
    ctx.Log("info", "every member of the group arrived");
    return group;
  }
  const std::string& address = ctx.group_address();
  const size_t colon = address.rfind(':');
  const auto port = colon == std::string::npos ? std::nullopt : ParseInt(address.substr(colon + 1));
  if (!port || *port < 1 || *port > 65535) return Internal("rank 0 published a malformed group address '" + address + "'");
  config.master_addr = address.substr(0, colon);
  if (config.master_addr.size() > 2 && config.master_addr.front() == '[' && config.master_addr.back() == ']')
    config.master_addr = config.master_addr.substr(1, config.master_addr.size() - 2);
  config.master_port = static_cast<int>(*port);
  MLAAS_ASSIGN_OR_RETURN(auto group, DataParallelGroup::Join(config));
  MLAAS_RETURN_IF_ERROR(group->TakeLocalRank());  // before Arrived: rank 0 may start once all arrived
  MLAAS_RETURN_IF_ERROR(group->Arrived());
  return group;
}

// A trial of a hyperparameter sweep, after each epoch: its history stored (the sweep judges it),
// then sweep::AwaitVerdict — a stop when the sweep ended without it, the wait at a rung epoch.
std::function<Status(int64_t, const json&)> AwaitSweepVerdict(tasks::TaskContext& ctx, const json& sweep_block,
                                                              tasks::Progress& last) {
  return [&ctx, sweep_block, &last](int64_t epoch, const json& history) -> Status {
    tasks::Progress p = last;
    p.extra["history"] = history;
    if (sweep::IsRung(sweep_block, epoch))
      p.message = "epoch " + std::to_string(epoch) + " evaluated: waiting for the sweep's verdict";
    ctx.ReportProgress(p);
    Status verdict = sweep::AwaitVerdict(ctx, sweep_block, epoch);
    if (!verdict.ok()) {  // pruned, or the sweep ended: the last message says so, not "waiting"
      p.message = "epoch " + std::to_string(epoch) + " evaluated: " + verdict.message();
      ctx.ReportProgress(p);
    }
    return verdict;
  };
}

// The steps both handlers share: checkpoints (kept on failure only when the attempt is handed
// back), the training with progress, the model card, publishing to model_save.
tasks::TaskHandler MakeHandler(const storage::StorageRegistry& storage, TrainTaskOptions options,
                               std::function<Status(const json&)> validate, LoadInputs load) {
  return [&storage, options, validate, load](tasks::TaskContext& ctx) -> Result<json> {
    const json& params = ctx.params();
    // Data-parallel: a member of a group of the size asked, or a clear error.
    MLAAS_ASSIGN_OR_RETURN(metadata::TaskRequirements resources, tasks::ParseResources(params));
    // This process's rank, known before the group meets: a group gathered for this task, the
    // torchrun group it belongs to, or none.
    const bool gathering = resources.workers > 1 && ctx.group();
    const int rank = resources.workers <= 1 ? 0
                     : gathering            ? ctx.group()->rank
                     : options.data_parallel ? options.data_parallel->rank()
                                             : 0;
    const bool follower = rank != 0;
    // A task that ends failed or cancelled (an exception included) will not resume: its
    // checkpoints go, unless the attempt was handed back (shutdown, lost lease) to resume later.
    // The other members of a data-parallel group read rank 0's checkpoint and keep none: on
    // shared storage, a copy of their own; on local storage (one host), rank 0's directory.
    const SharedCheckpoints shared{options.checkpoint_store, ".mlaas/checkpoints/" + ctx.id() + "/"};
    const SharedCheckpoints none{};
    struct DropCheckpoints {
      const tasks::TaskContext& ctx;
      fs::path dir;
      const SharedCheckpoints& shared;
      bool owner;
      ~DropCheckpoints() {
        std::error_code e;
        if (!owner) return;
        if (ctx.handed_back()) {
          // A group that goes back to the queue may be led by another process next: the shared
          // copy is the one to resume from, not this one's local copy.
          if (ctx.retrying() && shared.store) fs::remove_all(dir, e);
          return;
        }
        fs::remove_all(dir, e);
        shared.Drop();
      }
    } drop_checkpoints{ctx,
                       options.checkpoint_root /
                           (follower && shared.store ? ctx.id() + ".rank" + std::to_string(rank) : ctx.id()),
                       follower ? none : shared, !follower};
    struct FollowerCopy {  // a follower's own copy of a shared checkpoint goes whatever happens
      fs::path dir;
      ~FollowerCopy() {
        std::error_code e;
        if (!dir.empty()) fs::remove_all(dir, e);
      }
    } follower_copy{follower && shared.store ? drop_checkpoints.dir : fs::path()};
    if (!follower_copy.dir.empty()) {  // a copy left by a crash may be older than the shared one
      std::error_code e;
      fs::remove_all(follower_copy.dir, e);
    }
    std::unique_ptr<DataParallelGroup> gathered;  // a group formed for this task only
    if (gathering) {
      MLAAS_ASSIGN_OR_RETURN(gathered, MeetGroup(ctx, options));
    }
    DataParallelGroup* const group = resources.workers > 1 ? (gathered ? gathered.get() : options.data_parallel) : nullptr;
    if (resources.workers > 1 && (group == nullptr || group->world_size() != resources.workers))
      return FailedPrecondition("resources.workers asks " + std::to_string(resources.workers) +
                                " processes, and this worker leads no data-parallel group of that size: start " +
                                std::to_string(resources.workers) +
                                " `mlaas worker`s with WORLD_SIZE, RANK, MASTER_ADDR and MASTER_PORT (docs/deploy.md)");
    std::string run_key = ctx.id() + "/" + std::to_string(ctx.attempt());
    // A torchrun group's store outlives the runs, so each run's keys are its own: the number
    // rank 0 hands the task out under (a run handed back and run again never meets the last
    // one's keys). A follower runs the task last handed out (RunFollower skips older ones).
    if (group != nullptr && !gathered && follower) {
      MLAAS_ASSIGN_OR_RETURN(int64_t n, group->LastPublished());
      run_key += "/" + std::to_string(n);
    }
    // A member's own failure (its data, its memory) is told to rank 0, which fails the task with
    // it instead of retrying the task as if the member were lost (a torchrun follower's
    // RunFollower tells it of whatever its task ends with; RunTraining of training failures).
    const auto own_failure = [&](const Status& st) {
      if (follower && gathered && !ctx.cancelled() && !IsGroupFailure(st))
        (void)group->ReportFailure(run_key, st.message());
      return st;
    };
    if (Status st = validate(params); !st.ok()) return own_failure(st);
    auto parsed = ParseTrainSpec(params);
    if (!parsed.has_value()) return own_failure(parsed.error());
    const TrainSpec& spec = *parsed;
    TrainInputs in;
    in.run_key = run_key;
    in.spec = spec;
    in.max_model_bytes = options.max_model_bytes;
    in.data_parallel = group;
    in.model_block = params.value("model", json::object());
    std::vector<predict::ModelFiles> keep;
    if (Status st = load(ctx, spec, in, keep); !st.ok()) {
      if (st.code() == StatusCode::kCancelled) return ctx.CheckCancelled();
      return own_failure(st);
    }
    auto resolved = storage.Resolve(params["model_save"], "model_save");
    if (!resolved.has_value()) return own_failure(resolved.error());
    const storage::ObjectRef& out = *resolved;

    in.checkpoint_dir = drop_checkpoints.dir;
    if (Status st = shared.Restore(in.checkpoint_dir, ctx); !st.ok()) return own_failure(st);
    in.output_dir = options.scratch / ("train-" + ctx.id() + (follower ? ".rank" + std::to_string(group->rank()) : ""));
    std::error_code ec;
    fs::remove_all(in.output_dir, ec);
    struct Cleanup {
      fs::path dir;
      ~Cleanup() {
        std::error_code e;
        fs::remove_all(dir, e);
      }
    } cleanup{in.output_dir};

    TrainCallbacks cb;
    cb.cancelled = [&ctx] { return ctx.cancelled(); };
    cb.log = [&ctx](std::string_view level, const std::string& m) { ctx.Log(level, m); };
    if (shared.store) cb.checkpointed = [&shared](const fs::path& dir, int64_t step) { return shared.Save(dir, step); };
    tasks::Progress last;
    cb.progress = [&ctx, &last](const TrainProgress& p) {
      tasks::Progress progress{.fraction = p.fraction, .message = p.message};
      if (p.epoch > 0) {
        progress.epoch = p.epoch;
        progress.total_epochs = p.epochs;
        progress.step = p.step;
        progress.total_steps = p.total_steps;
        progress.extra = {{"loss", p.loss}, {"learning_rate", p.learning_rate}, {p.unit + "_per_s", p.units_per_s}};
        // The epochs ended so far: clients draw their curves while the task runs.
        if (p.history.is_object() && !p.history.empty()) progress.extra["history"] = p.history;
      }
      ctx.ReportProgress(progress);
      last = progress;
    };
    if (!follower && params.contains("sweep")) cb.epoch_end = AwaitSweepVerdict(ctx, params["sweep"], last);
    // Rank 0 of a torchrun group hands the task to the other members once it is ready to train
    // (what failed before, the request or the data, failed here alone), and only once every
    // other member follows (one that died is being restarted by its launcher): else the task
    // goes back to the queue, uncounted.
    if (group != nullptr && !follower && !gathered) {
      if (Status st = group->WaitForFollowers([&ctx] { return ctx.cancelled(); }); !st.ok()) {
        if (ctx.cancelled()) return ctx.CheckCancelled();
        ctx.RetryLater(/*count_attempt=*/false);
        return st;
      }
      MLAAS_ASSIGN_OR_RETURN(int64_t n, group->Publish({{"id", ctx.id()},
                                                         {"type", ctx.type()},
                                                         {"params", params},
                                                         {"submitted_by", ctx.submitted_by()},
                                                         {"attempt", ctx.attempt()}}));
      in.run_key += "/" + std::to_string(n);
    }
    auto result = RunTraining(in, cb);
    if (!result.has_value()) {
      if (result.error().code() == StatusCode::kCancelled) {
        Status why = ctx.CheckCancelled();
        return why.ok() ? result.error() : why;
      }
      // The group lost a member: this attempt ends, the checkpoints stay, and the task resumes
      // from them in a new group (gathered again, or this torchrun group once the launcher has
      // restarted the member). A member that stopped gracefully (its worker shutting down)
      // hands it back uncounted. Only the group's own failures: a store or data error fails the
      // attempt as elsewhere, and so does a member's own failure, which it reported.
      const bool stopped = StartsWith(result.error().message(), kAnotherMemberStopped);
      if (group != nullptr && !follower && !ctx.cancelled() && IsGroupFailure(result.error())) {
        auto said = stopped ? Result<std::optional<std::string>>(std::nullopt)
                            : group->MemberFailure(in.run_key, std::chrono::milliseconds(200));
        if (said.has_value() && *said) return Internal("a member of the data-parallel group failed: " + **said);
        ctx.RetryLater(/*count_attempt=*/!stopped);
      }
      return result.error();  // a member's own failure: RunTraining told rank 0
    }
    if (follower) return json{{"stats", (*result)["stats"]}};  // rank 0 writes the model
    last.fraction = 0.995;
    last.message = "saving the model";
    ctx.ReportProgress(last);
    MLAAS_RETURN_IF_ERROR(WriteFileAtomic(in.output_dir / "README.md", ModelCard(RequestForCard(params, ctx.submitted_by()), *result, ctx.id())));
    MLAAS_ASSIGN_OR_RETURN(json files, Publish(in.output_dir, out));
    fs::remove_all(in.checkpoint_dir, ec);
    shared.Drop();
    (*result)["model"]["path"] = out.key;
    (*result)["model"]["storage_type"] = std::string(out.store->storage_type());
    (*result)["model"]["files"] = files;
    ctx.Log("info", "saved the model to " + out.key);
    return *result;
  };
}

// The starting model's directory (model.path) as local files, when there is one.
Status LocalizeModel(const storage::StorageRegistry& storage, const json& params, const fs::path& scratch, TrainInputs& in,
                     std::vector<predict::ModelFiles>& keep) {
  if (!HasPath(params, "model")) return Status::Ok();
  MLAAS_ASSIGN_OR_RETURN(predict::ModelFiles files, predict::LocalizeDirectory(storage, params["model"], "model", scratch));
  in.model_dir = files.path;
  keep.push_back(std::move(files));
  return Status::Ok();
}

// An image dataset block read whole (decoded, sizes checked), with progress within [from, to].
Result<dataset::ImageDataset> ReadImages(const storage::StorageRegistry& storage, tasks::TaskContext& ctx, const json& block,
                                         const std::string& field, double from, double to) {
  const json b = WithFormat(block);
  MLAAS_ASSIGN_OR_RETURN(storage::ObjectRef ref, storage.Resolve(b, field));
  dataset::ImageReadOptions options;
  if (field != "dataset") options.idx_split = "t10k";  // a held-out IDX set: the test files when the folder has both
  options.progress = [&](int64_t done, int64_t total) {
    const double f = total > 0 ? static_cast<double>(done) / static_cast<double>(total) : 0.0;
    ctx.ReportProgress({.fraction = from + (to - from) * f,
                        .message = "reading images: " + std::to_string(done) + " of " + std::to_string(total)});
    return !ctx.cancelled();
  };
  ctx.Log("info", "reading " + ref.key);
  return dataset::ReadImageDataset(*ref.store, ref.key, b, options, field);
}

}  // namespace

tasks::TaskValidator MakeTrainNlpModelValidator(const storage::StorageRegistry& storage) {
  return [&storage](const json& params) { return Validate(storage, params); };
}

tasks::TaskHandler MakeTrainNlpModelHandler(const storage::StorageRegistry& storage, TrainTaskOptions options) {
  auto load = [&storage, options](tasks::TaskContext& ctx, const TrainSpec& spec, TrainInputs& in,
                                  std::vector<predict::ModelFiles>& keep) -> Status {
    const json& params = ctx.params();
    // Data: read, split (or the explicit eval set), augment the training split.
    const json ds = params["dataset"];
    uint64_t size = 0;
    MLAAS_ASSIGN_OR_RETURN(auto reader, OpenColumns(storage, ds, ds, "dataset", spec, &size));
    ctx.Log("info", "reading " + ds.value("path", std::string()));
    auto on_rows = [&](int64_t rows) {
      const double f = size ? static_cast<double>(reader->bytes_read()) / static_cast<double>(size) : 0.0;
      ctx.ReportProgress({.fraction = 0.01 * f, .message = "reading the dataset: " + std::to_string(rows) + " rows"});
      return !ctx.cancelled();
    };
    MLAAS_ASSIGN_OR_RETURN(auto rows, ReadExamples(*reader, spec, &in.read_stats, on_rows));
    if (rows.empty()) {
      return InvalidArgument("the dataset has no rows with the columns filled (" + std::to_string(in.read_stats.rows) +
                                 " rows read)",
                             "dataset.path");
    }
    const bool classification = spec.objective == Objective::kTextClassification ||
                                (spec.objective == Objective::kNextSentencePrediction && !spec.text_pair_column.empty());
    if (spec.has_eval_dataset) {
      in.train = std::move(rows);
      MLAAS_ASSIGN_OR_RETURN(auto eval_reader, OpenColumns(storage, ds["eval_dataset"], ds, "dataset.eval_dataset", spec));
      ReadStats eval_stats;
      auto eval_rows = ReadExamples(*eval_reader, spec, &eval_stats, [&](int64_t) { return !ctx.cancelled(); });
      if (!eval_rows.has_value()) return eval_rows.error().WithField("dataset.eval_dataset.path");
      in.eval = std::move(*eval_rows);
    } else {
      SplitExamples(std::move(rows), spec.train_test_split, spec.seed, classification, in.train, in.eval);
    }
    if (spec.objective == Objective::kNextSentencePrediction && spec.text_pair_column.empty()) {
      // Documents: pairs are drawn within each split, so no sentence is on both sides.
      in.train = SampleNextSentencePairs(in.train, spec.seed);
      in.eval = SampleNextSentencePairs(in.eval, spec.seed + 1);
      if (in.train.empty())
        return InvalidArgument("no document of the training split has two sentences to pair (sentences end at . ! ? "
                               "or a line end); or give text_pair_column and label_column",
                               "dataset.path");
      ctx.Log("info", "next-sentence pairs drawn from the documents: " + std::to_string(in.train.size()) + " training, " +
                          std::to_string(in.eval.size()) + " held out");
    }
    if (spec.typos.copies > 0) {
      // The copies' text is bounded before it exists: copies multiplies the training split's
      // memory (and its tokens') up to 1,001 times.
      uint64_t text_bytes = 0;
      for (const auto& e : in.train) text_bytes += e.text.size() + e.pair.size();
      if (text_bytes * static_cast<uint64_t>(spec.typos.copies) > kMaxAugmentedTextBytes) {
        return InvalidArgument("typo augmentation would add " + FormatBytes(text_bytes * static_cast<uint64_t>(spec.typos.copies)) +
                                   " of text (" + std::to_string(spec.typos.copies) + " copies of " + FormatBytes(text_bytes) +
                                   "), more than the " + FormatBytes(kMaxAugmentedTextBytes) + " allowed: ask fewer copies",
                               "dataset.augment.typos.copies");
      }
      const size_t before = in.train.size();
      AugmentWithTypos(in.train, spec.typos.copies, spec.typos.rate, spec.seed);
      in.augmented = static_cast<int64_t>(in.train.size() - before);
      ctx.Log("info", "typo augmentation: " + std::to_string(before) + " -> " + std::to_string(in.train.size()) +
                          " training examples");
    }

    // Model and tokenizer as local files.
    MLAAS_RETURN_IF_ERROR(LocalizeModel(storage, params, options.scratch, in, keep));
    if (HasPath(params, "tokenizer")) {
      MLAAS_ASSIGN_OR_RETURN(predict::ModelFiles tokenizer_files,
                             predict::LocalizeTokenizer(storage, params["tokenizer"], "tokenizer", options.scratch));
      in.tokenizer = tokenizer_files.path;
      keep.push_back(std::move(tokenizer_files));
    } else {
      in.tokenizer = *in.model_dir;
    }
    return Status::Ok();
  };
  return MakeHandler(storage, options, [&storage](const json& params) { return Validate(storage, params); }, load);
}

tasks::TaskValidator MakeTrainCvModelValidator(const storage::StorageRegistry& storage) {
  return [&storage](const json& params) { return ValidateImages(storage, params); };
}

tasks::TaskHandler MakeTrainCvModelHandler(const storage::StorageRegistry& storage, TrainTaskOptions options) {
  auto load = [&storage, options](tasks::TaskContext& ctx, const TrainSpec& spec, TrainInputs& in,
                                  std::vector<predict::ModelFiles>& keep) -> Status {
    const json& params = ctx.params();
    const json ds = params["dataset"];
    MLAAS_ASSIGN_OR_RETURN(dataset::ImageDataset all, ReadImages(storage, ctx, ds, "dataset", 0.0, spec.has_eval_dataset ? 0.008 : 0.01));
    in.skipped_images = all.skipped;
    in.skipped_examples = all.skipped_examples;
    in.image_labels = all.label_names;
    if (all.skipped > 0)
      ctx.Log("warn", std::to_string(all.skipped) + " images could not be read and were left out (" +
                          (all.skipped_examples.empty() ? std::string() : all.skipped_examples.front()) + ")");
    if (spec.has_eval_dataset) {
      json eval_block = EvalBlock(ds);
      for (const char* k : {"loader_kwargs", "label_names"})
        if (!eval_block.contains(k) && ds.contains(k)) eval_block[k] = ds[k];
      MLAAS_ASSIGN_OR_RETURN(dataset::ImageDataset held, ReadImages(storage, ctx, eval_block, "dataset.eval_dataset", 0.008, 0.01));
      // The held-out classes by name among the training set's.
      for (auto& e : held.examples) {
        const std::string& name = held.label_names[static_cast<size_t>(e.label)];
        auto it = std::find(in.image_labels.begin(), in.image_labels.end(), name);
        if (it == in.image_labels.end())
          return InvalidArgument("the held-out set has class '" + name + "', which the training set has not",
                                 "dataset.eval_dataset.path");
        e.label = it - in.image_labels.begin();
      }
      in.train_images = std::move(all.examples);
      in.eval_images = std::move(held.examples);
      in.skipped_images += held.skipped;
    } else {
      std::vector<int64_t> strata;
      for (const auto& e : all.examples) strata.push_back(e.label);
      std::vector<size_t> train_idx, eval_idx;
      SplitIndices(strata, spec.train_test_split, spec.seed, train_idx, eval_idx);
      for (size_t i : train_idx) in.train_images.push_back(std::move(all.examples[i]));
      for (size_t i : eval_idx) in.eval_images.push_back(std::move(all.examples[i]));
    }
    return LocalizeModel(storage, params, options.scratch, in, keep);
  };
  return MakeHandler(storage, options, [&storage](const json& params) { return ValidateImages(storage, params); }, load);
}

}  // namespace mlaas::train
