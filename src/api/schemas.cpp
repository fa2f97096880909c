#include "api/schemas.h"

namespace mlaas::api::schemas {

using nlohmann::json;

namespace {

json Str(const std::string& description, size_t max_length = 4096) {
  return {{"type", "string"}, {"minLength", 1}, {"maxLength", max_length},
          {"description", description}};
}

json Enum(const std::vector<std::string>& values, const std::string& description) {
  return {{"type", "string"}, {"enum", values}, {"description", description}};
}

json Int(int64_t min, int64_t max, const std::string& description) {
  return {{"type", "integer"}, {"minimum", min}, {"maximum", max}, {"description", description}};
}

json Num(double min, double max, const std::string& description) {
  return {{"type", "number"}, {"minimum", min}, {"maximum", max}, {"description", description}};
}

json StorageType(const std::vector<std::string>& allowed) {
  json s = Enum(allowed, "where `path` lives (default local: inside the server's data directory)");
  s["default"] = "local";
  return s;
}

}  // namespace

json Object(json properties, std::vector<std::string> required) {
  json s = {{"type", "object"}, {"additionalProperties", false}, {"properties", std::move(properties)}};
  if (!required.empty()) s["required"] = required;
  return s;
}

json Resources() {
  json label = {{"type", "string"}, {"pattern", "^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$"}};
  return Object({{"gpus", {{"type", "integer"}, {"minimum", 0}, {"maximum", 64},
                           {"description", "GPUs the worker must have (default 0)"}}},
                 {"labels", {{"type", "array"}, {"items", label}, {"maxItems", 16},
                             {"description", "capability labels the worker must all have (cpu, gpu, or its own "
                                             "--labels)"}}},
                 {"workers", {{"type", "integer"}, {"minimum", 1}, {"maximum", 1024},
                              {"description", "processes that train the task together, data-parallel (default 1): a "
                                              "group of `mlaas worker`s started with WORLD_SIZE of this size runs it"}}}},
                {});
}

json DeploymentResources() {
  json s = Resources();  // the same block, for servers instead of workers
  s["properties"].erase("workers");
  s["properties"]["gpus"]["description"] = "GPUs a server must have to load it (default 0)";
  s["properties"]["labels"]["description"] =
      "capability labels a server must all have to load it (cpu, gpu, or its own --labels); the other servers "
      "hand its requests over";
  return s;
}

json CatalogTarget() {
  json s = Object({{"model", Str("register the trained model as a new version of this catalog model (created, yours, "
                                 "when new)", 64)},
                   {"alias", Str("then point this alias at the new version (e.g. champion)", 64)},
                   {"visibility", Enum({"private", "public"}, "of a new catalog model (default private)")},
                   {"description", Str("of a new catalog model")}},
                  {"model"});
  s["description"] = "register the result in the catalog when the task succeeds (docs/catalog.md)";
  return s;
}

json Sweep() {
  json param = {{"type", "object"},
                {"description", "one searched field: choice (values), uniform or log_uniform (min, max: numbers), int (min, "
                                "max: integers, inclusive)"},
                {"properties",
                 {{"type", Enum({"choice", "uniform", "log_uniform", "log-uniform", "loguniform", "int"}, "how it is sampled")},
                  {"values", {{"type", "array"}, {"minItems", 1}, {"maxItems", 1000},
                              {"items", {{"type", {"number", "string", "boolean"}}}},
                              {"description", "a choice's values"}}},
                  {"min", {{"type", "number"}, {"description", "lower bound (log_uniform: above 0)"}}},
                  {"max", {{"type", "number"}, {"description", "upper bound"}}}}},
                {"required", {"type"}},
                {"additionalProperties", false}};
  json s = Object(
      {{"parameters", {{"type", "object"},
                       {"minProperties", 1},
                       {"maxProperties", 32},
                       {"additionalProperties", param},
                       {"description", "model_train fields to search, by dotted path: optimizer.init_lr, batch_size, "
                                       "optimizer.weight_decay_rate, ..."}}},
       {"algorithm", Enum({"random", "grid"}, "random search (default) or the grid of choice and int parameters")},
       {"seed", Int(0, 4294967295LL, "seed of the random search (default 0)")},
       {"metric", Str("the history metric to optimise (default: model_train.early_stopping.metric, else eval_loss)", 64)},
       {"direction", Enum({"minimize", "maximize"}, "default: minimize for losses and perplexity, else maximize")},
       {"budget", Object({{"max_trials", Int(1, 1000, "trials to run at most (default 10)")},
                          {"max_seconds", Num(0, 1e9, "stop the sweep, and its running trials, after this long (0: no limit)")},
                          {"parallel_trials", Int(1, 64, "trials queued or running at once (default 1)")}},
                         {})},
       {"scheduler", Object({{"type", Enum({"asha", "none"}, "asha (default): prune trials at rung epochs; none: run all")},
                             {"min_epochs", Int(1, 100000, "the first rung (default 1)")},
                             {"reduction_factor", Int(2, 100, "rungs at min_epochs * rf^k; the best 1/rf go on (default 3)")}},
                            {})}},
      {"parameters"});
  s["description"] = "the hyperparameter search (docs/training.md, Hyperparameter sweeps)";
  return s;
}

json Tokenizer() {
  return Object({{"path", Str("tokenizer directory or tokenizer.json / vocab.txt file, or a catalog:// model reference")},
                 {"storage_type", StorageType({"local", "s3", "hugging_face_hub"})},
                 {"revision", Str("hugging_face_hub: the branch, tag or commit (default main)", 128)}},
                {"path"});
}

json ModelSource() {
  return Object({{"path", Str("a model directory: <org>/<name> on the Hugging Face Hub, s3://bucket/key, or a key of this "
                              "server's store")},
                 {"storage_type", StorageType({"local", "s3", "hugging_face_hub"})},
                 {"revision", Str("hugging_face_hub: the branch, tag or commit (default main)", 128)}},
                {"path"});
}

json Model(const std::vector<std::string>& objectives, bool objective_required) {
  json s = Object(
      {{"path", Str("model directory (Hugging Face layout: config.json, model.safetensors, ...), or a catalog reference: "
              "catalog://<name>, catalog://<name>/<version>, catalog://<name>@<alias>")},
       {"storage_type", StorageType({"local", "s3", "hugging_face_hub"})},
       {"revision", Str("hugging_face_hub: the branch, tag or commit (default main)", 128)},
       {"objective", Enum(objectives, "what the model does")},
       {"preset", Str("built-in architecture to start from scratch (e.g. bert-tiny)", 128)},
       {"config", {{"type", "object"}, {"description", "a Hugging Face config.json object to "
                                                        "start from scratch"}}},
       {"labels", {{"type", "array"}, {"minItems", 1}, {"maxItems", 100000},
                   {"items", Str("class label", 1024)},
                   {"description", "class labels of a classification head"}}}},
      objective_required ? std::vector<std::string>{"objective"} : std::vector<std::string>{});
  s["anyOf"] = json::array({{{"required", {"path"}}}, {{"required", {"preset"}}},
                            {{"required", {"config"}}}});
  return s;
}

json TrainModel(const std::vector<std::string>& objectives) {
  json s = Model(objectives, true);
  // The classes are the dataset's (sorted; docs/training.md): a list here would be ignored.
  s["properties"].erase("labels");
  s["properties"]["classifier_pooling"] =
      Enum({"cls", "mean"}, "text-classification: what the classifier reads, the first token (default) or the "
                            "mean over the tokens (saved as config.json classifier_pooling)");
  return s;
}

json ModelTrain() {
  json optimizer = Object(
      {{"name", Enum({"AdamW", "Adam", "SGD"}, "optimizer (default AdamW)")},
       {"init_lr", {{"type", "number"}, {"exclusiveMinimum", 0}, {"maximum", 10},
                    {"description", "peak learning rate (default 2e-5; images: 1e-3)"}}},
       {"num_warm_steps", Int(0, 100000000, "linear warm-up steps (default 0)")},
       {"weight_decay_rate", {{"type", "number"}, {"minimum", 0}, {"maximum", 1},
                              {"description", "decoupled weight decay (default 0.01), not on biases and LayerNorm"}}},
       {"beta1", Num(0, 1, "Adam/AdamW first-moment decay (default 0.9)")},
       {"beta2", Num(0, 1, "Adam/AdamW second-moment decay (default 0.999)")},
       {"epsilon", Num(0, 1, "Adam/AdamW epsilon (default 1e-8)")},
       {"momentum", Num(0, 1, "SGD momentum (default 0)")}},
      {});
  json early = Object({{"patience", Int(0, 100000, "epochs without improvement before stopping (0: off)")},
                       {"metric", Str("eval_loss (default), eval_accuracy, eval_macro_f1, eval_perplexity, "
                                      "eval_masked_accuracy, eval_retrieval_accuracy, or token-classification's eval_f1, "
                                      "eval_precision, eval_recall", 64)},
                       {"min_delta", Num(0, 1e9, "smallest change that counts as an improvement")}},
                      {});
  return Object({{"epochs", Int(1, 100000, "passes over the training split (default 10)")},
                 {"batch_size", Int(1, 65536, "examples per step (default 32; images: 64)")},
                 {"optimizer", optimizer},
                 {"seed", Int(0, 4294967295LL, "seed of shuffling and initialisation")},
                 {"max_length", Int(1, 1000000, "truncate sequences to this many tokens")},
                 {"doc_stride", Int(1, 4096, "question-answering: tokens two windows of a long context share "
                                             "(default 128, at most a quarter of max_length)")},
                 {"threads", Int(1, 1024, "CPU threads of the training task")},
                 {"device", Str("cpu, cuda or cuda:N", 32)},
                 {"max_grad_norm", Num(0, 1e6, "gradient clipping norm (default 1.0; 0: off)")},
                 {"gradient_accumulation_steps", Int(1, 65536, "batches per optimizer step (default 1)")},
                 {"early_stopping", early},
                 {"load_best_model_at_end",
                  {{"type", "boolean"},
                   {"description", "save the epoch with the best early_stopping.metric instead of the last one"}}},
                 {"checkpoint_steps", Int(0, 100000000, "also checkpoint every N optimizer steps (default: each epoch)")},
                 {"max_steps", Int(0, 1000000000, "stop after this many optimizer steps (0: no limit)")},
                 {"mlm_probability", Num(0, 1, "masked-lm: fraction of tokens masked (default 0.15)")},
                 {"whole_word_masking", {{"type", "boolean"}, {"description", "masked-lm: mask whole words"}}},
                 {"scale", Num(0, 1000, "sentence-embedding: similarity scale, 1/temperature (default 20)")},
                 {"similarity", Enum({"cosine", "dot"}, "sentence-embedding: how embeddings compare in the loss and, "
                                                        "recorded with the model, in vector stores (default cosine)")},
                 {"whitening", Num(0, 1, "sentence-embedding: fit a whitening projection on the training positives after "
                                         "training, eigenvalue power (0.5: full whitening; 0: none, default)")},
                 {"precision", Enum({"auto", "bf16", "fp32", "bfloat16", "float32"},
                                    "forward passes under bfloat16 autocast (bf16) or in float32 (fp32); weights, gradients "
                                    "and optimizer state stay float32. auto (default): bf16 on a CUDA GPU that computes "
                                    "in bf16, float32 on the CPU")},
                 {"freeze_backbone", {{"type", "boolean"},
                                      {"description", "image-classification: train the classifier only (ResNet's fc, the "
                                                      "small models' classifier block)"}}}},
                {});
}

json Dataset(const std::vector<std::string>& formats) {
  json loader = {
      {"type", "object"},
      {"description", "how to read the dataset; other keys are passed to the loader"},
      {"properties",
       {{"page_content_column", Str("column holding the document text", 256)},
        {"text_column", Str("column holding the text", 256)},
        {"text_pair_column", Str("column holding the second text of a pair", 256)},
        {"label_column", Str("column holding the label", 256)},
        {"anchor_column", Str("sentence-embedding: column of the anchor texts (default anchor)", 256)},
        {"positive_column", Str("sentence-embedding: column of their positives (default positive)", 256)},
        {"negative_column", Str("sentence-embedding: optional column of hard negatives (a text each anchor must not match)", 256)},
        {"tokens_column", Str("token-classification: column of each sentence's words, a JSON array (default tokens)", 256)},
        {"tags_column", Str("token-classification: column of the words' tags (BIO), a JSON array (default tags)", 256)},
        {"tag_names", {{"type", "array"}, {"items", Str("tag name", 256)},
                       {"description", "token-classification: the names of integer tags, by id (O, B-PER, ...)"}}},
        {"question_column", Str("question-answering: column of the questions (default question)", 256)},
        {"context_column", Str("question-answering: column of the contexts (default context)", 256)},
        {"answers_column", Str("question-answering: column of SQuAD's answers {text: [...], answer_start: [...]} "
                               "(default answers)", 256)},
        {"delimiter", {{"type", "string"}, {"minLength", 1}, {"maxLength", 1},
                       {"description", "CSV field delimiter (default ,)"}}},
        {"header", {{"type", "boolean"}, {"description", "CSV has a header row (default true)"}}},
        {"encoding_errors", Enum({"strict", "replace"},
                                 "invalid UTF-8: fail (strict, default) or use U+FFFD")},
        {"columns", {{"type", "array"}, {"items", Str("column name", 256)},
                     {"description", "read only these columns"}}},
        {"metadata_columns", {{"type", "array"}, {"items", Str("column name", 256)},
                              {"description", "vector index: columns kept as metadata (default: all the others)"}}},
        {"id_column", Str("vector index: column of the document ids (default: the row number)", 256)}}}};
  return Object(
      {{"path", Str("dataset file (CSV, TSV, JSON Lines, or CoNLL for token-classification) or saved vector store, or a catalog reference "
                            "catalog://datasets/<name>[/<version>|@<alias>]")},
       {"storage_type", StorageType({"local", "s3"})},
       {"train_test_split", {{"type", "number"}, {"exclusiveMinimum", 0}, {"exclusiveMaximum", 1},
                             {"description", "fraction held out for evaluation"}}},
       {"format", Enum(formats, "file format (guessed from the extension when absent)")},
       {"eval_dataset", Object({{"path", Str("held-out dataset file (instead of train_test_split)")},
                                {"storage_type", StorageType({"local", "s3"})},
                                {"format", Enum(formats, "file format (guessed from the extension when absent)")}},
                               {"path"})},
       {"augment", Object({{"typos", Object({{"copies", Int(0, 1000, "typo-corrupted copies per training example")},
                                            {"rate", Num(0, 1, "chance of an edit per character (default 0.05)")}},
                                           {})}},
                          {})},
       {"loader_kwargs", loader}},
      {"path"});
}

json Save(const std::string& format) {
  json props = {{"path", Str("output directory")},
                {"storage_type", StorageType({"local", "s3"})}};
  if (!format.empty()) props["format"] = Enum({format}, "output format");
  if (format == "vector_store") {
    props["index"] = {{"type", {"string", "object"}},
                      {"description", "Flat (default), IVF or HNSW, or {type, metric: l2|inner_product, nlist, nprobe, "
                                      "M, efConstruction, efSearch}"}};
    props["pooling"] = Enum({"mean", "cls"}, "sentence embedding pooling (default mean)");
    props["normalize"] = {{"type", "boolean"}, {"description", "L2-normalise the embeddings (default true)"}};
  }
  return Object(props, {"path"});
}

json TextInput(bool allow_top_k) {
  json props = {{"input_text", {{"type", "array"}, {"minItems", 1}, {"maxItems", 1024},
                                {"items", {{"type", "string"}, {"maxLength", 100000}}},
                                {"description", "texts to process"}}}};
  if (allow_top_k) props["top_k"] = Int(1, 1000, "results per query (default 5)");
  return Object(props, {"input_text"});
}

json SearchInput() {
  json s = TextInput(true);
  s["properties"]["top_k"] = Int(1, 1000, "documents per query (default 4)");
  s["properties"]["filter"] = {{"type", "object"},
                               {"description", "only documents whose metadata has these values (equality per field)"}};
  s["properties"]["mode"] = Enum({"dense", "lexical", "hybrid"},
                                 "ranking: embeddings (default), BM25, or both fused (see fusion)");
  s["properties"]["dense_weight"] = Num(0, 1, "hybrid: weight of the dense ranking in the fusion (default 0.5)");
  s["properties"]["candidates"] = Int(1, 100000, "hybrid: how deep each ranking goes (default 100)");
  s["properties"]["fusion"] = Enum({"rrf", "linear"},
                                   "hybrid: reciprocal-rank fusion (default) or a weighted sum of each ranking's scores scaled to 0..1");
  s["properties"]["pooling"] = Enum({"mean", "cls"}, "plain datasets: sentence embedding pooling (default mean; a saved store uses its own)");
  s["properties"]["normalize"] = {{"type", "boolean"}, {"description", "plain datasets: L2-normalise embeddings (default true)"}};
  return s;
}

json NlpPredictInput() {
  json s = TextInput(true);
  // Texts, or (question-answering) questions with their contexts.
  s.erase("required");
  s["anyOf"] = json::array({{{"required", {"input_text"}}}, {{"required", {"question", "context"}}}});
  s["properties"]["question"] = {{"type", "array"}, {"minItems", 1}, {"maxItems", 1024},
                                 {"items", {{"type", "string"}, {"maxLength", 100000}}},
                                 {"description", "question-answering: the questions"}};
  s["properties"]["context"] = {{"type", "array"}, {"minItems", 1}, {"maxItems", 1024},
                                {"items", {{"type", "string"}, {"maxLength", 1000000}}},
                                {"description", "question-answering: the context of each question, as many"}};
  s["properties"]["top_k"] =
      Int(1, 1000, "classification: also return the k best labels; fill-mask: candidates per mask (default 5)");
  s["properties"]["pooling"] = Enum({"mean", "cls"}, "no-objective: sentence embedding pooling (default mean)");
  s["properties"]["normalize"] = {{"type", "boolean"}, {"description", "no-objective: L2-normalise embeddings"}};
  s["properties"]["device"] = Str("cpu, cuda or cuda:N (default: the server's --device)", 32);
  // causal-lm generation
  s["properties"]["top_k"]["description"] =
      "classification: also return the k best labels; fill-mask: candidates per mask (default 5); causal-lm: "
      "sample among the k most likely tokens (default 50)";
  s["properties"]["max_new_tokens"] = Int(1, 4096, "causal-lm: tokens to generate at most (default 20)");
  s["properties"]["do_sample"] = {{"type", "boolean"},
                                  {"description", "causal-lm: sample (default: when temperature > 0, top_k or top_p "
                                                  "is given) or greedy"}};
  s["properties"]["temperature"] = {{"type", "number"}, {"minimum", 0}, {"maximum", 100},
                                    {"description", "causal-lm: sampling temperature (0: greedy)"}};
  s["properties"]["top_p"] = {{"type", "number"}, {"exclusiveMinimum", 0}, {"maximum", 1},
                              {"description", "causal-lm: nucleus sampling probability"}};
  s["properties"]["seed"] = {{"type", "integer"}, {"minimum", 0},
                             {"description", "causal-lm: seed of the sampling (the same seed, the same text)"}};
  s["properties"]["stop"] = {{"anyOf", json::array({Str("a stop string", 256),
                                                    {{"type", "array"}, {"maxItems", 16}, {"items", Str("a stop string", 256)}}})},
                             {"description", "causal-lm: generation of a text ends after the first of these"}};
  s["properties"]["stream"] = {{"type", "boolean"},
                               {"description", "causal-lm: answer with server-sent events (token, done, error) "
                                               "as the text is generated"}};
  s["properties"]["pair_text"] = {{"type", "array"}, {"items", {{"type", "string"}}},
                                 {"description", "next-sentence-prediction (and text-classification of pairs): the "
                                                 "second text of each input_text, as many"}};
  s["properties"]["aggregation_strategy"] =
      Enum({"none", "simple", "first", "average", "max"},
           "token-classification: how tokens become entities (default simple), as transformers' pipeline names them");
  return s;
}

json ImageInput() {
  json s = Object({{"images", {{"type", "array"}, {"minItems", 1}, {"maxItems", 256},
                               {"items", {{"type", "string"}, {"minLength", 1}}},
                               {"description", "base64-encoded PNG or JPEG files (a data: URL too), at most 32 MiB each"}}},
                   {"paths", {{"type", "array"}, {"minItems", 1}, {"maxItems", 256},
                              {"items", Str("object key of a PNG or JPEG image")},
                              {"description", "images in the object store"}}},
                   {"storage_type", StorageType({"local", "s3"})},
                   {"top_k", Int(1, 1000, "also return the k best labels")},
                   {"device", Str("cpu, cuda or cuda:N (default: the server's --device)", 32)}},
                  {});
  s["anyOf"] = json::array({{{"required", {"images"}}}, {{"required", {"paths"}}}});
  return s;
}

json ImageModel(const std::vector<std::string>& objectives, bool objective_required) {
  json s = Model(objectives, objective_required);
  s["properties"]["preset"] = Enum({"mlp", "cnn-small", "resnet18", "resnet34"}, "image classifier to start from scratch");
  s["properties"]["num_channels"] = Int(1, 3, "from scratch: 1 (gray) or 3 (RGB); default 3 for resnets, 1 otherwise");
  s["properties"]["image_size"] = {
      {"anyOf", json::array({Int(8, 1024, "height and width"),
                             {{"type", "array"}, {"minItems", 2}, {"maxItems", 2}, {"items", Int(8, 1024, "")}}})},
      {"description", "from scratch: the input size images are resized to (default 224 for resnets, 28 otherwise)"}};
  s["properties"].erase("config");
  s["anyOf"] = json::array({{{"required", {"path"}}}, {{"required", {"preset"}}}});
  return s;
}

json ImageTrainModel(const std::vector<std::string>& objectives) {
  json s = ImageModel(objectives, true);
  json stat = {{"anyOf", json::array({{{"type", "number"}},
                                      {{"type", "array"}, {"minItems", 1}, {"maxItems", 3}, {"items", {{"type", "number"}}}}})}};
  s["properties"]["image_mean"] = stat;
  s["properties"]["image_mean"]["description"] =
      "per-channel mean of pixels / 255 the input is normalised with (default: a saved model's, else computed from the "
      "training images)";
  s["properties"]["image_std"] = stat;
  s["properties"]["image_std"]["description"] = "per-channel standard deviation, as image_mean";
  s["properties"]["image_size"]["description"] =
      "from scratch: the input size images are resized to (default: the images' own when they share one, up to 224; "
      "else 224 for resnets, 64 otherwise)";
  s["properties"]["num_channels"]["description"] = "from scratch: 1 (gray) or 3 (RGB); default: 3 when any image is in color";
  s["properties"].erase("labels");  // the dataset's classes
  return s;
}

json ImageDataset() {
  json loader = Object({{"image_column", Str("csv/jsonl: column of the image keys, relative to the list's folder (default image)", 256)},
                        {"label_column", Str("csv/jsonl: column of the labels (default label)", 256)},
                        {"on_bad_image", Enum({"skip", "fail"}, "an unreadable image is reported and left out (skip, default) "
                                                                "or fails the task")},
                        {"delimiter", {{"type", "string"}, {"minLength", 1}, {"maxLength", 1},
                                       {"description", "CSV field delimiter (default ,)"}}},
                        {"header", {{"type", "boolean"}, {"description", "CSV has a header row (default true)"}}}},
                       {});
  const std::vector<std::string> formats = {"idx", "image_folder", "csv", "tsv", "jsonl"};
  const std::string format_help =
      "idx: a folder with train-images-idx3-ubyte[.gz] and train-labels-idx1-ubyte[.gz]; image_folder: one subfolder of "
      "PNG/JPEG images per class; csv/tsv/jsonl: a list of image keys and labels (guessed from the extension when absent)";
  return Object(
      {{"path", Str("the dataset's folder (idx, image_folder) or list (csv, tsv, jsonl) in the object store, or an image "
                    "dataset of the catalog: catalog://datasets/<name>[/<version>|@<alias>]")},
       {"storage_type", StorageType({"local", "s3"})},
       {"format", Enum(formats, format_help)},
       {"train_test_split", {{"type", "number"}, {"exclusiveMinimum", 0}, {"exclusiveMaximum", 1},
                             {"description", "fraction held out for evaluation, per class (default 0.1)"}}},
       {"label_names", {{"type", "array"}, {"minItems", 1}, {"maxItems", 1000}, {"uniqueItems", true},
                        {"items", Str("class name", 1024)},
                        {"description", "names of numeric classes 0, 1, ... (default: the numbers); at most 1,000 classes"}}},
       {"eval_dataset", Object({{"path", Str("held-out images (instead of train_test_split): read as the training set "
                                             "is (its format unless given; an IDX folder's t10k files when it has both)")},
                                {"storage_type", StorageType({"local", "s3"})},
                                {"format", Enum(formats, format_help)},
                                {"label_names", {{"type", "array"}, {"items", Str("class name", 1024)}}}},
                               {"path"})},
       {"augment", Object({{"crop_padding", Int(0, 64, "random crop of the image padded by this many pixels (0: off)")},
                           {"horizontal_flip", {{"type", "boolean"}, {"description", "mirror half the training images"}}},
                           {"rotation", Num(0, 45, "rotate training images by up to this many degrees either way")}},
                          {})},
       {"loader_kwargs", loader}},
      {"path"});
}

json TokenizerTrain() {
  return Object(
      {{"model", Enum({"wordpiece", "bpe"}, "tokenizer model (default wordpiece)")},
       {"vocab_size", Int(1, 10000000, "target vocabulary size (default 30000)")},
       {"min_frequency", Int(0, 1000000000, "minimum pair frequency to merge (default 2)")},
       {"special_tokens", {{"type", "array"}, {"maxItems", 1000},
                           {"items", Str("special token", 256)}}},
       {"lowercase", {{"type", "boolean"},
                      {"description", "lower-case the text first (default: true for wordpiece)"}}},
       {"limit_alphabet", Int(1, 1000000, "keep only this many most frequent characters")}},
      {});
}

json Deployment() {
  json batching = Object(
      {{"max_batch_tokens", Int(1, 1 << 22, "padded tokens per forward pass (default 8192)")},
       {"max_batch_size", Int(1, 4096, "inputs per forward pass (default 64)")},
       {"max_delay_us", Int(0, 10000000, "how long the first waiting input waits for others (default 0: run as soon as the model is free; what arrives meanwhile forms the next pass)")},
       {"max_queue", Int(1, 1 << 20, "inputs waiting at most; beyond, requests get 429 (default 2048)")},
       {"max_inputs", Int(1, 1 << 16, "inputs in one request (default 512)")},
       {"timeout_ms", Int(1, 3600000, "a request's deadline, queue and compute (default 30000)")}},
      {});
  json version = {{"type", {"integer", "string"}},
                  {"description", "version number or name (default: the next integer)"}};
  return Object({{"name", Str("deployment name: letters, digits, '_', '-', '.'", 64)},
                 {"version", version},
                 {"model", Model({"text-classification", "token-classification", "question-answering",
                                  "next-sentence-prediction", "masked-lm", "causal-lm", "no-objective",
                                  "sentence-embedding", "image-classification"},
                                 false)},
                 {"tokenizer", Tokenizer()},
                 {"device", Str("cpu, cuda or cuda:N (default: the server's)", 32)},
                 {"dtype", Enum({"float32", "bfloat16"}, "weights and activations (default: the server's)")},
                 {"batching", batching},
                 {"max_memory_bytes", Int(1, 1LL << 50, "refuse to load a model whose weights take more")},
                 {"canary_percent", Int(1, 100, "share of the traffic the new version takes until promoted "
                                                "(default 100: all of it, once ready)")},
                 {"resources", DeploymentResources()}},
                {"name", "model"});
}

json InferenceRequestV2() {
  json tensor = {{"type", "object"},
                 {"required", {"name", "shape", "datatype", "data"}},
                 {"properties",
                  {{"name", Str("input name: text, pair_text, question or context (BYTES); input_ids, attention_mask or "
                              "token_type_ids (INT64); image or pixel_values (FP32/UINT8)",
                              256)},
                   {"shape", {{"type", "array"}, {"items", {{"type", "integer"}, {"minimum", 0}}}, {"maxItems", 8}}},
                   {"datatype", Enum({"BYTES", "INT64", "INT32", "FP32", "UINT8"}, "tensor element type (FP32/UINT8: images [N, C, H, W])")},
                   {"data", {{"type", "array"}, {"description", "elements in row-major order, flat or nested"}}},
                   {"parameters", {{"type", "object"}}}}}};
  json output = {{"type", "object"},
                 {"required", {"name"}},
                 {"properties", {{"name", Str("output name", 256)}, {"parameters", {{"type", "object"}}}}}};
  return {{"type", "object"},
          {"required", {"inputs"}},
          {"properties",
           {{"id", {{"type", "string"}, {"maxLength", 256}}},
            {"parameters", {{"type", "object"}, {"description", "top_k, pooling (mean|cls), normalize"}}},
            {"inputs", {{"type", "array"}, {"minItems", 1}, {"maxItems", 8}, {"items", tensor}}},
            {"outputs", {{"type", "array"}, {"maxItems", 8}, {"items", output}}}}}};
}

json TaskView() {
  return {{"type", "object"},
          {"properties",
           {{"task_id", {{"type", "string"}, {"format", "uuid"}}},
            {"task_type", {{"type", "string"}}},
            {"task_status", {{"type", "string"},
                             {"enum", {"queued", "running", "succeeded", "failed", "cancelled"}}}},
            {"stats", {{"type", "object"},
                       {"description", "submitted/started/finished (UTC, 2023-09-13T06:30:48), "
                                       "elapsed (\"1 day, 2:20:31\"), attempts"}}},
            {"progress", {{"type", "object"}}},
            {"error", {{"type", "object"}}}}},
          {"description", "a task; a finished task adds its result fields (history, "
                          "evaluation, dataset, ...)"}};
}

json TaskAccepted() {
  return {{"type", "object"},
          {"properties", {{"task_id", {{"type", "string"}, {"format", "uuid"}}},
                          {"task_status", {{"type", "string"}, {"enum", {"queued"}}}}}}};
}

json ErrorResponse() {
  return {{"type", "object"},
          {"properties",
           {{"error", {{"type", "object"},
                       {"properties", {{"code", {{"type", "string"}}},
                                       {"message", {{"type", "string"}}},
                                       {"field", {{"type", "string"}}},
                                       {"request_id", {{"type", "string"}}}}}}}}}};
}

json ObjectInfo() {
  return {{"type", "object"},
          {"properties", {{"key", {{"type", "string"}}},
                          {"size", {{"type", "integer"}}},
                          {"last_modified", {{"type", "string"}}},
                          {"etag", {{"type", "string"}}}}}};
}

}  // namespace mlaas::api::schemas
