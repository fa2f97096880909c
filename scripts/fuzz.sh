#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (AddressSanitizer + UBSan) and runs each for
# SECONDS (default 60). Exits non-zero on any crash, leak or sanitizer report.
#   scripts/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
CXX_CLANG="$(command -v clang++-14 || command -v clang++)"
cmake -S . -B build/fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER="$CXX_CLANG" \
  -DMLAAS_FUZZ=ON -DMLAAS_BUILD_TESTS=OFF -DMLAAS_WERROR=OFF >/dev/null
cmake --build build/fuzz --target tokenizer_fuzz -j2
corpus="build/fuzz/corpus/tokenizer"
mkdir -p "$corpus"
echo "fuzzing tokenizer.json parsing and encoding for ${seconds}s" >&2
./build/fuzz/tests/tokenizers/fuzz/tokenizer_fuzz -max_total_time="$seconds" -max_len=4096 \
  -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 -artifact_prefix=build/fuzz/ "$corpus" tests/tokenizers/fuzz/seeds 2>&1 | tail -n 25
