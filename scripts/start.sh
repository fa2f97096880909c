#!/usr/bin/env bash
# The first README command: install what is missing, build (Release) and start mlaas on
# http://127.0.0.1:8080 with embedded defaults (SQLite metadata and local storage in ./data).
# Extra arguments go to `mlaas serve` (see `mlaas serve --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
./scripts/build.sh release
# The server keeps libgomp's default wait policy (its threads spin briefly between operators,
# then sleep): every inference pass runs on one compute thread, and with one OpenMP team
# spinning is what keeps a pass's ~100 operators from each paying a wake-up (bert-mini bf16,
# one request: 2.8 ms vs 4.0-4.7 ms under OMP_WAIT_POLICY=PASSIVE; training with 2 threads and
# FAISS's batched search were no slower; docs/benchmarks.md, serving). Set OMP_WAIT_POLICY in
# the environment to override it (libgomp reads it when it loads, not later).
exec ./build/release/src/cli/mlaas serve "$@"
