#!/usr/bin/env bash
# The second README command: install what is missing, build with tests and run every test
# (unit and end-to-end) with CTest. Extra arguments go to ctest (e.g. -L unit, -R Storage).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
./scripts/build.sh test
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
ctest --preset test "$@"
# Fuzzing (libFuzzer + sanitizers) of every parser of untrusted input (request bodies,
# tokenizer files, config.json, safetensors, CSV/JSONL, vector stores; docs/security.md);
# skipped when ctest arguments narrow the run.
if [ "$#" -eq 0 ]; then
  ./scripts/fuzz.sh "${MLAAS_FUZZ_SECONDS:-60}"
fi
