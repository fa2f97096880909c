#include "predict/output_options.h"

namespace mlaas::predict {

using json = nlohmann::json;

std::string OutputOptions::Key() const {
  return std::to_string(top_k.value_or(0)) + (cls_pooling ? "c" : "m") + (normalize ? "n" : "-") +
         (all_scores ? "a" : "-");
}

Result<OutputOptions> ParseOutputOptions(const json& in, const std::string& prefix) {
  OutputOptions out;
  if (in.is_null()) return out;
  if (!in.is_object()) return InvalidArgument(prefix + " must be an object", prefix);
  if (auto k = in.find("top_k"); k != in.end() && !k->is_null()) {
    if (!k->is_number_integer() || k->get<int64_t>() < 1 || k->get<int64_t>() > 1000)
      return InvalidArgument("top_k must be an integer in 1..1000", prefix + ".top_k");
    out.top_k = k->get<int64_t>();
  }
  if (auto p = in.find("pooling"); p != in.end() && !p->is_null()) {
    if (*p == "mean") {
      out.cls_pooling = false;
    } else if (*p == "cls") {
      out.cls_pooling = true;
    } else {
      return InvalidArgument("pooling must be \"mean\" or \"cls\"", prefix + ".pooling");
    }
  }
  if (auto n = in.find("normalize"); n != in.end() && !n->is_null()) {
    if (!n->is_boolean()) return InvalidArgument("normalize must be true or false", prefix + ".normalize");
    out.normalize = n->get<bool>();
  }
  return out;
}

}  // namespace mlaas::predict
