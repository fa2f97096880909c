#include "predict/output_options.h"

namespace mlaas::predict {

using json = nlohmann::json;

std::string_view AggregationName(Aggregation a) {
  switch (a) {
    case Aggregation::kNone: return "none";
    case Aggregation::kSimple: return "simple";
    case Aggregation::kFirst: return "first";
    case Aggregation::kAverage: return "average";
    case Aggregation::kMax: return "max";
  }
  return "?";
}

std::string OutputOptions::Key() const {
  std::string key = std::to_string(top_k.value_or(0)) + (cls_pooling ? "c" : "m") + (normalize ? "n" : "-") +
                    (all_scores ? "a" : "-") + std::string(AggregationName(aggregation));
  const GenerationParams& g = generation;
  json j = {g.max_new_tokens, g.do_sample ? json(*g.do_sample) : json(), g.temperature ? json(*g.temperature) : json(),
            g.top_p ? json(*g.top_p) : json(), g.seed ? json(*g.seed) : json(), g.stop};
  return key + j.dump();
}

namespace {

constexpr int64_t kMaxNewTokens = 4096;
constexpr size_t kMaxStops = 16, kMaxStopBytes = 256;

Status ParseGeneration(const json& in, const std::string& prefix, GenerationParams& g) {
  if (auto m = in.find("max_new_tokens"); m != in.end() && !m->is_null()) {
    if (!m->is_number_integer() || m->get<int64_t>() < 1 || m->get<int64_t>() > kMaxNewTokens)
      return InvalidArgument("max_new_tokens must be an integer in 1.." + std::to_string(kMaxNewTokens),
                             prefix + ".max_new_tokens");
    g.max_new_tokens = m->get<int64_t>();
  }
  if (auto d = in.find("do_sample"); d != in.end() && !d->is_null()) {
    if (!d->is_boolean()) return InvalidArgument("do_sample must be true or false", prefix + ".do_sample");
    g.do_sample = d->get<bool>();
  }
  if (auto t = in.find("temperature"); t != in.end() && !t->is_null()) {
    const double t_value = t->is_number() ? t->get<double>() : -1;
    if (!(t_value == 0 || (t_value >= 1e-4 && t_value <= 100)))
      return InvalidArgument("temperature must be 0 (greedy) or a number in 0.0001..100", prefix + ".temperature");
    g.temperature = t->get<double>();
  }
  if (auto p = in.find("top_p"); p != in.end() && !p->is_null()) {
    if (!p->is_number() || !(p->get<double>() > 0 && p->get<double>() <= 1))
      return InvalidArgument("top_p must be a number in (0, 1]", prefix + ".top_p");
    g.top_p = p->get<double>();
  }
  if (auto s = in.find("seed"); s != in.end() && !s->is_null()) {
    if (!s->is_number_unsigned() && !(s->is_number_integer() && s->get<int64_t>() >= 0))
      return InvalidArgument("seed must be a non-negative integer", prefix + ".seed");
    g.seed = s->get<uint64_t>();
  }
  if (auto s = in.find("stop"); s != in.end() && !s->is_null()) {
    const json list = s->is_string() ? json::array({*s}) : *s;
    if (!list.is_array() || list.size() > kMaxStops)
      return InvalidArgument("stop must be a string or a list of at most " + std::to_string(kMaxStops) + " strings",
                             prefix + ".stop");
    for (const auto& e : list) {
      if (!e.is_string() || e.get_ref<const std::string&>().empty() || e.get_ref<const std::string&>().size() > kMaxStopBytes)
        return InvalidArgument("each stop string must be 1 to " + std::to_string(kMaxStopBytes) + " bytes",
                               prefix + ".stop");
      g.stop.push_back(e.get<std::string>());
    }
  }
  return Status::Ok();
}

}  // namespace

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
  if (auto a = in.find("aggregation_strategy"); a != in.end() && !a->is_null()) {
    bool known = false;
    for (Aggregation each : {Aggregation::kNone, Aggregation::kSimple, Aggregation::kFirst, Aggregation::kAverage,
                             Aggregation::kMax}) {
      if (a->is_string() && a->get_ref<const std::string&>() == AggregationName(each)) {
        out.aggregation = each;
        known = true;
      }
    }
    if (!known)
      return InvalidArgument("aggregation_strategy must be none, simple, first, average or max",
                             prefix + ".aggregation_strategy");
  }
  MLAAS_RETURN_IF_ERROR(ParseGeneration(in, prefix, out.generation));
  return out;
}

}  // namespace mlaas::predict
