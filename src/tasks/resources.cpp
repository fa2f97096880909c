#include "tasks/resources.h"

#include <algorithm>
#include <cctype>

namespace mlaas::tasks {
namespace {

using nlohmann::json;

void SortUnique(std::vector<std::string>& v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
}

// An integer field of the block in [min, max].
Result<int> IntField(const json& block, const char* name, int min, int max) {
  const std::string field = std::string("resources.") + name;
  const json& v = block.at(name);
  if (!v.is_number_integer())
    return InvalidArgument(field + " must be an integer from " + std::to_string(min) + " to " + std::to_string(max),
                           field);
  const auto n = v.get<int64_t>();
  if (n < min || n > max)
    return InvalidArgument(field + " must be from " + std::to_string(min) + " to " + std::to_string(max) + ", not " +
                               std::to_string(n),
                           field);
  return static_cast<int>(n);
}

}  // namespace

bool IsValidLabel(const std::string& label) {
  if (label.empty() || label.size() > 63) return false;
  if (!std::isalnum(static_cast<unsigned char>(label[0]))) return false;
  return std::all_of(label.begin(), label.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
  });
}

Result<metadata::TaskRequirements> ParseResources(const json& params) {
  metadata::TaskRequirements req;
  if (!params.is_object() || !params.contains("resources") || params["resources"].is_null()) return req;
  const json& block = params["resources"];
  if (!block.is_object())
    return InvalidArgument("resources must be an object like {\"gpus\": 1, \"labels\": [\"gpu\"]}", "resources");
  for (const auto& [key, value] : block.items()) {
    if (key != "gpus" && key != "labels" && key != "workers")
      return InvalidArgument("resources." + key + " is not a known field (gpus, labels, workers)", "resources." + key);
  }
  if (block.contains("gpus")) {
    MLAAS_ASSIGN_OR_RETURN(req.gpus, IntField(block, "gpus", 0, kMaxTaskGpus));
  }
  if (block.contains("labels")) {
    const json& labels = block["labels"];
    if (!labels.is_array()) return InvalidArgument("resources.labels must be a list of strings", "resources.labels");
    if (labels.size() > kMaxTaskLabels)
      return InvalidArgument("resources.labels holds more than " + std::to_string(kMaxTaskLabels) + " labels",
                             "resources.labels");
    for (size_t i = 0; i < labels.size(); ++i) {
      const std::string field = "resources.labels[" + std::to_string(i) + "]";
      if (!labels[i].is_string() || !IsValidLabel(labels[i].get<std::string>()))
        return InvalidArgument(field + " must be a label: 1 to 63 letters, digits, '.', '_' or '-', starting with a "
                                       "letter or digit",
                               field);
      req.labels.push_back(labels[i].get<std::string>());
    }
    SortUnique(req.labels);
  }
  if (block.contains("workers")) {
    MLAAS_ASSIGN_OR_RETURN(req.workers, IntField(block, "workers", 1, kMaxTaskWorkers));
  }
  return req;
}

Result<metadata::WorkerCapabilities> MakeCapabilities(int gpus, const std::vector<std::string>& labels) {
  metadata::WorkerCapabilities caps;
  caps.gpus = std::max(0, gpus);
  caps.labels.push_back("cpu");
  if (caps.gpus > 0) caps.labels.push_back("gpu");
  for (const auto& label : labels) {
    if (!IsValidLabel(label))
      return InvalidArgument("'" + label + "' is not a label: 1 to 63 letters, digits, '.', '_' or '-', starting with a "
                                           "letter or digit",
                             "labels");
    caps.labels.push_back(label);
  }
  SortUnique(caps.labels);
  return caps;
}

}  // namespace mlaas::tasks
