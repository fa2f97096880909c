// libFuzzer target: a model's config.json (nn::LoadConfig) and a request's model block built
// from scratch (nn::ScratchConfig), whatever the bytes: no crash, leak or sanitizer report. The
// first byte picks the mode (even: config.json; odd: a model block). A config that parses must
// survive its own round trip (ConfigToJson, then LoadConfig), as a saved model is read back.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "common/json_file.h"
#include "nn/config.h"

using namespace mlaas::nn;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  mlaas::Result<ModelConfig> config = mlaas::InvalidArgument("unparsed");
  if (data[0] % 2 == 0) {
    config = LoadConfig(rest);
  } else {
    auto block = mlaas::ParseJsonText(rest, "request body", {}, {.max_depth = 64});
    if (!block.has_value()) return 0;
    config = ScratchConfig(*block, 1 + data[0] * 97, std::nullopt, {});
  }
  if (!config.has_value()) return 0;
  (void)MaxInputTokens(*config);
  (void)ObjectiveFromArchitectures(*config);
  for (Objective o : {Objective::kTextClassification, Objective::kMaskedLm, Objective::kNoObjective}) {
    (void)ParameterBytes(*config, o);
    const std::string saved = ConfigToJson(*config, o).dump();
    if (!LoadConfig(saved).has_value()) std::abort();  // a saved config must load again
  }
  return 0;
}
