#!/usr/bin/env bash
# The first README command: install what is missing, build (Release) and start mlaas on
# http://127.0.0.1:8080 with embedded defaults (SQLite metadata and local storage in ./data).
# Extra arguments go to `mlaas serve` (see `mlaas serve --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
./scripts/build.sh release
# libgomp reads its wait policy when it loads: it must be in the environment, not set later.
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
exec ./build/release/src/cli/mlaas serve "$@"
