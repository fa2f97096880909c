#include "cli/model_commands.h"

#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <optional>

#include "cli/output.h"
#include "cli/client_commands.h"
#include "client/api_client.h"
#include "common/file_util.h"
#include "common/text.h"
#include "nn/config.h"
#include "nn/init_model.h"
#include "predict/nlp_predictor.h"
#include "predict/servable_model.h"
#include "storage/storage_registry.h"

namespace mlaas::cli {

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

struct InitArgs {
  std::string preset, config, objective, labels, tokenizer, output;
  uint64_t seed = 42;
  int64_t channels = 0, image_size = 0;
};

int Init(const InitArgs& a, bool as_json) {
  nn::InitModelSpec spec;
  spec.preset = a.preset;
  spec.config_file = a.config;
  spec.objective = a.objective;
  for (const auto& l : Split(a.labels, ',')) {
    if (!Trim(l).empty()) spec.labels.emplace_back(Trim(l));
  }
  spec.tokenizer = a.tokenizer;
  spec.output = a.output;
  spec.seed = a.seed;
  spec.channels = a.channels;
  spec.image_size = a.image_size;
  auto r = nn::InitModelDirectory(spec);
  if (!r.has_value()) return ReportError(r.error());
  if (as_json) {
    PrintJson(*r);
  } else if (r->contains("image_size")) {
    std::printf("wrote %s: %s image classifier, %lld x %lld x %lld input, %zu labels, %.2fM parameters\n",
                a.output.c_str(), (*r)["model_type"].get<std::string>().c_str(), (*r)["num_channels"].get<long long>(),
                (*r)["image_size"].get<long long>(), (*r)["image_size"].get<long long>(), (*r)["labels"].size(),
                (*r)["parameters"].get<double>() / 1e6);
  } else {
    std::printf("wrote %s: %s (%s), %lld layers, hidden %lld, %.1fM parameters, vocabulary %lld\n",
                a.output.c_str(), (*r)["architecture"].get<std::string>().c_str(),
                (*r)["model_type"].get<std::string>().c_str(), (*r)["layers"].get<long long>(),
                (*r)["hidden_size"].get<long long>(), (*r)["parameters"].get<double>() / 1e6,
                (*r)["vocab_size"].get<long long>());
  }
  return kExitOk;
}

struct PredictArgs {
  std::string model, tokenizer, objective, input, pooling, device, storage_type = "local", dtype = "float32";
  std::vector<std::string> texts, images;
  int top_k = 0;
  bool normalize = false, remote = false;
  // causal-lm generation (unset: the server's defaults)
  std::optional<int64_t> max_new_tokens;
  std::optional<double> temperature, top_p;
  std::optional<int64_t> seed;
  std::vector<std::string> stop;
  bool sample = false;
  std::string aggregation;  // token-classification
  std::vector<std::string> pairs;  // next-sentence-prediction (and classification of pairs): pair_text
  std::vector<std::string> questions, contexts;  // question-answering
  int threads = 0;
  size_t batch_size = 32;
};

// The objective config.json names (an image model_type; architectures: "BertForMaskedLM" ->
// masked-lm).
Result<std::string> ObjectiveOf(const fs::path& model_dir) {
  MLAAS_ASSIGN_OR_RETURN(std::string text, ReadFile(model_dir / "config.json", 16u << 20));
  auto o = predict::ObjectiveOfConfigJson(text);
  if (!o) return InvalidArgument("config.json does not name the model's objective: pass --objective", "objective");
  return std::string(ObjectiveName(*o));
}

std::string Short(const std::string& s, size_t n = 48) {
  return s.size() <= n ? s : std::string(Utf8Prefix(s, n - 3)) + "...";
}

void PrintHuman(const std::string& objective, const std::vector<std::string>& texts, const json& predictions) {
  if (objective == "causal-lm") {  // each text whole: the prompt and its continuation
    for (size_t i = 0; i < texts.size(); ++i) {
      const json& p = predictions[i];
      std::cout << p["generated_text"].get<std::string>() << "\n";
      std::cerr << "(" << p["new_tokens"] << " new tokens, " << p["finish_reason"].get<std::string>() << ")\n";
    }
    return;
  }
  std::vector<std::vector<std::string>> rows;
  char buf[64];
  for (size_t i = 0; i < texts.size(); ++i) {
    const json& p = predictions[i];
    if (objective == "text-classification" || objective == "image-classification") {
      std::snprintf(buf, sizeof buf, "%.4f", p["score"].get<double>());
      std::string others;
      for (json e : p.value("top_k", json::array())) {
        std::snprintf(buf + 32, 32, "%.3f", e["score"].get<double>());
        others += (others.empty() ? "" : ", ") + e["label"].get<std::string>() + " " + (buf + 32);
      }
      rows.push_back({Short(texts[i]), p["label"].get<std::string>(), buf, others});
    } else if (objective == "question-answering") {
      std::snprintf(buf, sizeof buf, "%.4f", p["score"].get<double>());
      rows.push_back({Short(texts[i]), p["answer"].get<std::string>(), buf,
                      "[" + std::to_string(p["start"].get<long long>()) + ", " + std::to_string(p["end"].get<long long>()) + ")"});
    } else if (objective == "next-sentence-prediction") {
      std::snprintf(buf, sizeof buf, "%.4f", p["score"].get<double>());
      rows.push_back({Short(texts[i]), p["is_next"].get<bool>() ? "yes" : "no", buf});
    } else if (objective == "token-classification") {
      std::string entities;
      for (json e : p) {
        std::snprintf(buf, sizeof buf, " %.3f [%lld, %lld)", e["score"].get<double>(), e["start"].get<long long>(),
                      e["end"].get<long long>());
        entities += (entities.empty() ? "" : " | ") + e.value("entity_group", e.value("entity", std::string())) +
                    " '" + e["word"].get<std::string>() + "'" + buf;
      }
      rows.push_back({Short(texts[i]), std::to_string(p.size()), entities});
    } else if (objective == "masked-lm") {
      std::string candidates;
      for (json m : p["masks"]) {
        std::string one;
        for (json c : m["candidates"]) {
          std::snprintf(buf, sizeof buf, "%.3f", c["score"].get<double>());
          one += (one.empty() ? "" : " ") + c["token"].get<std::string>() + "(" + buf + ")";
        }
        candidates += (candidates.empty() ? "" : " | ") + one;
      }
      rows.push_back({Short(texts[i]), p["sequence"].get<std::string>(), candidates});
    } else {
      const json& e = p["embedding"];
      double norm = 0;
      std::string head;
      for (size_t j = 0; j < e.size(); ++j) {
        norm += e[j].get<double>() * e[j].get<double>();
        if (j < 4) {
          std::snprintf(buf, sizeof buf, "%.4f", e[j].get<double>());
          head += (head.empty() ? "" : " ") + std::string(buf);
        }
      }
      std::snprintf(buf, sizeof buf, "%.4f", std::sqrt(norm));
      rows.push_back({Short(texts[i]), std::to_string(e.size()), buf, head + " ..."});
    }
  }
  if (objective == "text-classification") {
    PrintTable({"TEXT", "LABEL", "SCORE", "TOP_K"}, rows);
  } else if (objective == "image-classification") {
    PrintTable({"IMAGE", "LABEL", "SCORE", "TOP_K"}, rows);
  } else if (objective == "masked-lm") {
    PrintTable({"TEXT", "FILLED", "CANDIDATES"}, rows);
  } else if (objective == "next-sentence-prediction") {
    PrintTable({"TEXT", "IS_NEXT", "SCORE"}, rows);
  } else if (objective == "question-answering") {
    PrintTable({"QUESTION", "ANSWER", "SCORE", "SPAN"}, rows);
  } else if (objective == "token-classification") {
    PrintTable({"TEXT", "N", "ENTITIES (TYPE 'WORD' SCORE [START, END))"}, rows);
  } else {
    PrintTable({"TEXT", "DIM", "NORM", "EMBEDDING"}, rows);
  }
}

int Predict(PredictArgs a, const ClientOptions& client) {
  std::vector<std::string> texts = a.texts;
  if (!a.input.empty()) {
    std::ifstream in(a.input, std::ios::binary);
    if (!in) return ReportError(InvalidArgument("cannot read " + a.input, "input"));
    std::string line;
    while (std::getline(in, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      texts.push_back(std::move(line));
    }
  }
  if (!a.questions.empty()) {  // question-answering: the questions are the inputs, each with its context
    if (!texts.empty()) return ReportError(InvalidArgument("give --question/--context or texts, not both", "question"));
    if (a.contexts.size() != a.questions.size())
      return ReportError(InvalidArgument("give one --context per --question", "context"));
    texts = a.questions;
  }
  const bool images = !a.images.empty();
  if (images && !texts.empty()) return ReportError(InvalidArgument("give texts or images, not both", "image"));
  if (texts.empty() && !images)
    return ReportError(InvalidArgument("no texts: give --text or --input (or --image, or --question)", "text"));
  if (a.objective.empty() && !a.remote) {  // the server reads it from config.json itself
    auto o = ObjectiveOf(a.model);
    if (!o.has_value()) return ReportError(o.error());
    a.objective = *o;
  }
  json options = json::object();
  if (a.top_k > 0) options["top_k"] = a.top_k;
  if (!a.pooling.empty()) options["pooling"] = a.pooling;
  if (a.normalize) options["normalize"] = true;
  if (!a.device.empty()) options["device"] = a.device;
  if (a.max_new_tokens) options["max_new_tokens"] = *a.max_new_tokens;
  if (a.temperature) options["temperature"] = *a.temperature;
  if (a.top_p) options["top_p"] = *a.top_p;
  if (a.seed) options["seed"] = *a.seed;
  if (!a.stop.empty()) options["stop"] = a.stop;
  if (a.sample) options["do_sample"] = true;
  if (!a.aggregation.empty()) options["aggregation_strategy"] = a.aggregation;
  if (!a.pairs.empty() && a.pairs.size() != texts.size())
    return ReportError(InvalidArgument("give one --pair per --text (" + std::to_string(texts.size()) + ")", "pair"));

  std::unique_ptr<predict::NlpPredictor> local;
  storage::StorageRegistry no_storage;
  std::unique_ptr<client::ApiClient> http;
  if (a.remote) {
    auto c = MakeClient(client);
    if (!c.has_value()) return ReportError(c.error());
    http = std::move(*c);
  } else {
    predict::PredictorOptions po;
    po.threads = a.threads;
    po.max_batch = a.batch_size;
    po.device = a.device.empty() ? "cpu" : a.device;
    po.dtype = a.dtype;
    local = std::make_unique<predict::NlpPredictor>(no_storage, po);
  }
  // Requests of at most 1024 texts, or of images up to 64 and 8 MiB of files (within the API's
  // body limit once base64), printed as they come.
  const std::vector<std::string>& inputs = images ? a.images : texts;
  for (size_t start = 0, end = 0; start < inputs.size(); start = end) {
    json input = options;
    if (images) {
      input["images"] = json::array();
      uint64_t bytes_in = 0;
      for (end = start; end < inputs.size() && end - start < 64; ++end) {
        auto bytes = ReadFile(inputs[end], 32u << 20);
        if (!bytes.has_value()) return ReportError(InvalidArgument(inputs[end] + ": " + bytes.error().message(), "image"));
        if (end > start && bytes_in + bytes->size() > (8u << 20)) break;
        bytes_in += bytes->size();
        input["images"].push_back(Base64UrlEncode(*bytes));
      }
    } else {
      end = std::min(inputs.size(), start + 1024);
    }
    std::vector<std::string> part(inputs.begin() + start, inputs.begin() + end);
    if (!a.questions.empty()) {
      input["question"] = part;
      input["context"] = std::vector<std::string>(a.contexts.begin() + start, a.contexts.begin() + end);
    } else if (!images) {
      input["input_text"] = part;
      if (!a.pairs.empty()) input["pair_text"] = std::vector<std::string>(a.pairs.begin() + start, a.pairs.begin() + end);
    }
    Result<json> r = InvalidArgument("unreachable");
    if (a.remote) {
      json body = {{"model", {{"path", a.model}, {"storage_type", a.storage_type}}}, {"predict_input", input}};
      if (!a.objective.empty()) body["model"]["objective"] = a.objective;
      if (!a.tokenizer.empty() && !images) body["tokenizer"] = {{"path", a.tokenizer}, {"storage_type", a.storage_type}};
      r = http->PostRetrying(images ? "/api/v1/ml/cv/predict" : "/api/v1/ml/nlp/predict", body, WaitNotice);
    } else {
      r = local->PredictLocal(a.model, a.tokenizer.empty() ? std::nullopt : std::optional<fs::path>(a.tokenizer),
                              a.objective, input);
    }
    if (!r.has_value()) return ReportError(r.error());
    if (client.json) {
      for (size_t i = 0; i < part.size(); ++i) {
        json line = {{images ? "image" : "text", part[i]}};
        const json& p = (*r)["predictions"][i];
        if (p.is_object()) {
          line.update(p);
        } else {
          line["entities"] = p;  // token-classification: a list per text
        }
        std::cout << line.dump(-1, ' ', false, json::error_handler_t::replace) << "\n";
      }
    } else {
      PrintHuman(a.objective.empty() ? (*r)["model"].value("objective", "") : a.objective, part, (*r)["predictions"]);
      const json& t = (*r)["timing_ms"];
      if (images) {
        std::fprintf(stderr, "%zu images: decode %.1f ms, forward %.1f ms, post-process %.1f ms\n", part.size(),
                     t["decode"].get<double>(), t["forward"].get<double>(), t["postprocess"].get<double>());
      } else {
        std::fprintf(stderr, "%zu texts, %lld tokens: tokenize %.1f ms, forward %.1f ms, post-process %.1f ms\n",
                     part.size(), (*r)["tokens"].get<long long>(), t["tokenize"].get<double>(),
                     t["forward"].get<double>(), t["postprocess"].get<double>());
      }
    }
  }
  return kExitOk;
}

// A model source as the command line names it: hf://org/name[@revision], s3://bucket/key, or a
// key of the server's store; the request block it becomes.
Result<json> SourceBlock(const std::string& source, const std::string& revision) {
  if (StartsWith(source, "hf://")) {
    std::string repo = source.substr(5);
    std::string rev = revision;
    if (const size_t at = repo.find('@'); at != std::string::npos) {
      if (!rev.empty()) return InvalidArgument("give the revision once: in the source (@rev) or with --revision", "source");
      rev = repo.substr(at + 1);
      repo.erase(at);
    }
    json block = {{"path", repo}, {"storage_type", "hugging_face_hub"}};
    if (!rev.empty()) block["revision"] = rev;
    return block;
  }
  if (!revision.empty()) return InvalidArgument("--revision is for hf:// sources", "revision");
  if (StartsWith(source, "s3://")) return json{{"path", source}, {"storage_type", "s3"}};
  return json{{"path", source}, {"storage_type", "local"}};
}

}  // namespace

void AddModelCommands(CLI::App& app, ClientOptions& client, int* exit_code) {
  auto* model = app.add_subcommand("model", "Create model directories locally, or import pretrained ones into the server");
  model->require_subcommand(1);
  auto init_args = std::make_shared<InitArgs>();
  auto* init = model->add_subcommand(
      "init", "Write a new model directory (config.json, model.safetensors, tokenizer) from a preset or a "
              "Hugging Face config, initialised as transformers does, sized for the tokenizer");
  std::string presets;
  for (const auto& p : nn::PresetNames()) presets += (presets.empty() ? "" : ", ") + p;
  presets += "; image classifiers (--objective image-classification): mlp, cnn-small, resnet18, resnet34";
  auto* preset = init->add_option("--preset", init_args->preset, "Built-in shape: " + presets);
  auto* config = init->add_option("--config", init_args->config,
                                  "A Hugging Face config.json (bert, distilbert, roberta, longformer, gpt2)")
                     ->check(CLI::ExistingFile);
  preset->excludes(config);
  init->add_option("--objective", init_args->objective,
                   "text-classification, token-classification, masked-lm, causal-lm, no-objective or "
                   "image-classification (default: causal-lm for gpt2, masked-lm for the encoders)")
      ->check(CLI::IsMember({"text-classification", "token-classification", "next-sentence-prediction",
                             "question-answering", "masked-lm", "causal-lm", "no-objective", "image-classification"}));
  init->add_option("--labels", init_args->labels,
                   "Comma-separated class labels (text- and image-classification; token-classification: the tags)");
  init->add_option("--tokenizer", init_args->tokenizer,
                   "tokenizer.json, vocab.txt or a tokenizer directory (all but image-classification)");
  init->add_option("--channels", init_args->channels, "image-classification: 1 (gray) or 3 (RGB); default: the preset's")
      ->check(CLI::Range(1, 3));
  init->add_option("--image-size", init_args->image_size, "image-classification: input height and width (default: 224 "
                                                          "for resnets, 28 otherwise)")
      ->check(CLI::Range(8, 4096));
  init->add_option("--output", init_args->output, "Model directory to write")->required();
  init->add_option("--seed", init_args->seed, "Seed of the weight initialisation")->capture_default_str();
  init->callback([init_args, &client, exit_code, preset, config] {
    if (preset->count() + config->count() != 1) {
      std::cerr << "error: give --preset or --config\n";
      *exit_code = kExitUsage;
      return;
    }
    *exit_code = Init(*init_args, client.json);
  });

  struct ImportArgs {
    std::string source, output, revision;
    bool wait = false;
  };
  auto ia = std::make_shared<ImportArgs>();
  auto* import = model->add_subcommand(
      "import", "Import a pretrained model into the server's store (a task): from the Hugging Face Hub "
                "(hf://org/name[@revision]), S3 (s3://bucket/key) or another key; PyTorch checkpoints become "
                "safetensors, other frameworks' files are left out");
  import->add_option("source", ia->source, "hf://org/name[@revision], s3://bucket/key or a key of the server's store")
      ->required();
  import->add_option("--output", ia->output, "Where the model goes: a key of the server's store (or s3://bucket/key)")
      ->required();
  import->add_option("--revision", ia->revision, "hf:// sources: the branch, tag or commit (default main)");
  import->add_flag("--wait", ia->wait, "Wait for the task (a progress bar), then list what was imported");
  import->callback([ia, &client, exit_code] {
    *exit_code = WithClient(client, [&](client::ApiClient& c) {
      auto source = SourceBlock(ia->source, ia->revision);
      if (!source.has_value()) return ReportError(source.error());
      json save = {{"path", ia->output}, {"storage_type", StartsWith(ia->output, "s3://") ? "s3" : "local"}};
      auto t = c.Post("/api/v1/ml/models/import", {{"model", *source}, {"model_save", save}});
      if (!t.has_value()) return ReportError(t.error());
      const std::string id = (*t)["task_id"];
      if (!ia->wait) {
        if (client.json) PrintJson(*t); else std::cout << id << "\n";
        return kExitOk;
      }
      const int rc = WaitForTask(c, id, 0, client.json);
      if (rc != kExitOk || client.json) return rc;
      auto done = c.Get("/api/v1/tasks/" + id);
      if (!done.has_value() || !done->contains("model")) return rc;
      const json& m = (*done)["model"];
      std::cout << "imported " << m["files"].size() << " files into " << m["path"].get<std::string>() << "\n";
      for (json conv : m["converted"])
        std::cout << "  converted " << Join(conv["from"].get<std::vector<std::string>>(), ", ") << " -> "
                  << conv["to"].get<std::string>() << "\n";
      if (!m["skipped"].empty())
        std::cout << "  left out: " << Join(m["skipped"].get<std::vector<std::string>>(), ", ") << "\n";
      return rc;
    });
  });

  auto pa = std::make_shared<PredictArgs>();
  auto* predict = app.add_subcommand(
      "predict", "Predictions: text-classification labels, named entities (token-classification), fill-mask "
                 "candidates, embeddings, generated text (causal-lm), or image-classification labels (--image); "
                 "locally on a model directory, or on the server with --remote");
  predict->add_option("--model", pa->model, "Model directory (with --remote: its path in the server's storage)")
      ->required();
  predict->add_option("--tokenizer", pa->tokenizer, "Tokenizer file or directory (default: the model directory)");
  predict->add_option("--objective", pa->objective,
                      "text-classification, token-classification, masked-lm, causal-lm, no-objective or "
                      "image-classification (default: what config.json names)");
  predict->add_option("--text", pa->texts, "A text to predict (repeatable)");
  predict->add_option("--input", pa->input, "A file of texts, one per line")->check(CLI::ExistingFile);
  predict->add_option("--image", pa->images, "A PNG or JPEG image to classify (repeatable; image-classification)")
      ->check(CLI::ExistingFile);
  predict->add_option("--top-k", pa->top_k,
                      "Labels (classification), candidates per mask (fill-mask, default 5) or tokens sampled among "
                      "(causal-lm, default 50)")
      ->check(CLI::Range(1, 1000));
  predict->add_option("--max-new-tokens", pa->max_new_tokens, "causal-lm: tokens to generate at most (default 20)")
      ->check(CLI::Range(1, 4096));
  predict->add_option("--temperature", pa->temperature, "causal-lm: sample at this temperature (0: greedy)")
      ->check(CLI::Range(0.0, 100.0));
  predict->add_option("--top-p", pa->top_p, "causal-lm: nucleus sampling probability, in (0, 1]")
      ->check(CLI::Range(1e-9, 1.0));
  predict->add_option("--seed", pa->seed, "causal-lm: seed of the sampling (the same seed, the same text)")
      ->check(CLI::NonNegativeNumber);
  predict->add_option("--stop", pa->stop, "causal-lm: end a text after this string (repeatable)");
  predict->add_flag("--sample", pa->sample, "causal-lm: sample (default: greedy unless --temperature, --top-k or --top-p)");
  predict->add_option("--question", pa->questions, "question-answering: a question (repeatable, each with a --context)");
  predict->add_option("--context", pa->contexts, "question-answering: the context of each --question, in order");
  predict->add_option("--pair", pa->pairs,
                      "next-sentence-prediction (or a classifier of pairs): the second text of each --text, in order "
                      "(repeatable)");
  predict->add_option("--aggregation", pa->aggregation,
                      "token-classification: how tokens become entities: simple (default), first, average, max, or "
                      "none (every token)")
      ->check(CLI::IsMember({"none", "simple", "first", "average", "max"}));
  predict->add_option("--pooling", pa->pooling, "Embedding pooling: mean (default) or cls")
      ->check(CLI::IsMember({"mean", "cls"}));
  predict->add_flag("--normalize", pa->normalize, "L2-normalise embeddings");
  predict->add_option("--device", pa->device, "cpu, cuda or cuda:N");
  predict->add_option("--dtype", pa->dtype, "float32, or bfloat16 (local; faster on AVX512-BF16 CPUs)")
      ->check(CLI::IsMember({"float32", "bfloat16"}))
      ->capture_default_str();
  predict->add_option("--threads", pa->threads, "libtorch threads (local; 0: one per core)")
      ->check(CLI::Range(0, 1024));
  predict->add_option("--batch-size", pa->batch_size, "Texts or images per forward pass (local)")
      ->check(CLI::Range(size_t{1}, size_t{4096}))
      ->capture_default_str();
  predict->add_flag("--remote", pa->remote, "Send the request to the server (--server) instead of running locally");
  predict->add_option("--storage-type", pa->storage_type, "With --remote: where the model lives (local, s3, ...)")
      ->capture_default_str();
  predict->callback([pa, &client, exit_code] { *exit_code = Predict(*pa, client); });
}

}  // namespace mlaas::cli
