#include "metadata/deployment_store.h"

#include "metadata/task_rows.h"

namespace mlaas::metadata {

using nlohmann::json;

bool IsConflict(const Status& st) { return st.code() == StatusCode::kFailedPrecondition && st.field() == "revision"; }

std::string DeploymentVersionsJson(const std::vector<DeploymentVersionRecord>& versions) {
  json out = json::array();
  for (const auto& v : versions) {
    json j = {{"id", v.id},
              {"version", v.version},
              {"sequence", v.sequence},
              {"request", v.request},
              {"canary_percent", v.canary_percent},
              {"created_ms", v.created_ms}};
    out.push_back(std::move(j));
  }
  return DumpJson(out);
}

std::vector<DeploymentVersionRecord> ParseDeploymentVersions(const std::string& text) {
  std::vector<DeploymentVersionRecord> out;
  for (const auto& j : ParseStoredJson(text, json::array())) {
    if (!j.is_object() || !j.contains("version") || !j["version"].is_string()) continue;
    DeploymentVersionRecord v;
    v.version = j["version"].get<std::string>();
    v.id = j.value("id", v.version);
    v.sequence = j.value("sequence", int64_t{0});
    v.request = j.value("request", json::object());
    v.canary_percent = j.value("canary_percent", 100);
    v.created_ms = j.value("created_ms", int64_t{0});
    out.push_back(std::move(v));
  }
  return out;
}

}  // namespace mlaas::metadata
