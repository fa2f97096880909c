// One thread runs every inference pass of the process, in the order the passes are asked for.
// Deployments' batchers, the predict endpoint and embedding requests hand their forward passes
// to it and wait. On a CPU two passes at once only share the same cores; and one calling
// thread means one OpenMP thread team: libgomp keeps a team per thread that opens parallel
// regions, and once the teams' threads outnumber the cores it stops spinning between regions,
// so each of a pass's ~100 operators pays a sleep and a wake-up (measured in
// docs/benchmarks.md, serving).
#pragma once

#include <functional>

namespace mlaas::predict {

// Runs `work` on the compute thread and returns when it is done; exceptions it throws are
// rethrown here. Called on the compute thread itself (a pass that runs another), it runs
// `work` at once.
void RunOnComputeThread(const std::function<void()>& work);

// Whether the calling thread is the compute thread.
bool OnComputeThread();

}  // namespace mlaas::predict
