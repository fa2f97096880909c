#include "cli/client_commands.h"

#include <algorithm>
#include <cctype>
#include <iostream>
#include <map>
#include <thread>

#include "cli/output.h"
#include "client/api_client.h"
#include "common/file_util.h"
#include "common/json_file.h"
#include "common/text.h"
#include "common/time_util.h"

namespace mlaas::cli {

using client::ApiClient;
using nlohmann::json;

int ReportError(const Status& st) {
  // A server's message is shown, never obeyed: its control characters (a terminal's title or
  // clear-screen sequence) are escaped.
  std::cerr << "error: " << EscapeControlCharacters(st.message());
  if (!st.field().empty()) std::cerr << " (field: " << EscapeControlCharacters(st.field()) << ")";
  std::cerr << "\n";
  return kExitFailed;
}

void WaitNotice(const Status& reason, int seconds) {
  std::cerr << "waiting " << seconds << " s: " << reason.message() << "\n";
}

std::filesystem::path CredentialsFile() {
  const char* xdg = std::getenv("XDG_CONFIG_HOME");
  const char* home = std::getenv("HOME");
  const std::filesystem::path base = xdg && *xdg ? std::filesystem::path(xdg)
                                     : home && *home ? std::filesystem::path(home) / ".config"
                                                     : std::filesystem::path(".");
  return base / "mlaas" / "credentials";
}

std::string TokenFor(const ClientOptions& o) {
  if (!o.token.empty()) return o.token;
  auto stored = ReadJsonFile(CredentialsFile(), "credentials", {}, {.max_bytes = 1 << 20});
  if (!stored.has_value() || !stored->is_object()) return "";
  std::string server = o.server;
  while (!server.empty() && server.back() == '/') server.pop_back();
  const auto it = stored->find(server);
  return it != stored->end() && it->is_string() ? it->get<std::string>() : "";
}

Result<std::unique_ptr<ApiClient>> MakeClient(const ClientOptions& o) {
  return ApiClient::Create(o.server, o.timeout_seconds, TokenFor(o));
}

int WithClient(const ClientOptions& o, const std::function<int(ApiClient&)>& fn) {
  auto c = MakeClient(o);
  if (!c.has_value()) return ReportError(c.error());
  return fn(**c);
}

namespace {

std::string Str(const json& j, const char* key) {
  if (!j.contains(key) || j[key].is_null()) return "-";
  return j[key].is_string() ? j[key].get<std::string>() : j[key].dump();
}

std::string ProgressText(const json& task) {
  const json p = task.is_object() ? task.value("progress", json::object()) : json::object();
  std::string text = Str(task, "task_status");
  if (p.contains("message")) text += " " + Str(p, "message");
  if (p.contains("loss") && p["loss"].is_number()) {
    char loss[48];
    std::snprintf(loss, sizeof(loss), ", loss %.4f", p["loss"].get<double>());
    text += loss;
  }
  if (task.contains("stats")) text += " (" + Str(task["stats"], "elapsed") + ")";
  if (p.contains("eta_seconds") && p["eta_seconds"].is_number()) {
    text += ", ETA " + FormatElapsed(static_cast<int64_t>(p["eta_seconds"].get<double>() * 1000));
  }
  return text;
}

double Fraction(const json& task) {
  const json p = task.is_object() ? task.value("progress", json::object()) : json::object();
  return p.contains("fraction") && p["fraction"].is_number() ? p["fraction"].get<double>() : -1.0;
}

void PrintTaskSummary(const json& t) {
  std::cout << "task " << Str(t, "task_id") << " " << Str(t, "task_status");
  if (t.contains("stats")) std::cout << " after " << Str(t["stats"], "elapsed");
  std::cout << "\n";
  if (t.contains("error") && t["error"].is_object()) {
    std::cout << "error: " << Str(t["error"], "message");
    if (t["error"].contains("field")) std::cout << " (field: " << Str(t["error"], "field") << ")";
    std::cout << "\n";
  }
}

}  // namespace

int WaitForTask(ApiClient& c, const std::string& id, int timeout_s, bool as_json) {
  const int64_t deadline = timeout_s > 0 ? NowMs() + int64_t{timeout_s} * 1000 : INT64_MAX;
  ProgressLine line;
  json final_task;
  for (;;) {
    bool ended = false;
    const int64_t within_ms = deadline == INT64_MAX ? 0 : std::max<int64_t>(1, deadline - NowMs());
    Status st = c.FollowTask(id, [&](const std::string& event, const json& data) {
      if ((event == "task" || event == "end") && data.is_object()) {
        if (!as_json) line.Update(Fraction(data), ProgressText(data));
        if (event == "end") {
          final_task = data;
          ended = true;
          return false;
        }
      }
      return NowMs() < deadline;
    }, within_ms);
    if (ended) break;
    if (NowMs() >= deadline) {
      line.Finish();
      std::cerr << "error: timed out waiting for task " << id << "\n";
      return kExitTimeout;
    }
    if (!st.ok() && st.code() != StatusCode::kUnavailable && st.code() != StatusCode::kResourceExhausted) {
      line.Finish();
      return ReportError(st);
    }
    // The server went away or closed the stream (restart): try again shortly. All its event
    // streams busy (429): look at the task itself, and follow it again a few seconds later.
    if (st.code() == StatusCode::kResourceExhausted) {
      if (auto t = c.Get("/api/v1/tasks/" + client::UrlEncode(id)); t.has_value() && t->is_object()) {
        const std::string state = t->value("task_status", "");
        if (state == "succeeded" || state == "failed" || state == "cancelled") break;
        if (!as_json) line.Update(Fraction(*t), ProgressText(*t));
      }
    }
    std::this_thread::sleep_until(std::chrono::steady_clock::now() +
                                  std::chrono::milliseconds(std::min<int64_t>(
                                      st.code() == StatusCode::kResourceExhausted ? 5000 : 1000, std::max<int64_t>(0, deadline - NowMs()))));
  }
  line.Finish();
  // The event carries the summary; fetch the full task (with its result) for the output.
  if (auto full = c.Get("/api/v1/tasks/" + client::UrlEncode(id)); full.has_value()) {
    final_task = *full;
  }
  if (as_json) {
    PrintJson(final_task);
  } else {
    PrintTaskSummary(final_task);
  }
  return final_task.value("task_status", "") == "succeeded" ? kExitOk : kExitFailed;
}

namespace {

void AddTaskCommands(CLI::App& app, ClientOptions& o, int* exit_code) {
  auto* tasks = app.add_subcommand("tasks", "Inspect and control tasks on the server");
  tasks->require_subcommand(1);

  struct ListArgs {
    std::string status, type, cursor;
    int limit = 50;
    bool all = false;
  };
  auto list_args = std::make_shared<ListArgs>();
  auto* list = tasks->add_subcommand("list", "List tasks, newest first");
  list->add_option("--status", list_args->status, "Only tasks in this state")
      ->check(CLI::IsMember({"queued", "running", "succeeded", "failed", "cancelled"}));
  list->add_option("--type", list_args->type, "Only tasks of this type");
  list->add_option("--limit", list_args->limit, "Tasks per page")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  list->add_option("--cursor", list_args->cursor, "Start at this page (the `more:` line of the previous one)");
  list->add_flag("--all", list_args->all, "Every page, not only the first");
  list->callback([&o, exit_code, list_args] {
    *exit_code = WithClient(o, [&](ApiClient& c) {
      json all = json::array();
      std::string cursor = list_args->cursor;
      for (;;) {
        auto page = c.Get("/api/v1/tasks" + client::QueryString({{"status", list_args->status},
                                                                 {"type", list_args->type},
                                                                 {"limit", std::to_string(list_args->limit)},
                                                                 {"cursor", cursor}}));
        if (!page.has_value()) return ReportError(page.error());
        for (auto& t : (*page)["tasks"]) all.push_back(std::move(t));
        const std::string next = (*page)["next_cursor"].is_string() ? (*page)["next_cursor"].get<std::string>() : "";
        if (list_args->all && !next.empty() && next == cursor)
          return ReportError(Status(StatusCode::kInternal, "the server repeated a page's cursor"));
        cursor = next;
        if (!list_args->all || cursor.empty()) break;
      }
      if (o.json) {
        PrintJson({{"tasks", all}, {"next_cursor", cursor.empty() ? json() : json(cursor)}});
        return kExitOk;
      }
      std::vector<std::vector<std::string>> rows;
      for (json t : all) {
        double f = Fraction(t);
        rows.push_back({Str(t, "task_id"), Str(t, "task_type"), Str(t, "task_status"),
                        f >= 0 ? std::to_string(static_cast<int>(f * 100)) + "%" : "-",
                        Str(t["stats"], "submitted"), Str(t["stats"], "elapsed")});
      }
      PrintTable({"TASK ID", "TYPE", "STATUS", "PROGRESS", "SUBMITTED (UTC)", "ELAPSED"}, rows);
      if (!cursor.empty()) std::cout << "more: mlaas tasks list --cursor " << cursor << " (or --all)\n";
      return kExitOk;
    });
  });

  auto id = std::make_shared<std::string>();
  auto* show = tasks->add_subcommand("show", "Show a task: status, stats, progress and result");
  show->add_option("id", *id, "Task id")->required();
  show->callback([&o, exit_code, id] {
    *exit_code = WithClient(o, [&](ApiClient& c) {
      auto t = c.Get("/api/v1/tasks/" + client::UrlEncode(*id));
      if (!t.has_value()) return ReportError(t.error());
      PrintJson(*t);
      return kExitOk;
    });
  });

  auto wait_timeout = std::make_shared<int>(0);
  auto* wait = tasks->add_subcommand(
      "wait", "Follow a task's progress until it ends; exit 0 if it succeeded, 1 otherwise");
  wait->add_option("id", *id, "Task id")->required();
  wait->add_option("--timeout", *wait_timeout, "Give up after this many seconds (exit 3)")
      ->check(CLI::NonNegativeNumber);
  wait->callback([&o, exit_code, id, wait_timeout] {
    *exit_code = WithClient(o, [&](ApiClient& c) { return WaitForTask(c, *id, *wait_timeout, o.json); });
  });

  auto* cancel = tasks->add_subcommand("cancel", "Cancel a queued or running task");
  cancel->add_option("id", *id, "Task id")->required();
  cancel->callback([&o, exit_code, id] {
    *exit_code = WithClient(o, [&](ApiClient& c) {
      auto t = c.Post("/api/v1/tasks/" + client::UrlEncode(*id) + "/cancel", json::object());
      if (!t.has_value()) return ReportError(t.error());
      if (o.json) {
        PrintJson(*t);
      } else if ((*t)["task_status"] == "cancelled") {
        std::cout << "task " << *id << " cancelled\n";
      } else {
        std::cout << "task " << *id << " is stopping (it stops at its next check)\n";
      }
      return kExitOk;
    });
  });

  auto* logs = tasks->add_subcommand("logs", "Print a task's log");
  logs->add_option("id", *id, "Task id")->required();
  logs->callback([&o, exit_code, id] {
    *exit_code = WithClient(o, [&](ApiClient& c) {
      int64_t after = 0;
      for (;;) {
        auto page = c.Get("/api/v1/tasks/" + client::UrlEncode(*id) + "/logs" +
                          client::QueryString({{"after", std::to_string(after)}}));
        if (!page.has_value()) return ReportError(page.error());
        if (o.json) {
          for (const auto& l : (*page)["logs"]) std::cout << l.dump() << "\n";
        } else {
          for (json l : (*page)["logs"]) {
            std::cout << Str(l, "time") << " " << Str(l, "level") << " " << Str(l, "message") << "\n";
          }
        }
        if ((*page)["logs"].empty()) return kExitOk;
        const int64_t next = (*page)["next_after"].get<int64_t>();
        if (next <= after) return ReportError(Status(StatusCode::kInternal, "the server's log pages do not move on"));
        after = next;
      }
    });
  });
}

// Every object under `prefix`, page by page; with `delimiter` "/", one level: the folders under
// it in `prefixes`. A server that repeats a continuation token ends the listing with an error.
struct ObjectListing {
  json objects = json::array(), prefixes = json::array();
};
Result<ObjectListing> ListObjects(ApiClient& c, const std::string& prefix, const std::string& delimiter) {
  ObjectListing all;
  std::string token;
  do {
    auto page = c.Get("/api/v1/ml/utilities/s3/object" +
                      client::QueryString({{"prefix", prefix}, {"delimiter", delimiter}, {"continuation_token", token}}));
    if (!page.has_value()) return page.error();
    for (const auto& x : (*page)["objects"]) all.objects.push_back(x);
    for (const auto& x : (*page)["common_prefixes"]) all.prefixes.push_back(x);
    const std::string next = (*page)["is_truncated"].get<bool>() ? (*page)["next_continuation_token"].get<std::string>() : "";
    if (!next.empty() && next == token)
      return Status(StatusCode::kInternal, "the server repeated its listing's continuation token");
    token = next;
  } while (!token.empty());
  return all;
}

void AddObjectCommands(CLI::App& app, ClientOptions& o, int* exit_code) {
  auto* objects = app.add_subcommand("objects", "List, upload, download and delete objects");
  objects->require_subcommand(1);

  struct LsArgs {
    std::string prefix;
    bool recursive = false;
  };
  auto ls_args = std::make_shared<LsArgs>();
  auto* ls = objects->add_subcommand("ls", "List objects under a prefix");
  ls->add_option("prefix", ls_args->prefix, "Key prefix (e.g. datasets/)");
  ls->add_flag("-r,--recursive", ls_args->recursive, "List every key, not one level");
  ls->callback([&o, exit_code, ls_args] {
    *exit_code = WithClient(o, [&](ApiClient& c) {
      auto listing = ListObjects(c, ls_args->prefix, ls_args->recursive ? "" : "/");
      if (!listing.has_value()) return ReportError(listing.error());
      if (o.json) {
        PrintJson({{"objects", listing->objects}, {"common_prefixes", listing->prefixes}});
        return kExitOk;
      }
      std::vector<std::vector<std::string>> rows;
      for (const auto& p : listing->prefixes) rows.push_back({"PRE", "", p.get<std::string>()});
      for (json x : listing->objects) {
        rows.push_back({FormatBytes(x["size"].get<uint64_t>()), Str(x, "last_modified"), Str(x, "key")});
      }
      PrintTable({"SIZE", "LAST MODIFIED (UTC)", "KEY"}, rows);
      return kExitOk;
    });
  });

  struct PutArgs {
    std::string file, key;
  };
  auto put_args = std::make_shared<PutArgs>();
  auto* put = objects->add_subcommand("put", "Upload a local file as an object, or a directory (a model, a tokenizer) "
                                             "with everything in it as KEY/<path>");
  put->add_option("file", put_args->file, "Local file or directory")->required()->check(CLI::ExistingPath);
  put->add_option("key", put_args->key, "Object key, or key prefix for a directory (default: the file's name)");
  put->callback([&o, exit_code, put_args] {
    *exit_code = WithClient(o, [&](ApiClient& c) {
      const std::filesystem::path local = std::filesystem::path(put_args->file).lexically_normal();
      std::string key = put_args->key.empty() ? (local.has_filename() ? local.filename() : local.parent_path().filename()).string()
                                              : put_args->key;
      if (std::filesystem::is_directory(local)) {
        std::vector<std::filesystem::path> files;
        std::error_code ec;
        for (auto it = std::filesystem::recursive_directory_iterator(local, ec); !ec && it != std::filesystem::recursive_directory_iterator();
             it.increment(ec)) {
          if (it->is_regular_file()) files.push_back(it->path());
        }
        if (ec) return ReportError(InvalidArgument("cannot read " + local.string() + ": " + ec.message(), "file"));
        if (files.empty()) return ReportError(InvalidArgument(local.string() + " holds no files", "file"));
        std::sort(files.begin(), files.end());
        while (!key.empty() && key.back() == '/') key.pop_back();
        json stored = json::array();
        uint64_t bytes = 0;
        ProgressLine line;
        for (size_t i = 0; i < files.size(); ++i) {
          const std::string rel = std::filesystem::relative(files[i], local).generic_string();
          line.Update(static_cast<double>(i) / files.size(), "uploading " + rel);
          auto info = c.UploadFile(key + "/" + rel, files[i]);
          if (!info.has_value()) {
            line.Finish();
            return ReportError(info.error());
          }
          bytes += (*info)["size"].get<uint64_t>();
          stored.push_back(*info);
        }
        line.Finish();
        if (o.json) {
          PrintJson({{"objects", stored}});
        } else {
          std::cout << "uploaded " << files.size() << " files under " << key << "/ (" << FormatBytes(bytes) << ")\n";
        }
        return kExitOk;
      }
      ProgressLine line;
      auto info = c.UploadFile(key, put_args->file, [&](uint64_t done, uint64_t total) {
        if (total > (1u << 20)) {
          line.Update(static_cast<double>(done) / total, "uploading " + FormatBytes(done));
        }
      });
      line.Finish();
      if (!info.has_value()) return ReportError(info.error());
      if (o.json) {
        PrintJson(*info);
      } else {
        std::cout << "uploaded " << Str(*info, "key") << " ("
                  << FormatBytes((*info)["size"].get<uint64_t>()) << ")\n";
      }
      return kExitOk;
    });
  });

  struct GetArgs {
    std::string key, dest;
  };
  auto get_args = std::make_shared<GetArgs>();
  auto* get = objects->add_subcommand("get", "Download an object to a file (or - for stdout), or every object under "
                                             "the directory KEY into the directory DEST");
  get->add_option("key", get_args->key, "Object key, or a directory's key prefix")->required();
  get->add_option("dest", get_args->dest, "Destination file or directory (default: the key's last part)");
  get->callback([&o, exit_code, get_args] {
    *exit_code = WithClient(o, [&](ApiClient& c) {
      std::string key = get_args->key;
      while (key.size() > 1 && key.back() == '/') key.pop_back();
      std::string dest = get_args->dest.empty() ? std::filesystem::path(key).filename().string() : get_args->dest;
      ProgressLine line;
      auto n = c.DownloadFile(key, dest, [&](uint64_t done, uint64_t total) {
        if (dest != "-" && total > (1u << 20)) {
          line.Update(static_cast<double>(done) / total, "downloading " + FormatBytes(done));
        }
      });
      line.Finish();
      if (!n.has_value() && n.error().code() == StatusCode::kNotFound && dest != "-") {
        // No such object: a directory, when objects live under KEY/.
        auto listing = ListObjects(c, key + "/", "");
        if (!listing.has_value()) return ReportError(listing.error());
        std::vector<std::pair<std::string, uint64_t>> keys;
        for (json x : listing->objects) keys.emplace_back(x["key"].get<std::string>(), x["size"].get<uint64_t>());
        if (keys.empty()) return ReportError(n.error());
        uint64_t bytes = 0;
        ProgressLine files_line;
        for (size_t i = 0; i < keys.size(); ++i) {
          // Only keys under the prefix asked for, each written under dest and nowhere else.
          if (keys[i].first.rfind(key + "/", 0) != 0)
            return ReportError(InvalidArgument("the server listed '" + EscapeForLog(keys[i].first, 200) + "', not under " + key + "/"));
          const std::string rel = keys[i].first.substr(key.size() + 1);
          auto under = client::LocalPathUnder(dest, rel);
          if (!under.has_value()) return ReportError(under.error());
          const std::filesystem::path target = *under;
          std::error_code ec;
          std::filesystem::create_directories(target.parent_path(), ec);
          files_line.Update(static_cast<double>(i) / keys.size(), "downloading " + rel);
          auto got = c.DownloadFile(keys[i].first, target);
          if (!got.has_value()) {
            files_line.Finish();
            return ReportError(got.error());
          }
          bytes += *got;
        }
        files_line.Finish();
        if (o.json) {
          PrintJson({{"key", key}, {"path", dest}, {"files", keys.size()}, {"size", bytes}});
        } else {
          std::cout << "downloaded " << keys.size() << " files under " << key << "/ to " << dest << " (" << FormatBytes(bytes)
                    << ")\n";
        }
        return kExitOk;
      }
      if (!n.has_value()) return ReportError(n.error());
      if (dest != "-" && !o.json) std::cout << "downloaded " << get_args->key << " to " << dest << " (" << FormatBytes(*n) << ")\n";
      if (dest != "-" && o.json) PrintJson({{"key", get_args->key}, {"path", dest}, {"size", *n}});
      return kExitOk;
    });
  });

  auto rm_keys = std::make_shared<std::vector<std::string>>();
  auto* rm = objects->add_subcommand("rm", "Delete objects");
  rm->add_option("keys", *rm_keys, "Object keys")->required();
  rm->callback([&o, exit_code, rm_keys] {
    *exit_code = WithClient(o, [&](ApiClient& c) {
      int rc = kExitOk;
      for (const auto& key : *rm_keys) {
        if (Status st = c.DeleteObject(key); !st.ok()) {
          rc = ReportError(st);
        } else if (!o.json) {
          std::cout << "deleted " << key << "\n";
        }
      }
      return rc;
    });
  });
}

void AddDatasetCommands(CLI::App& app, ClientOptions& o, int* exit_code) {
  auto* dataset = app.add_subcommand("dataset", "Work with datasets in the object store");
  dataset->require_subcommand(1);
  struct StatsArgs {
    std::string key, format, delimiter;
    bool wait = false;
  };
  auto a = std::make_shared<StatsArgs>();
  auto* stats = dataset->add_subcommand(
      "stats", "Compute a dataset's statistics as a task (rows, columns, tokens, distinct values)");
  stats->add_option("key", a->key, "Object key of the dataset (CSV, TSV or JSON Lines)")->required();
  stats->add_option("--format", a->format, "csv, tsv or jsonl (default: from the extension)")
      ->check(CLI::IsMember({"csv", "tsv", "jsonl"}));
  stats->add_option("--delimiter", a->delimiter, "CSV delimiter");
  stats->add_flag("--wait", a->wait, "Wait for the task (a progress bar), then print the statistics");
  stats->callback([&o, exit_code, a] {
    *exit_code = WithClient(o, [&](ApiClient& c) {
      json ds = {{"path", a->key}, {"storage_type", "local"}};
      if (!a->format.empty()) ds["format"] = a->format;
      if (!a->delimiter.empty()) ds["loader_kwargs"] = {{"delimiter", a->delimiter}};
      auto t = c.Post("/api/v1/ml/utilities/dataset/stats", {{"dataset", ds}});
      if (!t.has_value()) return ReportError(t.error());
      std::string id = (*t)["task_id"];
      if (!a->wait) {
        if (o.json) PrintJson(*t); else std::cout << id << "\n";
        return kExitOk;
      }
      int rc = WaitForTask(c, id, 0, o.json);
      if (rc != kExitOk || o.json) return rc;
      auto full = c.Get("/api/v1/tasks/" + id);
      if (!full.has_value() || !(*full).contains("dataset")) return rc;
      const json& d = (*full)["dataset"];
      std::cout << Str(d, "rows") << " rows, " << Str(d, "tokens") << " tokens, "
                << FormatBytes(d["bytes"].get<uint64_t>()) << "\n";
      std::vector<std::vector<std::string>> rows;
      for (json col : d["columns"]) {
        char mean[32] = "-";
        if (col.contains("mean_length")) std::snprintf(mean, sizeof(mean), "%.1f", col["mean_length"].get<double>());
        rows.push_back({Str(col, "name"), Str(col, "non_empty"), Str(col, "empty"),
                        Str(col, "distinct") + (col.value("distinct_is_estimate", false) ? "~" : ""),
                        mean, Str(col, "tokens")});
      }
      PrintTable({"COLUMN", "NON-EMPTY", "EMPTY", "DISTINCT", "MEAN LENGTH", "TOKENS"}, rows);
      return rc;
    });
  });
}

// The options of `mlaas train`, which `mlaas sweep` shares: the request's blocks.
struct TrainArgs {
  std::string objective, model, preset, config, tokenizer, dataset, eval_dataset, save, optimizer, request;
  std::string text_column, label_column, pair_column, best_metric, classifier_pooling, similarity;
  std::string tokens_column, tags_column;
  std::string register_as, alias;
  std::string format, label_names, precision;  // images
  int64_t epochs = 0, batch_size = 0, warmup = -1, max_length = 0, doc_stride = 0, seed = -1, typo_copies = 0;
  int64_t image_size = 0, channels = 0, crop_padding = 0;
  double lr = 0, weight_decay = -1, split = 0, whitening = 0, scale = 0, rotation = 0;
  bool follow = false, load_best = false, flip = false, freeze_backbone = false;
  int gpus = -1;
  int workers = 0;  // resources.workers (0: not asked)
  std::vector<std::string> labels;
};

void AddTrainOptions(CLI::App* train, TrainArgs* a) {
  train->add_option("--objective", a->objective,
                    "text-classification, token-classification, next-sentence-prediction, question-answering, "
                    "masked-lm, causal-lm, sentence-embedding or image-classification (docs/vision.md)")
      ->check(CLI::IsMember({"text-classification", "token-classification", "next-sentence-prediction",
                             "question-answering", "masked-lm", "causal-lm", "sentence-embedding", "image-classification"}));
  train->add_option("--model", a->model, "Start from this model directory (object key, or catalog://<name>[/<n>|@<alias>])");
  train->add_option("--preset", a->preset,
                    "Start from scratch with a built-in shape (bert-tiny, bert-mini, ..., longformer-tiny for long documents; images: cnn-small, mlp, resnet18, "
                    "resnet34)");
  train->add_option("--config", a->config, "Start from scratch with this local config.json");
  train->add_option("--tokenizer", a->tokenizer, "Tokenizer (object key; default: the model's)");
  train->add_option("--classifier-pooling", a->classifier_pooling,
                    "text-classification: the classifier reads the first token (cls, default) or the mean of the tokens")
      ->check(CLI::IsMember({"cls", "mean"}));
  train->add_option("--dataset", a->dataset,
                    "Training data: CSV, TSV, JSON Lines or (token-classification) CoNLL (object key); images: an IDX or "
                    "image_folder folder, or a list");
  train->add_option("--format", a->format,
                    "csv, tsv, jsonl, conll (token-classification); images: idx, image_folder (default: from the "
                    "extension)")
      ->check(CLI::IsMember({"idx", "image_folder", "csv", "tsv", "jsonl", "conll"}));
  train->add_option("--label-names", a->label_names, "images: names of the numeric classes 0, 1, ..., comma-separated");
  train->add_option("--image-size", a->image_size, "images, from scratch: resize to this size (default: the images' own)");
  train->add_option("--channels", a->channels, "images, from scratch: 1 (gray) or 3 (RGB)")->check(CLI::IsMember({1, 3}));
  train->add_option("--crop-padding", a->crop_padding, "images: random crops of the image padded by this many pixels");
  train->add_flag("--flip", a->flip, "images: mirror half the training images");
  train->add_option("--rotation", a->rotation, "images: rotate training images by up to this many degrees");
  train->add_flag("--freeze-backbone", a->freeze_backbone, "images: fine-tune the classifier only");
  train->add_option("--precision", a->precision,
                    "bf16 (forward passes under bfloat16 autocast), fp32, or auto (default: bf16 on a CUDA GPU that has it)")
      ->check(CLI::IsMember({"auto", "bf16", "fp32", "bfloat16", "float32"}));
  train->add_option("--eval-dataset", a->eval_dataset, "Held-out data instead of --split (object key)");
  train->add_option("--save", a->save, "Where to write the trained model directory (object key)");
  train->add_option("--epochs", a->epochs, "Passes over the training split (default 10)");
  train->add_option("--batch-size", a->batch_size, "Sequences per step (default 32)");
  train->add_option("--optimizer", a->optimizer, "AdamW (default), Adam or SGD");
  train->add_option("--lr", a->lr, "Peak learning rate (default 2e-5)");
  train->add_option("--warmup", a->warmup, "Linear warm-up steps (default 0)");
  train->add_option("--weight-decay", a->weight_decay, "Decoupled weight decay (default 0.01)");
  train->add_option("--seed", a->seed, "Seed of initialisation, split and shuffling (default 42)");
  train->add_option("--split", a->split, "Fraction held out for evaluation (default 0.1)");
  train->add_option("--max-length", a->max_length, "Truncate inputs to this many tokens");
  train->add_option("--doc-stride", a->doc_stride,
                    "question-answering: tokens two windows of a long context share (default 128)");
  train->add_option("--text-column", a->text_column, "Column of the texts (default text)");
  train->add_option("--label-column", a->label_column, "Column of the labels (default label)");
  train->add_option("--pair-column", a->pair_column, "Column of the second texts of pairs");
  train->add_option("--tokens-column", a->tokens_column,
                    "token-classification: column of each sentence's words, a JSON array (default tokens)");
  train->add_option("--tags-column", a->tags_column, "token-classification: column of the words' tags (default tags)");
  train->add_option("--whitening", a->whitening,
                    "sentence-embedding: fit a whitening projection after training (eigenvalue power, 0.5: full)");
  train->add_option("--similarity", a->similarity,
                    "sentence-embedding: cosine (default) or dot, how embeddings compare in the loss and in vector stores")
      ->check(CLI::IsMember({"cosine", "dot"}));
  train->add_option("--scale", a->scale, "sentence-embedding: similarity scale, 1/temperature (default 20)");
  train->add_option("--typo-copies", a->typo_copies, "Typo-augmented copies of each training example");
  train->add_flag("--load-best", a->load_best, "Save the epoch with the best held-out metric, not the last one");
  train->add_option("--best-metric", a->best_metric,
                    "The held-out metric --load-best and early stopping watch (default eval_loss; e.g. eval_accuracy)");
  train->add_option("--gpus", a->gpus, "Run on a worker with at least this many GPUs (resources.gpus; docs/deploy.md)")
      ->check(CLI::Range(0, 64));
  train->add_option("--labels", a->labels,
                    "Run on a worker with all these capability labels, comma-separated (resources.labels)")
      ->delimiter(',');
  train->add_option("--workers", a->workers,
                    "Train data-parallel across this many worker processes, gathered by the platform "
                    "(resources.workers; docs/deploy.md)")
      ->check(CLI::Range(1, 1024));
  train->add_option("--request", a->request,
                    "A JSON request body (SPEC blocks); the options above override its fields");
  train->add_option("--register", a->register_as,
                    "Register the trained model in the catalog as the next version of this name (docs/catalog.md)");
  train->add_option("--alias", a->alias, "With --register: then point this alias (e.g. champion) at it");
}

// The request body the options describe (over --request's, when given).
Result<json> TrainRequestBody(const TrainArgs& a) {
  json body = json::object();
  if (!a.request.empty()) {
    auto text = ReadFile(a.request, 16u << 20);
    if (!text.has_value()) return text.error();
    body = json::parse(*text, nullptr, false);
    if (!body.is_object()) return InvalidArgument(a.request + " is not a JSON object", "--request");
  }
  auto set = [&](const char* block, const char* key, json v) { body[block][key] = std::move(v); };
  if (!a.objective.empty()) set("model", "objective", a.objective);
  if (!a.model.empty()) set("model", "path", a.model);
  if (!a.preset.empty()) set("model", "preset", a.preset);
  if (!a.classifier_pooling.empty()) set("model", "classifier_pooling", a.classifier_pooling);
  if (!a.config.empty()) {
    auto text = ReadFile(a.config, 16u << 20);
    json c = text.has_value() ? json::parse(*text, nullptr, false) : json();
    if (!c.is_object()) return InvalidArgument("cannot read a JSON config from " + a.config, "--config");
    set("model", "config", c);
  }
  if (!a.tokenizer.empty()) set("tokenizer", "path", a.tokenizer);
  if (!a.dataset.empty()) set("dataset", "path", a.dataset);
  if (!a.eval_dataset.empty()) set("dataset", "eval_dataset", json{{"path", a.eval_dataset}});
  if (a.split > 0) set("dataset", "train_test_split", a.split);
  if (!a.text_column.empty()) body["dataset"]["loader_kwargs"]["text_column"] = a.text_column;
  if (!a.label_column.empty()) body["dataset"]["loader_kwargs"]["label_column"] = a.label_column;
  if (!a.pair_column.empty()) body["dataset"]["loader_kwargs"]["text_pair_column"] = a.pair_column;
  if (!a.tokens_column.empty()) body["dataset"]["loader_kwargs"]["tokens_column"] = a.tokens_column;
  if (!a.tags_column.empty()) body["dataset"]["loader_kwargs"]["tags_column"] = a.tags_column;
  if (a.typo_copies > 0) body["dataset"]["augment"]["typos"]["copies"] = a.typo_copies;
  if (!a.format.empty()) set("dataset", "format", a.format);
  if (!a.label_names.empty()) set("dataset", "label_names", Split(a.label_names, ','));
  if (a.image_size > 0) set("model", "image_size", a.image_size);
  if (a.channels > 0) set("model", "num_channels", a.channels);
  if (a.crop_padding > 0) body["dataset"]["augment"]["crop_padding"] = a.crop_padding;
  if (a.flip) body["dataset"]["augment"]["horizontal_flip"] = true;
  if (a.rotation > 0) body["dataset"]["augment"]["rotation"] = a.rotation;
  if (a.freeze_backbone) set("model_train", "freeze_backbone", true);
  if (!a.precision.empty()) set("model_train", "precision", a.precision);
  if (!a.save.empty()) set("model_save", "path", a.save);
  if (a.gpus >= 0) set("resources", "gpus", a.gpus);
  if (!a.labels.empty()) set("resources", "labels", a.labels);
  if (a.workers > 0) set("resources", "workers", a.workers);
  if (!a.register_as.empty()) set("catalog", "model", a.register_as);
  if (!a.alias.empty()) set("catalog", "alias", a.alias);
  if (a.epochs > 0) set("model_train", "epochs", a.epochs);
  if (a.batch_size > 0) set("model_train", "batch_size", a.batch_size);
  if (a.seed >= 0) set("model_train", "seed", a.seed);
  if (a.max_length > 0) set("model_train", "max_length", a.max_length);
  if (a.doc_stride > 0) set("model_train", "doc_stride", a.doc_stride);
  if (!a.optimizer.empty()) body["model_train"]["optimizer"]["name"] = a.optimizer;
  if (a.lr > 0) body["model_train"]["optimizer"]["init_lr"] = a.lr;
  if (a.warmup >= 0) body["model_train"]["optimizer"]["num_warm_steps"] = a.warmup;
  if (a.weight_decay >= 0) body["model_train"]["optimizer"]["weight_decay_rate"] = a.weight_decay;
  if (a.load_best) set("model_train", "load_best_model_at_end", true);
  if (a.whitening > 0) set("model_train", "whitening", a.whitening);
  if (!a.similarity.empty()) set("model_train", "similarity", a.similarity);
  if (a.scale > 0) set("model_train", "scale", a.scale);
  if (!a.best_metric.empty()) body["model_train"]["early_stopping"]["metric"] = a.best_metric;
  return body;
}

void AddTrainCommand(CLI::App& app, ClientOptions& o, int* exit_code) {
  auto a = std::make_shared<TrainArgs>();
  auto* train = app.add_subcommand(
      "train",
      "Train or fine-tune a model on the server (a task): text (NLP) or image classification; --wait shows progress "
      "and loss");
  AddTrainOptions(train, a.get());
  train->add_flag("--wait", a->follow, "Wait for the task: a progress bar with the loss, then the evaluation");
  train->add_flag("--follow", a->follow, "The former name of --wait")->group("");  // hidden: old scripts keep working
  train->callback([&o, exit_code, a] {
    auto request = TrainRequestBody(*a);
    if (!request.has_value()) {
      *exit_code = ReportError(request.error());
      return;
    }
    json body = std::move(request).value();
    *exit_code = WithClient(o, [&](ApiClient& c) {
      const bool image = body["model"].value("objective", std::string()) == "image-classification";
      auto t = c.Post(image ? "/api/v1/ml/cv/train/model" : "/api/v1/ml/nlp/train/model", body);
      if (!t.has_value()) return ReportError(t.error());
      const std::string id = (*t)["task_id"];
      if (!a->follow) {
        if (o.json) PrintJson(*t); else std::cout << id << "\n";
        return kExitOk;
      }
      int rc = WaitForTask(c, id, 0, o.json);
      if (o.json) return rc;
      auto full = c.Get("/api/v1/tasks/" + id);
      if (!full.has_value() || !full->contains("evaluation")) return rc;
      std::vector<std::vector<std::string>> rows;
      for (auto it = (*full)["evaluation"].begin(); it != (*full)["evaluation"].end(); ++it) {
        if (!it.value().is_number()) continue;
        char v[32];
        std::snprintf(v, sizeof(v), "%.4f", it.value().get<double>());
        rows.push_back({it.key(), v});
      }
      const json stats = full->value("stats", json::object());
      if (stats.contains("best_epoch") && stats.contains("best_metric")) {
        std::cout << "kept epoch " << Str(stats, "best_epoch") << ", the best by " << Str(stats["best_metric"], "name")
                  << "\n";
      }
      if (!rows.empty()) PrintTable({"METRIC", "HELD-OUT"}, rows);
      // Classes (classification) or entity types (token classification).
      const json& ev = (*full)["evaluation"];
      const json per_class = ev.value("per_class", ev.value("per_type", json::object()));
      if (!per_class.empty()) {
        std::vector<std::vector<std::string>> classes;
        auto fixed = [](const json& v) {
          char s[32];
          std::snprintf(s, sizeof(s), "%.4f", v.is_number() ? v.get<double>() : 0.0);
          return std::string(s);
        };
        for (auto it = per_class.begin(); it != per_class.end(); ++it)
          classes.push_back({it.key(), fixed(it.value()["precision"]), fixed(it.value()["recall"]), fixed(it.value()["f1"]),
                             Str(it.value(), "support")});
        PrintTable({ev.contains("per_class") ? "CLASS" : "ENTITY", "PRECISION", "RECALL", "F1", "SUPPORT"}, classes);
      }
      if (full->contains("model")) std::cout << "model saved to " << Str((*full)["model"], "path") << "\n";
      return rc;
    });
  });
}

// One --param of `mlaas sweep`: PATH=TYPE:ARGS, e.g. optimizer.init_lr=log-uniform:1e-5,1e-3,
// batch_size=choice:8,16,32, optimizer.num_warm_steps=int:0,100.
Result<std::pair<std::string, json>> ParseSweepParam(const std::string& text) {
  const size_t eq = text.find('=');
  const size_t colon = text.find(':', eq == std::string::npos ? 0 : eq);
  if (eq == std::string::npos || eq == 0 || colon == std::string::npos)
    return InvalidArgument("a parameter is PATH=TYPE:ARGS, e.g. optimizer.init_lr=log-uniform:1e-5,1e-3 or "
                           "batch_size=choice:8,16,32 (got '" + text + "')", "--param");
  const std::string path = text.substr(0, eq);
  std::string type = text.substr(eq + 1, colon - eq - 1);
  std::replace(type.begin(), type.end(), '-', '_');
  std::vector<json> args;
  for (const auto& piece : Split(text.substr(colon + 1), ',')) {
    if (piece == "true" || piece == "false") {
      args.emplace_back(piece == "true");
      continue;
    }
    json v = json::parse(piece, nullptr, false);
    args.push_back(v.is_number() ? v : json(piece));
  }
  if (type == "choice") return std::make_pair(path, json{{"type", "choice"}, {"values", args}});
  if (type != "uniform" && type != "log_uniform" && type != "int")
    return InvalidArgument("the type of '" + text + "' is choice, uniform, log-uniform or int", "--param");
  if (args.size() != 2 || !args[0].is_number() || !args[1].is_number())
    return InvalidArgument(type + " takes two numbers, MIN,MAX (got '" + text + "')", "--param");
  return std::make_pair(path, json{{"type", type}, {"min", args[0]}, {"max", args[1]}});
}

void AddSweepCommand(CLI::App& app, ClientOptions& o, int* exit_code) {
  struct SweepArgs {
    TrainArgs train;
    std::vector<std::string> params;
    std::string algorithm, metric, direction, scheduler;
    int64_t sweep_seed = -1, max_trials = 0, parallel = 0, min_epochs = 0, reduction_factor = 0;
    double max_seconds = -1;
  };
  auto a = std::make_shared<SweepArgs>();
  auto* sweep = app.add_subcommand(
      "sweep",
      "Search hyperparameters on the server (a task): train trials of an NLP model over a search space, prune weak "
      "ones early (ASHA), keep the best; --wait shows progress, then every trial");
  AddTrainOptions(sweep, &a->train);
  sweep->add_option("--param", a->params,
                    "A searched model_train field, PATH=TYPE:ARGS (repeat): optimizer.init_lr=log-uniform:1e-5,1e-3, "
                    "batch_size=choice:8,16,32, optimizer.weight_decay_rate=uniform:0,0.1, "
                    "optimizer.num_warm_steps=int:0,100");
  sweep->add_option("--algorithm", a->algorithm, "random (default) or grid (choice and int parameters)")
      ->check(CLI::IsMember({"random", "grid"}));
  sweep->add_option("--sweep-seed", a->sweep_seed, "Seed of the random search (default 0)");
  sweep->add_option("--metric", a->metric, "The held-out metric to optimise (default eval_loss; e.g. eval_accuracy)");
  sweep->add_option("--direction", a->direction, "minimize or maximize (default: from the metric)")
      ->check(CLI::IsMember({"minimize", "maximize"}));
  sweep->add_option("--max-trials", a->max_trials, "Trials to run at most (default 10)")->check(CLI::Range(1, 1000));
  sweep->add_option("--max-seconds", a->max_seconds, "Stop the sweep and its running trials after this long");
  sweep->add_option("--parallel", a->parallel, "Trials queued or running at once (default 1)")->check(CLI::Range(1, 64));
  sweep->add_option("--scheduler", a->scheduler, "asha (default: prune trials at rung epochs) or none")
      ->check(CLI::IsMember({"asha", "none"}));
  sweep->add_option("--min-epochs", a->min_epochs, "ASHA: the first rung (default 1)");
  sweep->add_option("--reduction-factor", a->reduction_factor, "ASHA: rungs at min_epochs * rf^k, the best 1/rf go on (default 3)");
  sweep->add_flag("--wait", a->train.follow, "Wait for the sweep: a progress bar, then every trial and the best");
  sweep->callback([&o, exit_code, a] {
    auto request = TrainRequestBody(a->train);
    if (!request.has_value()) {
      *exit_code = ReportError(request.error());
      return;
    }
    json body = std::move(request).value();
    json& s = body["sweep"];
    if (!s.is_object()) s = json::object();
    for (const char* block : {"parameters", "budget", "scheduler"}) {  // a --request's odd values: the options win
      if (s.contains(block) && !s[block].is_object()) s.erase(block);
    }
    for (const auto& text : a->params) {
      auto p = ParseSweepParam(text);
      if (!p.has_value()) {
        *exit_code = ReportError(p.error());
        return;
      }
      s["parameters"][p->first] = p->second;
    }
    if (!a->algorithm.empty()) s["algorithm"] = a->algorithm;
    if (a->sweep_seed >= 0) s["seed"] = a->sweep_seed;
    if (!a->metric.empty()) s["metric"] = a->metric;
    if (!a->direction.empty()) s["direction"] = a->direction;
    if (a->max_trials > 0) s["budget"]["max_trials"] = a->max_trials;
    if (a->max_seconds >= 0) s["budget"]["max_seconds"] = a->max_seconds;
    if (a->parallel > 0) s["budget"]["parallel_trials"] = a->parallel;
    if (!a->scheduler.empty()) s["scheduler"]["type"] = a->scheduler;
    if (a->min_epochs > 0) s["scheduler"]["min_epochs"] = a->min_epochs;
    if (a->reduction_factor > 0) s["scheduler"]["reduction_factor"] = a->reduction_factor;
    *exit_code = WithClient(o, [&](ApiClient& c) {
      auto t = c.Post("/api/v1/ml/nlp/train/sweep", body);
      if (!t.has_value()) return ReportError(t.error());
      const std::string id = (*t)["task_id"];
      if (!a->train.follow) {
        if (o.json) PrintJson(*t); else std::cout << id << "\n";
        return kExitOk;
      }
      int rc = WaitForTask(c, id, 0, o.json);
      if (o.json) return rc;
      auto full = c.Get("/api/v1/tasks/" + id);
      if (!full.has_value() || !full->contains("table")) return rc;
      const json& table = (*full)["table"];
      std::vector<std::string> header;
      for (json col : table["columns"]) {
        std::string name = col.get<std::string>();
        std::transform(name.begin(), name.end(), name.begin(), [](unsigned char ch) { return std::toupper(ch); });
        header.push_back(name);
      }
      std::vector<std::vector<std::string>> rows;
      for (json row : table["rows"]) {
        std::vector<std::string> cells;
        for (json v : row) {
          if (v.is_number_float()) {
            char f[32];
            std::snprintf(f, sizeof(f), "%.4g", v.get<double>());
            cells.emplace_back(f);
          } else {
            cells.push_back(v.is_string() ? v.get<std::string>() : v.is_null() ? "-" : v.dump());
          }
        }
        rows.push_back(std::move(cells));
      }
      PrintTable(header, rows);
      const json& best = (*full)["best"];
      std::cout << "best: trial " << Str(best, "trial") << ", " << Str(*full, "metric") << " " << Str(best, "metric")
                << "; model saved to " << Str(best["model"], "path") << "\n";
      if (full->contains("catalog")) std::cout << "registered as " << Str((*full)["catalog"], "reference") << "\n";
      return rc;
    });
  });
}

void PrintDeployments(const json& list) {
  std::vector<std::vector<std::string>> rows;
  for (json d : list) {
    std::string serving = Str(d, "active_version");
    if (d.contains("canary")) serving += " (+" + Str(d["canary"], "version") + " at " + Str(d["canary"], "percent") + "%)";
    std::string model = "-", error = d.value("error", "");
    for (json v : d.value("versions", json::array())) {
      model = Str(v["model"], "path");
      if (v.value("status", "") == "failed") error = v.value("error", "");
    }
    rows.push_back({Str(d, "name"), Str(d, "status"), serving, model, error.empty() ? "-" : error});
  }
  PrintTable({"NAME", "STATUS", "SERVING", "MODEL", "ERROR"}, rows);
}

void AddServeCommands(CLI::App& app, ClientOptions& o, int* exit_code) {
  struct DeployArgs {
    std::string name, model, tokenizer, objective, version, device, dtype;
    int64_t canary = 0, max_batch_tokens = 0, max_delay_us = -1, max_queue = 0;
    bool wait = false;
    int gpus = -1;
    std::vector<std::string> labels;
  };
  auto a = std::make_shared<DeployArgs>();
  auto* deploy = app.add_subcommand(
      "deploy", "Deploy a model (or a new version of a deployment) for serving; --wait blocks until it is ready");
  deploy->add_option("name", a->name, "Deployment name (what /v2/models/{name}/infer serves)")->required();
  deploy->add_option("--model", a->model, "Model directory (object key), or catalog://<name>[/<n>|@<alias>] (an alias is followed)")->required();
  deploy->add_option("--objective", a->objective,
                     "text-classification, token-classification, masked-lm, causal-lm, no-objective or sentence-embedding (default: what the "
                     "model's config.json names)")
      ->check(CLI::IsMember({"text-classification", "token-classification", "masked-lm", "causal-lm", "no-objective",
                             "sentence-embedding"}));
  deploy->add_option("--tokenizer", a->tokenizer, "Tokenizer (object key; default: the model's)");
  deploy->add_option("--version", a->version, "Version name (default: the next number)");
  deploy->add_option("--device", a->device, "cpu, cuda or cuda:N (default: the server's)");
  deploy->add_option("--dtype", a->dtype, "float32 or bfloat16 (default: the server's)");
  deploy->add_option("--canary", a->canary, "The new version takes this percent of the traffic until promoted")
      ->check(CLI::Range(1, 100));
  deploy->add_option("--max-batch-tokens", a->max_batch_tokens, "Padded tokens per forward pass (default 8192)");
  deploy->add_option("--max-delay-us", a->max_delay_us, "Longest wait for a batch to fill (default 0: run when the model is free)");
  deploy->add_option("--max-queue", a->max_queue, "Inputs waiting at most before 429 (default 2048)");
  deploy->add_option("--gpus", a->gpus, "Load it only on servers with at least this many GPUs (resources.gpus)")
      ->check(CLI::Range(0, 64));
  deploy->add_option("--labels", a->labels,
                     "Load it only on servers with all these capability labels, comma-separated (resources.labels); "
                     "the other servers hand its requests over")
      ->delimiter(',');
  deploy->add_flag("--wait", a->wait, "Wait until the version is ready (exit 1 if it fails to load)");
  deploy->callback([&o, exit_code, a] {
    json body = {{"name", a->name}, {"model", {{"path", a->model}}}};
    if (!a->objective.empty()) body["model"]["objective"] = a->objective;
    if (!a->tokenizer.empty()) body["tokenizer"] = {{"path", a->tokenizer}};
    if (!a->version.empty()) body["version"] = a->version;
    if (!a->device.empty()) body["device"] = a->device;
    if (!a->dtype.empty()) body["dtype"] = a->dtype;
    if (a->canary > 0) body["canary_percent"] = a->canary;
    if (a->max_batch_tokens > 0) body["batching"]["max_batch_tokens"] = a->max_batch_tokens;
    if (a->max_delay_us >= 0) body["batching"]["max_delay_us"] = a->max_delay_us;
    if (a->max_queue > 0) body["batching"]["max_queue"] = a->max_queue;
    if (a->gpus >= 0) body["resources"]["gpus"] = a->gpus;
    if (!a->labels.empty()) body["resources"]["labels"] = a->labels;
    *exit_code = WithClient(o, [&](ApiClient& c) {
      auto d = c.Post("/api/v1/deployments", body);
      if (!d.has_value()) return ReportError(d.error());
      if (!d->is_object() || !d->contains("versions") || !(*d)["versions"].is_array() || (*d)["versions"].empty())
        return ReportError(Status(StatusCode::kInternal, "the server's answer names no version of the deployment"));
      const std::string version = (*d)["versions"].back().at("version");
      json view = *d;
      while (a->wait) {
        const json* mine = nullptr;
        for (auto& v : view["versions"])  // non-const: a missing member reads as null, never out of bounds
          if (v["version"] == version) mine = &v;
        if (mine == nullptr) break;  // retired: a newer version serves
        if ((*mine)["status"] != "loading" && (*mine)["status"] != "pending") break;
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        auto next = c.Get("/api/v1/deployments/" + client::UrlEncode(a->name));
        if (!next.has_value()) return ReportError(next.error());
        view = *next;
      }
      if (o.json) {
        PrintJson(view);
      } else {
        std::cout << "deployment " << a->name << " version " << version << ": ";
        std::string status = "loading";
        for (json v : view["versions"])
          if (v["version"] == version) status = v["status"];
        std::cout << status << "\n";
        for (json v : view["versions"])
          if (v["version"] == version && v.contains("error")) std::cout << "error: " << Str(v, "error") << "\n";
      }
      for (json v : view["versions"])
        if (v["version"] == version && v["status"] == "failed") return kExitFailed;
      return kExitOk;
    });
  });

  auto undeploy_name = std::make_shared<std::string>();
  auto* undeploy = app.add_subcommand("undeploy", "Stop serving a deployment and unload its models");
  undeploy->add_option("name", *undeploy_name, "Deployment name")->required();
  undeploy->callback([&o, exit_code, undeploy_name] {
    *exit_code = WithClient(o, [&](ApiClient& c) {
      auto r = c.Delete("/api/v1/deployments/" + client::UrlEncode(*undeploy_name));
      if (!r.has_value()) return ReportError(r.error());
      if (o.json) PrintJson(*r); else std::cout << "undeployed " << *undeploy_name << "\n";
      return kExitOk;
    });
  });

  struct ListArgs {
    std::string name, action;
  };
  auto l = std::make_shared<ListArgs>();
  auto* list = app.add_subcommand(
      "deployments", "List deployments (or show one, promote or roll back its canary)");
  list->add_option("name", l->name, "Show this deployment");
  list->add_option("action", l->action, "promote: the canary takes all traffic; rollback: drop the canary")
      ->check(CLI::IsMember({"promote", "rollback"}));
  list->callback([&o, exit_code, l] {
    *exit_code = WithClient(o, [&](ApiClient& c) {
      Result<json> r = l->name.empty() ? c.Get("/api/v1/deployments")
                       : l->action.empty()
                           ? c.Get("/api/v1/deployments/" + client::UrlEncode(l->name))
                           : c.Post("/api/v1/deployments/" + client::UrlEncode(l->name) + "/" + l->action, json::object());
      if (!r.has_value()) return ReportError(r.error());
      if (o.json || (!l->name.empty() && l->action.empty())) {
        PrintJson(*r);
      } else {
        PrintDeployments(l->name.empty() ? (*r)["deployments"] : json::array({*r}));
      }
      return kExitOk;
    });
  });

  struct InferArgs {
    std::string name, version;
    std::vector<std::string> texts, pairs, contexts;
    int64_t top_k = 0;
  };
  auto i = std::make_shared<InferArgs>();
  auto* infer = app.add_subcommand(
      "infer", "Run texts through a deployment (Open Inference Protocol v2); one line per text");
  infer->add_option("name", i->name, "Deployment name")->required();
  infer->add_option("texts", i->texts, "Texts, or questions with --context (default: one per line from stdin)");
  infer->add_option("--pair", i->pairs,
                    "Each text's second text (next-sentence prediction, pair classification); once per text");
  infer->add_option("--context", i->contexts, "Question answering: each question's context; once per question");
  infer->add_option("--version", i->version, "A specific version");
  infer->add_option("--top-k", i->top_k, "Classification: the k best labels; fill-mask: k candidates");
  infer->callback([&o, exit_code, i] {
    std::vector<std::string> texts = i->texts;
    if (texts.empty()) {
      for (std::string line; std::getline(std::cin, line);)
        if (!line.empty()) texts.push_back(line);
    }
    auto bytes = [](const char* name, const std::vector<std::string>& data) {
      return json{{"name", name}, {"datatype", "BYTES"}, {"shape", {data.size()}}, {"data", data}};
    };
    const bool questions = !i->contexts.empty();
    json body = {{"inputs", json::array({bytes(questions ? "question" : "text", texts)})}};
    if (!i->pairs.empty()) body["inputs"].push_back(bytes("pair_text", i->pairs));
    if (questions) body["inputs"].push_back(bytes("context", i->contexts));
    if (i->top_k > 0) body["parameters"]["top_k"] = i->top_k;
    std::string path = "/v2/models/" + client::UrlEncode(i->name);
    if (!i->version.empty()) path += "/versions/" + client::UrlEncode(i->version);
    *exit_code = WithClient(o, [&](ApiClient& c) {
      auto r = c.Post(path + "/infer", body);
      if (!r.has_value()) return ReportError(r.error());
      if (o.json) {
        PrintJson(*r);
        return kExitOk;
      }
      std::map<std::string, const json*> out;
      for (const auto& t : (*r)["outputs"]) out[t.at("name").get<std::string>()] = &t;
      // One value of an output (checked: an answer without it is an error, not a crash).
      auto cell = [&](const char* name, size_t k) -> const json& {
        auto it = out.find(name);
        if (it == out.end()) throw std::runtime_error(std::string("the answer has no output '") + name + "'");
        return it->second->at("data").at(k);
      };
      std::vector<std::vector<std::string>> rows;
      for (size_t k = 0; k < texts.size(); ++k) {
        std::string result;
        if (out.count("label")) {
          char score[32];
          std::snprintf(score, sizeof(score), "%.4f", cell("score", k).get<double>());
          result = cell("label", k).get<std::string>() + " " + score;
        } else if (out.count("sequence")) {
          result = cell("sequence", k).get<std::string>();
        } else if (out.count("embedding")) {
          const int64_t dim = out.at("embedding")->at("shape").at(1);
          result = "embedding of " + std::to_string(dim) + " floats";
        } else if (out.count("is_next")) {
          char score[32];
          std::snprintf(score, sizeof(score), "%.4f", cell("score", k).get<double>());
          result = std::string(cell("is_next", k).get<bool>() ? "is next " : "not next ") + score;
        } else if (out.count("answer")) {
          char score[32];
          std::snprintf(score, sizeof(score), "%.4f", cell("score", k).get<double>());
          result = "\"" + cell("answer", k).get<std::string>() + "\" " + score + " [" +
                   std::to_string(cell("start", k).get<int64_t>()) + ", " +
                   std::to_string(cell("end", k).get<int64_t>()) + ")";
        } else if (out.count("entities")) {
          const json entities = json::parse(cell("entities", k).get<std::string>(), nullptr, false);
          for (const auto& e : entities.is_array() ? entities : json::array())
            result += (result.empty() ? "" : ", ") + e.value("word", "") + "/" + e.value("entity_group", "");
        } else if (out.count("generated_text")) {
          result = cell("generated_text", k).get<std::string>();
        }
        rows.push_back({texts[k], result});
      }
      PrintTable({questions ? "QUESTION" : "TEXT", "RESULT (version " + Str(*r, "model_version") + ")"}, rows);
      return kExitOk;
    });
  });
}

}  // namespace

void AddClientCommands(CLI::App& app, ClientOptions& o, int* exit_code) {
  AddTaskCommands(app, o, exit_code);
  AddObjectCommands(app, o, exit_code);
  AddDatasetCommands(app, o, exit_code);
  AddTrainCommand(app, o, exit_code);
  AddSweepCommand(app, o, exit_code);
  AddServeCommands(app, o, exit_code);
  AddSearchCommands(app, o, exit_code);
  AddAccountCommands(app, o, exit_code);
  AddCatalogCommands(app, o, exit_code);
}

}  // namespace mlaas::cli
