#include "nn/init_model.h"

#include "common/file_util.h"
#include "common/json_file.h"
#include "nn/model.h"
#include "nn/vision_model.h"
#include "tokenizers/tokenizer.h"

namespace mlaas::nn {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

Result<json> InitImageModel(const InitModelSpec& spec) {
  if (spec.preset.empty()) return InvalidArgument("an image classifier starts from a preset", "preset");
  if (spec.labels.empty()) return InvalidArgument("an image classifier needs its labels", "labels");
  const bool resnet = spec.preset.starts_with("resnet");
  const int64_t channels = spec.channels > 0 ? spec.channels : (resnet ? 3 : 1);
  const int64_t size = spec.image_size > 0 ? spec.image_size : (resnet ? 224 : 28);
  MLAAS_ASSIGN_OR_RETURN(VisionConfig config, VisionPreset(spec.preset, channels, size, size, spec.labels));
  MLAAS_ASSIGN_OR_RETURN(config, VisionConfigFromJson(VisionConfigToJson(config)));  // the checks config.json gets
  if (VisionParameterCount(config) > 1'000'000'000)
    return InvalidArgument("a " + spec.preset + " of that input size would have over a billion parameters: a smaller "
                           "--image-size", "image_size");
  try {
    VisionModel model(config);
    InitVisionWeights(model, spec.seed);
    MLAAS_RETURN_IF_ERROR(SaveVisionModel(model, spec.output));
  } catch (const c10::Error& e) {
    return Internal(std::string("building the model failed: ") + e.what_without_backtrace());
  } catch (const std::bad_alloc&) {
    return ResourceExhausted("not enough memory for a " + spec.preset + " model");
  }
  return json{{"output", spec.output.string()},
              {"model_type", std::string(VisionArchName(config.arch))},
              {"objective", std::string(ObjectiveName(Objective::kImageClassification))},
              {"parameters", VisionParameterCount(config)},
              {"num_channels", channels},
              {"image_size", size},
              {"labels", config.labels}};
}

}  // namespace

Result<json> InitModelDirectory(const InitModelSpec& spec) {
  if (spec.preset.empty() == spec.config_file.empty())
    return InvalidArgument("give exactly one of a preset or a config file", "preset");
  if (auto o = mlaas::ParseObjective(spec.objective); o.has_value() && *o == Objective::kImageClassification)
    return InitImageModel(spec);
  auto tokenizer = tokenizers::Tokenizer::Load(spec.tokenizer);
  if (!tokenizer) return InvalidArgument("cannot load the tokenizer: " + tokenizer.error().message(), "tokenizer");

  json block = json::object();
  if (!spec.preset.empty()) {
    block["preset"] = spec.preset;
  } else {
    MLAAS_ASSIGN_OR_RETURN(json j, ReadJsonFile(spec.config_file, spec.config_file.filename().string(), "config",
                                                {.max_bytes = 16u << 20}));
    block["config"] = std::move(j);
  }
  std::optional<int64_t> pad;
  if (auto p = (*tokenizer)->PadToken()) pad = p->id;
  std::optional<int64_t> eos;
  if (auto e = (*tokenizer)->EosToken()) eos = e->id;
  MLAAS_ASSIGN_OR_RETURN(ModelConfig config, ScratchConfig(block, static_cast<int64_t>((*tokenizer)->VocabSize()),
                                                           pad, spec.labels, eos));
  // No objective named: a decoder's causal-lm, an encoder's masked-lm.
  Objective objective = config.architecture == Architecture::kGpt2 ? Objective::kCausalLm : Objective::kMaskedLm;
  if (!spec.objective.empty()) {
    MLAAS_ASSIGN_OR_RETURN(objective, ParseObjective(spec.objective));
  }
  if (objective != Objective::kTextClassification && objective != Objective::kTokenClassification && !spec.labels.empty())
    return InvalidArgument("labels only apply to text-classification and token-classification", "labels");
  MLAAS_RETURN_IF_ERROR(CheckArchitectureObjective(config.architecture, objective, "objective"));
  int64_t parameters = 0;
  try {
    TransformerModel model(config, objective);
    InitWeights(*model, spec.seed);
    for (const auto& p : model->parameters()) parameters += p.numel();
    if (Status s = SaveModelDir(*model, spec.output); !s.ok()) return s;
  } catch (const c10::Error& e) {
    return Internal(std::string("building the model failed: ") + e.what_without_backtrace());
  } catch (const std::bad_alloc&) {
    return ResourceExhausted("not enough memory for a " + spec.preset + " model");
  }
  if (Status s = (*tokenizer)->Save(spec.output / "tokenizer.json"); !s.ok()) return s;
  // The legacy files too, for tools that read only those.
  const fs::path src = fs::is_directory(spec.tokenizer)        ? spec.tokenizer
                       : spec.tokenizer.has_parent_path() ? spec.tokenizer.parent_path()
                                                          : fs::path(".");
  for (const char* name : {"vocab.txt", "vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json"}) {
    std::error_code ec;
    if (fs::exists(src / name) && fs::absolute(src / name) != fs::absolute(spec.output / name)) {
      fs::copy_file(src / name, spec.output / name, fs::copy_options::overwrite_existing, ec);
      if (ec) return Internal("cannot copy " + std::string(name) + ": " + ec.message());
    }
  }
  return json{{"output", spec.output.string()},
              {"model_type", std::string(ArchitectureName(config.architecture))},
              {"objective", std::string(ObjectiveName(objective))},
              {"architecture", ArchitectureClassName(config.architecture, objective)},
              {"parameters", parameters},
              {"vocab_size", config.vocab_size},
              {"layers", config.num_hidden_layers},
              {"hidden_size", config.hidden_size},
              {"labels", config.id2label}};
}

}  // namespace mlaas::nn
