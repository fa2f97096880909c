#include "nlp_tasks/tokenizer_task.h"

#include <chrono>

#include "common/text.h"
#include "dataset/record_reader.h"
#include "tokenizers/trainer.h"

namespace mlaas::nlp_tasks {

using nlohmann::json;
using tokenizers::TokenizerKind;

namespace {

Result<tokenizers::TrainSpec> SpecFromParams(const json& t) {
  tokenizers::TrainSpec spec;
  std::string model = t.value("model", "wordpiece");
  if (model == "wordpiece") {
    spec.kind = TokenizerKind::kWordPiece;
  } else if (model == "bpe") {
    spec.kind = TokenizerKind::kBpe;
  } else {
    return InvalidArgument("unknown tokenizer model '" + model + "'", "tokenizer_train.model");
  }
  spec.trainer.vocab_size = t.value("vocab_size", size_t{30000});
  spec.trainer.min_frequency = t.value("min_frequency", uint64_t{0});
  if (t.contains("special_tokens")) spec.trainer.special_tokens = t["special_tokens"].get<std::vector<std::string>>();
  if (t.contains("limit_alphabet")) spec.trainer.limit_alphabet = t["limit_alphabet"].get<size_t>();
  spec.lowercase = t.value("lowercase", spec.kind == TokenizerKind::kWordPiece);
  return spec;
}

}  // namespace

tasks::TaskHandler MakeTrainTokenizerHandler(const storage::StorageRegistry& storage) {
  return [&storage](tasks::TaskContext& ctx) -> Result<json> {
    const auto t0 = std::chrono::steady_clock::now();
    const json& params = ctx.params();
    MLAAS_ASSIGN_OR_RETURN(tokenizers::TrainSpec spec,
                           SpecFromParams(params.value("tokenizer_train", json::object())));
    const json& ds = params.value("dataset", json::object());
    MLAAS_ASSIGN_OR_RETURN(storage::ObjectRef in, storage.Resolve(ds, "dataset"));
    MLAAS_ASSIGN_OR_RETURN(storage::ObjectRef out, storage.Resolve(params.value("model_save", json::object()), "model_save"));
    MLAAS_ASSIGN_OR_RETURN(dataset::ReaderOptions options, dataset::ReaderOptionsFromRequest(ds, in.key));
    // The text: page_content_column (as the search endpoints name it) or text_column (as training
    // and the SDK do); both naming different columns is an error.
    const json& lk = ds.value("loader_kwargs", json::object());
    const std::string page_column = lk.value("page_content_column", std::string());
    const std::string text_column = lk.value("text_column", std::string());
    if (!page_column.empty() && !text_column.empty() && page_column != text_column) {
      return InvalidArgument("page_content_column and text_column name different columns ('" + EscapeForLog(page_column, 80) +
                                 "', '" + EscapeForLog(text_column, 80) + "'): give one",
                             "dataset.loader_kwargs.text_column");
    }
    const std::string column_field =
        "dataset.loader_kwargs." + std::string(page_column.empty() && !text_column.empty() ? "text_column" : "page_content_column");
    const std::string column = !page_column.empty() ? page_column : !text_column.empty() ? text_column : "text";
    options.columns = {column};

    auto source = in.store->Open(in.key);
    if (!source.has_value()) return source.error().WithField("dataset.path");
    const uint64_t size = (*source)->info().size;
    auto reader = dataset::OpenRecordReader(std::move(source).value(), options);
    if (!reader.has_value()) {
      Status st = reader.error();
      // A column the data lacks names the column field; any other error (a malformed file) the path.
      const bool missing_column = st.message().rfind("column '", 0) == 0 && st.message().find("is not in the dataset") != std::string::npos;
      return st.WithField(missing_column ? column_field : "dataset.path");
    }
    ctx.Log("info", "counting words of column '" + column + "' in " + in.key);

    auto pipeline = tokenizers::TrainingPipeline(spec);
    tokenizers::WordCounter counter(*pipeline);
    dataset::Row row;
    uint64_t rows = 0;
    for (;;) {
      auto more = (*reader)->Next(row);
      if (!more.has_value()) return more.error().WithField("dataset.path");
      if (!*more) break;
      if (!row.missing[0]) {
        // Each value counts as one line of a text file, line ending included.
        if (Status st = counter.Add(row.values[0] + "\n"); !st.ok()) {
          return InvalidArgument("line " + std::to_string(row.line) + ": " + st.message(), "dataset.path");
        }
      }
      if (++rows % 2048 == 0) {
        MLAAS_RETURN_IF_ERROR(ctx.CheckCancelled());
        double f = size ? static_cast<double>((*reader)->bytes_read()) / static_cast<double>(size) : 0;
        ctx.ReportProgress({.fraction = 0.5 * f, .step = static_cast<int64_t>(rows),
                            .message = "counting words: " + std::to_string(rows) + " rows"});
      }
    }
    if (counter.counts().empty()) {
      return InvalidArgument("column '" + column + "' has no text to train on", "dataset.path");
    }
    ctx.Log("info", "training a " + std::string(spec.kind == TokenizerKind::kWordPiece ? "WordPiece" : "BPE") +
                        " vocabulary of " + std::to_string(spec.trainer.vocab_size) + " on " +
                        std::to_string(counter.counts().size()) + " distinct words");
    auto trained = tokenizers::BuildTrainedTokenizer(spec, counter, [&](double f) {
      ctx.ReportProgress({.fraction = 0.5 + 0.45 * f, .message = "merging pairs"});
      return !ctx.cancelled();
    });
    if (!trained.has_value()) {
      if (trained.error().code() == StatusCode::kCancelled) return ctx.CheckCancelled();
      return trained.error();
    }
    ctx.ReportProgress({.fraction = 0.96, .message = "measuring coverage and saving"});
    const auto coverage = tokenizers::MeasureCoverage(**trained, counter);

    json files = json::array();
    for (const auto& [name, content] : tokenizers::TokenizerFiles(**trained)) {
      const std::string key = out.key + "/" + name;
      MLAAS_RETURN_IF_ERROR(out.store->PutString(key, content).status().WithField("model_save.path"));
      files.push_back(key);
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const bool has_unk = spec.kind == TokenizerKind::kBpe ||
                         (*trained)->model().vocab().Find("[UNK]").has_value();
    if (!has_unk) {
      ctx.Log("warn", "no [UNK] among the special tokens: words with unseen characters cannot be encoded");
    }
    ctx.Log("info", "saved " + std::to_string(files.size()) + " files under " + out.key);
    json result = {
        {"tokenizer", {{"model", spec.kind == TokenizerKind::kWordPiece ? "wordpiece" : "bpe"},
                       {"vocab_size", (*trained)->VocabSize(true)},
                       {"special_tokens", spec.trainer.special_tokens},
                       {"path", out.key},
                       {"storage_type", out.store->storage_type()},
                       {"files", files}}},
        {"dataset", {{"path", in.key},
                     {"column", column},
                     {"rows", rows},
                     {"characters", counter.characters()},
                     {"words", coverage.words},
                     {"distinct_words", counter.counts().size()},
                     {"corpus_tokens", coverage.tokens}}},
        {"coverage", coverage.words ? static_cast<double>(coverage.known_words) / static_cast<double>(coverage.words) : 0.0},
        {"stats", {{"train_seconds", seconds}}}};
    return result;
  };
}

}  // namespace mlaas::nlp_tasks
