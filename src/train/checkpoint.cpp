#include "train/checkpoint.h"

#include "common/file_util.h"

namespace mlaas::train {

namespace fs = std::filesystem;
using json = nlohmann::json;

Status SaveCheckpoint(const fs::path& dir, const CheckpointParts& parts, const LoopState& s) {
  const fs::path incoming = dir / "incoming";
  const fs::path current = dir / "current";
  const fs::path previous = dir / "previous";
  std::error_code ec;
  fs::remove_all(incoming, ec);
  fs::create_directories(incoming, ec);
  if (ec) return Internal("cannot create the checkpoint directory: " + ec.message());
  MLAAS_RETURN_IF_ERROR(parts.strategy.SaveWeights(incoming));
  try {
    torch::save(parts.optimizer, (incoming / "optimizer.pt").string());
    torch::Tensor rng;
    {
      std::lock_guard<std::mutex> lock(parts.rng.mutex());
      rng = parts.rng.get_state();
    }
    torch::save(rng, (incoming / "rng.pt").string());
    if (!parts.best_weights.empty()) torch::save(parts.best_weights, (incoming / "best.pt").string());
  } catch (const c10::Error& e) {
    return Internal(std::string("cannot write the checkpoint: ") + e.what_without_backtrace());
  }
  json state = {{"epoch", s.epoch},
                {"batch", s.batch},
                {"step", s.step},
                {"counters", s.counters.ToJson()},
                {"history", s.history},
                {"last_eval", s.last_eval},
                {"best", s.best ? json(*s.best) : json()},
                {"bad_epochs", s.bad_epochs},
                {"train_seconds", s.train_seconds},
                {"tokens_seen", s.units_seen},
                {"labels", parts.strategy.Labels()},
                {"total_steps", parts.total_steps},
                {"best_epoch", s.best_epoch},
                {"best_eval", s.best_eval}};
  MLAAS_RETURN_IF_ERROR(WriteFileAtomic(incoming / "state.json", state.dump()));
  // current -> previous, incoming -> current: at every moment one complete checkpoint exists.
  fs::remove_all(previous, ec);
  if (fs::exists(current)) fs::rename(current, previous, ec);
  if (ec) return Internal("cannot rotate checkpoints: " + ec.message());
  fs::rename(incoming, current, ec);
  if (ec) return Internal("cannot rotate checkpoints: " + ec.message());
  fs::remove_all(previous, ec);
  return Status::Ok();
}

Result<bool> LoadCheckpoint(const fs::path& root, const CheckpointParts& parts, LoopState& s,
                            std::optional<size_t> best_size,
                            const std::function<void(std::string_view, const std::string&)>& log) {
  fs::path dir;
  for (const char* name : {"current", "previous"}) {
    if (fs::exists(root / name / "state.json")) {
      dir = root / name;
      break;
    }
  }
  if (dir.empty()) return false;
  auto text = ReadFile(dir / "state.json", 256u << 20);
  if (!text) return text.error();
  json state = json::parse(*text, nullptr, false);
  if (state.is_discarded() || !state.is_object()) return Internal("the checkpoint's state.json is corrupt");
  if (state.value("labels", std::vector<std::string>{}) != parts.strategy.Labels() ||
      state.value("total_steps", int64_t{-1}) != parts.total_steps) {
    if (log) log("warn", "the checkpoint does not match this run's data; starting over");
    return false;
  }
  MLAAS_RETURN_IF_ERROR(parts.strategy.LoadWeights(dir));
  try {
    torch::load(parts.optimizer, (dir / "optimizer.pt").string(), parts.device);
    torch::Tensor rng;
    torch::load(rng, (dir / "rng.pt").string(), torch::Device(torch::kCPU));
    {
      std::lock_guard<std::mutex> lock(parts.rng.mutex());
      parts.rng.set_state(rng);
    }
    s.best_epoch = state.value("best_epoch", int64_t{0});
    s.best_eval = state.value("best_eval", json::object());
    if (s.best_epoch > 0 && best_size) {
      torch::load(parts.best_weights, (dir / "best.pt").string(), parts.device);
      if (parts.best_weights.size() != *best_size) return Internal("the checkpoint's best weights do not match the model");
    }
    s.epoch = state.at("epoch");
    s.batch = state.at("batch");
    s.step = state.at("step");
    s.counters.FromJson(state.at("counters"));
    s.history = state.at("history");
    s.last_eval = state.at("last_eval");
    if (!state.at("best").is_null()) s.best = state["best"].get<double>();
    s.bad_epochs = state.at("bad_epochs");
    s.train_seconds = state.at("train_seconds");
    s.units_seen = state.at("tokens_seen");
  } catch (const c10::Error& e) {
    return Internal(std::string("cannot read the checkpoint: ") + e.what_without_backtrace());
  } catch (const json::exception& e) {
    return Internal(std::string("the checkpoint's state.json is corrupt: ") + e.what());
  }
  return true;
}

}  // namespace mlaas::train
