#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (AddressSanitizer + UBSan) and runs each: the
# tokenizer target for SECONDS (default 60), the safetensors header parser for half of it.
# Exits non-zero on any crash, leak or sanitizer report.
#   scripts/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
CXX_CLANG="$(command -v clang++-14 || command -v clang++)"
cmake -S . -B build/fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER="$CXX_CLANG" \
  -DMLAAS_FUZZ=ON -DMLAAS_BUILD_TESTS=OFF -DMLAAS_WERROR=OFF >/dev/null
cmake --build build/fuzz --target tokenizer_fuzz safetensors_fuzz -j2

run() {  # run NAME BINARY SEEDS SECONDS
  local corpus="build/fuzz/corpus/$1"
  mkdir -p "$corpus"
  echo "fuzzing $1 for $4 s" >&2
  "$2" -max_total_time="$4" -max_len=4096 -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
    -artifact_prefix=build/fuzz/ "$corpus" "$3" 2>&1 | tail -n 12
}
run tokenizer build/fuzz/tests/tokenizers/fuzz/tokenizer_fuzz tests/tokenizers/fuzz/seeds "$seconds"
run safetensors build/fuzz/tests/checkpoint/fuzz/safetensors_fuzz tests/checkpoint/fuzz/seeds $((seconds / 2))
