// `mlaas index` (build a vector store from a dataset: a task), `mlaas search` (query a saved
// store or a plain dataset: dense, lexical or hybrid) and `mlaas vector-store show|add|rm`.
#include <iostream>

#include "cli/client_commands.h"
#include "cli/output.h"
#include "client/api_client.h"
#include "common/file_util.h"
#include "common/text.h"

namespace mlaas::cli {

using client::ApiClient;
using nlohmann::json;

namespace {

// One line of a hit's text for a table.
std::string Snippet(const std::string& text, size_t width = 60) {
  std::string one;
  for (char c : text) one += (c == '\n' || c == '\r' || c == '\t') ? ' ' : c;
  return Utf8Cut(one, width);
}

// /api/v1/vector-stores/{path}{suffix}[?storage_type=]
std::string StorePath(const std::string& path, const std::string& storage_type, const std::string& suffix = "") {
  return "/api/v1/vector-stores/" + client::UrlEncode(path, /*keep_slash=*/true) + suffix +
         (storage_type.empty() ? "" : "?storage_type=" + client::UrlEncode(storage_type));
}

void AddIndexCommand(CLI::App& app, ClientOptions& o, int* exit_code) {
  struct Args {
    std::string model, tokenizer, dataset, save, text_column = "page_content", id_column, index = "Flat",
                                                  metric, pooling, objective = "no-objective";
    std::vector<std::string> metadata_columns;
    bool no_normalize = false, normalize = false, follow = false;
  };
  auto a = std::make_shared<Args>();
  auto* cmd = app.add_subcommand(
      "index", "Embed a dataset's documents and save them as a vector store on the server (a task)");
  cmd->add_option("--model", a->model, "Embedding model directory (object key)")->required();
  cmd->add_option("--objective", a->objective, "The model's objective: no-objective (default), sentence-embedding or masked-lm")
      ->check(CLI::IsMember({"no-objective", "sentence-embedding", "masked-lm"}));
  cmd->add_option("--tokenizer", a->tokenizer, "Tokenizer (object key; default: the model's)");
  cmd->add_option("--dataset", a->dataset, "Documents: CSV, TSV or JSON Lines (object key)")->required();
  cmd->add_option("--text-column", a->text_column, "Column of the document texts (default page_content)");
  cmd->add_option("--id-column", a->id_column, "Column of the document ids (default: the row number)");
  cmd->add_option("--metadata-columns", a->metadata_columns, "Columns kept as metadata (default: all the others)")
      ->delimiter(',');
  cmd->add_option("--save", a->save, "Where to write the vector store (object key)")->required();
  cmd->add_option("--index", a->index, "Flat (exact, default), IVF or HNSW")->check(CLI::IsMember({"Flat", "IVF", "HNSW"}));
  cmd->add_option("--metric", a->metric, "l2 or inner_product (default l2; inner_product for a model trained with similarity dot)")->check(CLI::IsMember({"l2", "inner_product"}));
  cmd->add_option("--pooling", a->pooling, "mean (default) or cls")->check(CLI::IsMember({"mean", "cls"}));
  auto* keep = cmd->add_flag("--no-normalize", a->no_normalize,
                             "Keep embeddings at their own length (the default for a model trained with similarity dot)");
  cmd->add_flag("--normalize", a->normalize, "Make embeddings unit length (the default, except for a dot model)")->excludes(keep);
  cmd->add_flag("--wait", a->follow, "Wait for the task: a progress bar, then its summary");
  cmd->add_flag("--follow", a->follow, "The former name of --wait")->group("");  // hidden: old scripts keep working
  cmd->callback([&o, exit_code, a] {
    json index = {{"type", a->index}};
    if (!a->metric.empty()) index["metric"] = a->metric;
    json body = {{"model", {{"path", a->model}, {"objective", a->objective}}},
                 {"dataset", {{"path", a->dataset}, {"loader_kwargs", {{"page_content_column", a->text_column}}}}},
                 {"vector_store_save", {{"path", a->save}, {"format", "vector_store"}, {"index", index}}}};
    if (!a->tokenizer.empty()) body["tokenizer"] = {{"path", a->tokenizer}};
    if (!a->id_column.empty()) body["dataset"]["loader_kwargs"]["id_column"] = a->id_column;
    if (!a->metadata_columns.empty()) body["dataset"]["loader_kwargs"]["metadata_columns"] = a->metadata_columns;
    if (!a->pooling.empty()) body["vector_store_save"]["pooling"] = a->pooling;
    if (a->no_normalize) body["vector_store_save"]["normalize"] = false;
    if (a->normalize) body["vector_store_save"]["normalize"] = true;
    *exit_code = WithClient(o, [&](ApiClient& c) {
      auto t = c.Post("/api/v1/ml/nlp/vector/index", body);
      if (!t.has_value()) return ReportError(t.error());
      const std::string id = (*t)["task_id"];
      if (!a->follow) {
        if (o.json) PrintJson(*t); else std::cout << id << "\n";
        return kExitOk;
      }
      const int rc = WaitForTask(c, id, 0, o.json);
      if (o.json || rc != kExitOk) return rc;
      if (auto full = c.Get("/api/v1/tasks/" + id); full.has_value()) {
        const json& r = *full;
        char line[256];
        std::snprintf(line, sizeof(line), "%lld documents, %lld tokens, %lld dimensions, %.1f docs/s\n",
                      static_cast<long long>(r.value("documents", 0)), static_cast<long long>(r.value("tokens", 0)),
                      static_cast<long long>(r.value("dimension", 0)), r.value("docs_per_second", 0.0));
        std::cout << line << "vector store saved to " << a->save << "\n";
      }
      return rc;
    });
  });
}

void AddSearchCommand(CLI::App& app, ClientOptions& o, int* exit_code) {
  struct Args {
    std::vector<std::string> queries, filters;
    std::string store, dataset, model, tokenizer, text_column, id_column, mode, fusion, objective = "no-objective";
    int64_t top_k = 4, candidates = 0;
    double dense_weight = -1;
  };
  auto a = std::make_shared<Args>();
  auto* cmd = app.add_subcommand(
      "search", "Find the documents closest to query texts, in a saved vector store or a plain dataset");
  cmd->add_option("queries", a->queries, "Query texts (default: one per line from stdin)");
  cmd->add_option("--store", a->store, "A vector store made by `mlaas index` (object key)");
  cmd->add_option("--dataset", a->dataset, "Or a plain dataset, embedded on its first search (object key)");
  cmd->add_option("--text-column", a->text_column, "--dataset: column of the document texts (default page_content)");
  cmd->add_option("--id-column", a->id_column, "--dataset: column of the document ids (default: the row number)");
  cmd->add_option("--model", a->model, "The embedding model (for a store: the one that built it)")->required();
  cmd->add_option("--objective", a->objective, "The model's objective (default no-objective)")
      ->check(CLI::IsMember({"no-objective", "sentence-embedding", "masked-lm"}));
  cmd->add_option("--tokenizer", a->tokenizer, "Tokenizer (object key; default: the model's)");
  cmd->add_option("-k,--top-k", a->top_k, "Documents per query (default 4)");
  cmd->add_option("--mode", a->mode, "dense (default), lexical (BM25) or hybrid (both, fused by rank)")
      ->check(CLI::IsMember({"dense", "lexical", "hybrid"}));
  cmd->add_option("--dense-weight", a->dense_weight, "Hybrid: the dense ranking's weight, 0..1 (default 0.5)");
  cmd->add_option("--fusion", a->fusion, "Hybrid: rrf (reciprocal rank, default) or linear (scaled scores)")
      ->check(CLI::IsMember({"rrf", "linear"}));
  cmd->add_option("--candidates", a->candidates, "Hybrid: how deep each ranking goes (default 100)");
  cmd->add_option("--filter", a->filters, "Only documents whose metadata FIELD equals VALUE (FIELD=VALUE; repeatable)")
      ->allow_extra_args(false);  // one FIELD=VALUE per --filter: the query texts stay positional
  cmd->callback([&o, exit_code, a] {
    if (a->store.empty() == a->dataset.empty()) {
      *exit_code = ReportError(InvalidArgument("give either --store or --dataset", "--store"));
      return;
    }
    std::vector<std::string> queries = a->queries;
    if (queries.empty())
      for (std::string line; std::getline(std::cin, line);)
        if (!Trim(line).empty()) queries.push_back(line);
    if (queries.empty()) {
      *exit_code = ReportError(InvalidArgument("no query texts (arguments or stdin lines)", "queries"));
      return;
    }
    json input = {{"input_text", queries}, {"top_k", a->top_k}};
    if (!a->mode.empty()) input["mode"] = a->mode;
    if (a->dense_weight >= 0) input["dense_weight"] = a->dense_weight;
    if (!a->fusion.empty()) input["fusion"] = a->fusion;
    if (a->candidates > 0) input["candidates"] = a->candidates;
    for (const auto& f : a->filters) {
      const auto eq = f.find('=');
      if (eq == std::string::npos || eq == 0) {
        *exit_code = ReportError(InvalidArgument("a filter is FIELD=VALUE, got '" + f + "'", "--filter"));
        return;
      }
      input["filter"][f.substr(0, eq)] = f.substr(eq + 1);
    }
    json body = {{"model", {{"path", a->model}, {"objective", a->objective}}}, {"search_input", input}};
    if (!a->tokenizer.empty()) body["tokenizer"] = {{"path", a->tokenizer}};
    std::string route = "/api/v1/ml/nlp/vector/search";
    if (!a->store.empty()) {
      body["dataset"] = {{"path", a->store}, {"format", "vector_store"}};
    } else {
      route = "/api/v1/ml/nlp/search";
      body["dataset"] = {{"path", a->dataset}};
      if (!a->text_column.empty()) body["dataset"]["loader_kwargs"]["page_content_column"] = a->text_column;
      if (!a->id_column.empty()) body["dataset"]["loader_kwargs"]["id_column"] = a->id_column;
    }
    *exit_code = WithClient(o, [&](ApiClient& c) {
      auto r = c.PostRetrying(route, body, WaitNotice);
      if (!r.has_value()) return ReportError(r.error());
      if (o.json) {
        PrintJson(*r);
        return kExitOk;
      }
      const auto& results = (*r)["results"];
      for (size_t q = 0; q < results.size() && q < queries.size(); ++q) {
        std::cout << (q ? "\n" : "") << "query: " << Snippet(queries[q], 100) << "\n";
        std::vector<std::vector<std::string>> rows;
        for (size_t i = 0; i < results[q].size(); ++i) {
          const json& h = results[q][i];
          char score[32];
          std::snprintf(score, sizeof(score), "%.4f", h.value("score", 0.0));
          rows.push_back({std::to_string(i + 1), score, h.value("id", std::string("-")),
                          Snippet(h.value("page_content", std::string()))});
        }
        PrintTable({"RANK", "SCORE (" + r->value("metric", std::string("l2")) + ")", "ID", "TEXT"}, rows);
      }
      return kExitOk;
    });
  });
}

void AddStoreCommands(CLI::App& app, ClientOptions& o, int* exit_code) {
  struct Args {
    std::string store, storage_type, file;
    std::vector<std::string> texts, ids;
  };
  auto a = std::make_shared<Args>();
  auto* group = app.add_subcommand("vector-store", "Inspect a saved vector store, add documents to it or remove them");
  group->require_subcommand(1);
  auto* show = group->add_subcommand("show", "Print a store's manifest: model, pooling, metric, dimension, count, index");
  auto* add = group->add_subcommand("add", "Embed documents with the store's model and add them (no rebuild)");
  auto* rm = group->add_subcommand("rm", "Remove documents by id");
  for (auto* sub : {show, add, rm}) {
    sub->add_option("store", a->store, "The store (object key)")->required();
    sub->add_option("--storage-type", a->storage_type, "local (default) or s3");
  }
  add->add_option("--file", a->file,
                  "JSON Lines of {\"id\"?, \"page_content\", \"metadata\"?} (or - for stdin)");
  add->add_option("--text", a->texts, "A document text (repeatable; ids are made up)")->allow_extra_args(false);
  rm->add_option("ids", a->ids, "Document ids")->required();

  show->callback([&o, exit_code, a] {
    *exit_code = WithClient(o, [&](ApiClient& c) {
      auto r = c.Get(StorePath(a->store, a->storage_type));
      if (!r.has_value()) return ReportError(r.error());
      if (o.json) {
        PrintJson(*r);
        return kExitOk;
      }
      const json& m = *r;
      PrintTable({"FIELD", "VALUE"},
                 {{"documents", m.value("count", json(0)).dump()},
                  {"dimension", m.value("dimension", json(0)).dump()},
                  {"metric", m.value("metric", std::string("-"))},
                  {"index", m.value("index", json::object()).dump()},
                  {"model", m.value("model", json::object()).value("path", std::string("-"))},
                  {"pooling", m.value("pooling", std::string("-"))},
                  {"normalize", m.value("normalize", json()).dump()},
                  {"updated", m.value("updated", std::string("-"))}});
      return kExitOk;
    });
  });
  add->callback([&o, exit_code, a] {
    json docs = json::array();
    for (const auto& t : a->texts) docs.push_back({{"page_content", t}});
    if (!a->file.empty()) {
      std::string text;
      if (a->file == "-") {
        text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
      } else {
        auto read = ReadFile(a->file, 1u << 30);
        if (!read.has_value()) {
          *exit_code = ReportError(read.error());
          return;
        }
        text = std::move(*read);
      }
      size_t line_no = 0;
      for (const auto& line : Split(text, '\n')) {
        ++line_no;
        if (Trim(line).empty()) continue;
        json d = json::parse(line, nullptr, false);
        if (!d.is_object()) {
          *exit_code = ReportError(InvalidArgument("line " + std::to_string(line_no) + " of " + a->file +
                                                       " is not a JSON object", "--file"));
          return;
        }
        docs.push_back(std::move(d));
      }
    }
    if (docs.empty()) {
      *exit_code = ReportError(InvalidArgument("no documents: give --file or --text", "--file"));
      return;
    }
    *exit_code = WithClient(o, [&](ApiClient& c) {
      auto r = c.Post(StorePath(a->store, a->storage_type, "/documents"), json{{"documents", docs}});
      if (!r.has_value()) return ReportError(r.error());
      if (o.json) {
        PrintJson(*r);
      } else {
        std::cout << "added " << r->value("added", 0) << " documents; " << r->value("count", 0) << " in the store\n";
      }
      return kExitOk;
    });
  });
  rm->callback([&o, exit_code, a] {
    *exit_code = WithClient(o, [&](ApiClient& c) {
      auto r = c.Call("DELETE", StorePath(a->store, a->storage_type, "/documents"), json{{"ids", a->ids}}.dump());
      if (!r.has_value()) return ReportError(r.error());
      if (r->status / 100 != 2) return ReportError(client::StatusFromResponse(*r));
      if (o.json) {
        PrintJson(r->body);
      } else {
        std::cout << "removed " << r->body.value("removed", 0) << " of " << a->ids.size() << " documents; "
                  << r->body.value("count", 0) << " left\n";
      }
      return kExitOk;
    });
  });
}

}  // namespace

void AddSearchCommands(CLI::App& app, ClientOptions& o, int* exit_code) {
  AddIndexCommand(app, o, exit_code);
  AddSearchCommand(app, o, exit_code);
  AddStoreCommands(app, o, exit_code);
}

}  // namespace mlaas::cli
