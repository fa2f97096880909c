// Timing of a training run for the training benchmarks: the trainer's own loop, clocked from
// its progress callbacks after the warm-up steps.
#pragma once

#include <chrono>
#include <iostream>

#include "train/trainer.h"

namespace mlaas::bench {

// Runs `in` and returns units (tokens, images) per second over the steps after `warmup`, for
// `steps` steps of `units_per_step`; 0 (and the error on stderr) when the run fails.
inline double TrainedUnitsPerSecond(const train::TrainInputs& in, int warmup, int steps, double units_per_step) {
  using Clock = std::chrono::steady_clock;
  Clock::time_point start, end;
  train::TrainCallbacks cb;
  cb.progress = [&](const train::TrainProgress& p) {
    if (p.step == warmup) start = Clock::now();
    if (p.step == warmup + steps) end = Clock::now();
  };
  auto r = train::RunTraining(in, cb);
  if (!r.has_value()) {
    std::cerr << r.error().ToString() << "\n";
    return 0;
  }
  return steps * units_per_step / std::chrono::duration<double>(end - start).count();
}

}  // namespace mlaas::bench
