#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, AddressSanitizer + UBSan; only the sources they need, no
# libtorch) and runs each on its seed corpus (plus what earlier runs found, build/fuzz/corpus/),
# sharing SECONDS (default 60) of wall time between them: one target per core at a time, each
# at least 8 s, the rest by weight (the parsers with the most to explore get more; with fewer
# than 8 s per target the phase takes longer than SECONDS). Prints one line per target and exits
# non-zero on any crash, leak, timeout, out-of-memory or sanitizer report (the reproducer is
# left in build/fuzz/artifacts/).
#   scripts/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
CXX_CLANG="$(command -v clang++-14 || command -v clang++)"

# name  binary (under build/fuzz)  seeds  weight  max input bytes
targets=(
  "tokenizer_json  tests/tokenizers/fuzz/tokenizer_fuzz          tests/tokenizers/fuzz/seeds      3 4096"
  "tokenizer_dir   tests/tokenizers/fuzz/tokenizer_dir_fuzz      tests/tokenizers/fuzz/dir_seeds  2 8192"
  "infer_request   tests/serve/fuzz/infer_request_fuzz           tests/serve/fuzz/seeds           2 4096"
  "safetensors     tests/checkpoint/fuzz/safetensors_fuzz        tests/checkpoint/fuzz/seeds      1 4096"
  "pytorch_pickle  tests/checkpoint/fuzz/pytorch_pickle_fuzz     tests/checkpoint/fuzz/pickle_seeds 1 8192"
  "config_json     tests/nn/fuzz/config_fuzz                     tests/nn/fuzz/seeds              1 4096"
  "record_reader   tests/dataset/fuzz/record_reader_fuzz         tests/dataset/fuzz/seeds         1 4096"
  "vector_store    tests/vector/fuzz/vector_store_fuzz           tests/vector/fuzz/seeds          2 4096"
  "image           tests/vision/fuzz/image_fuzz                  tests/vision/fuzz/seeds          2 8192"
)

cmake -S . -B build/fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER="$CXX_CLANG" \
  -DMLAAS_FUZZ=ON -DMLAAS_BUILD_TESTS=OFF -DMLAAS_WERROR=OFF >/dev/null
build_targets=()
for t in "${targets[@]}"; do read -r _ bin _ <<<"$t"; build_targets+=("$(basename "$bin")"); done
cmake --build build/fuzz --target "${build_targets[@]}" -j2

# Time: one chain of targets per core, each chain running SECONDS. Targets join the chain with
# the least weight so far (heaviest first); a chain shares its time by weight, at least 8 s each.
slots="$(nproc)"
((slots > ${#targets[@]})) && slots=${#targets[@]}
floor=8
chain_weight=() chain_items=()
for ((c = 0; c < slots; ++c)); do chain_weight[c]=0 chain_items[c]=""; done
while read -r w i; do
  best=0
  for ((c = 1; c < slots; ++c)); do ((chain_weight[c] < chain_weight[best])) && best=$c; done
  chain_weight[best]=$((chain_weight[best] + w))
  chain_items[best]+="$i "
done < <(for i in "${!targets[@]}"; do read -r _ _ _ w _ <<<"${targets[$i]}"; echo "$w $i"; done | sort -rn)

export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:${UBSAN_OPTIONS:-}"
rm -rf build/fuzz/logs
mkdir -p build/fuzz/logs build/fuzz/artifacts
run() {  # run NAME BINARY SEEDS SECONDS MAX_LEN
  local corpus="build/fuzz/corpus/$1"
  mkdir -p "$corpus"
  nice "build/fuzz/$2" -max_total_time="$4" -max_len="$5" -rss_limit_mb=2048 -malloc_limit_mb=1024 -timeout=10 \
    -print_final_stats=1 -artifact_prefix="build/fuzz/artifacts/$1-" "$corpus" "$3" >"build/fuzz/logs/$1.log" 2>&1
}
chain() {  # chain C: the targets of chain C, one after another
  local items=(${chain_items[$1]}) i name bin seeds w max_len secs rc
  local spare=$((seconds - floor * ${#items[@]}))
  ((spare > 0)) || spare=0
  for i in "${items[@]}"; do
    read -r name bin seeds w max_len <<<"${targets[$i]}"
    secs=$((floor + spare * w / chain_weight[$1]))
    echo "fuzzing $name for $secs s" >&2
    rc=0
    run "$name" "$bin" "$seeds" "$secs" "$max_len" || rc=$?
    echo "$rc" >"build/fuzz/logs/$name.rc"
  done
}
for ((c = 0; c < slots; ++c)); do chain "$c" & done
wait

failed=()
for t in "${targets[@]}"; do
  read -r name _ <<<"$t"
  log="build/fuzz/logs/$name.log"
  status=ok
  [ "$(cat "build/fuzz/logs/$name.rc" 2>/dev/null)" = 0 ] || { status=FAILED; failed+=("$name"); }
  runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)"
  rss="$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -n1)"
  cov="$(grep -aoE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+/[^ ]+' "$log" | tail -n1)"
  echo "fuzz $name: $status, ${runs:-?} runs, ${cov:-no coverage line}, peak rss ${rss:-?} MB"
done
for name in "${failed[@]}"; do
  echo "---- build/fuzz/logs/$name.log (end)" >&2
  tail -n 40 "build/fuzz/logs/$name.log" >&2
done
[ "${#failed[@]}" -eq 0 ]
