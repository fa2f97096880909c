#!/bin/bash
# The benchmark guard: runs every CPU benchmark docs/benchmarks.md cites, ours beside its peer,
# and compares each ratio (never an absolute time: the machine may differ) with the figure
# recorded in docs/benchmarks.json; prints every measure that fell more than its tolerance
# (15%) below its record, with the command that re-runs it at full length. Exit 1 when one did.
# A tool for contributors, not a timed test (README, "Contributing").
#
#   bench/check.sh [--full] [--record] [--only tokenizers,nn,train,vector,serve,storage,vision,vision_train]
#     (default)  short mode, ~5 minutes on 2 cores: fewer rounds and steps (the inference benchmark
#                keeps its 3 rounds: the PyTorch peer moves by 30% in one), a 10 s serving round
#     --full     each benchmark at the length its docs section was measured at (~17 minutes)
#     --record   write this run's measures into docs/benchmarks.json (after a quiet --full run;
#                with --only, the other benchmarks' records are kept)
#   env: BUILD (default build/release if present, else build/test), SHARED (default ../shared),
#        LOGS (default /tmp/mlaas-bench-check: each benchmark's output, NAME.log)
#
# Peers: ../shared/bench (PyTorch models, FastAPI server, FAISS from Python), Hugging Face
# tokenizers (tests/tokenizers/oracle), ONNX Runtime, wrk: `scripts/install-deps.sh --bench`
# installs the ones from Debian and npm. A measure whose peer is missing is listed as not
# measured, never as a regression.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
MODE=short
RECORD=0
ONLY="tokenizers nn train vector serve storage vision vision_train"
while [ $# -gt 0 ]; do
  case "$1" in
    --full) MODE=full ;;
    --record) RECORD=1 ;;
    --only) ONLY=${2//,/ }; shift ;;
    -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
SHARED=$(cd "${SHARED:-$ROOT/../shared}" 2>/dev/null && pwd || echo "${SHARED:-$ROOT/../shared}")
if [ -z "${BUILD:-}" ]; then
  if [ -d build/release ]; then BUILD=build/release; else BUILD=build/test; fi
fi
[ -d "$BUILD" ] || { echo "no build in $BUILD: run ./scripts/build.sh release (or set BUILD)" >&2; exit 2; }
echo "building the benchmarks in $BUILD"
cmake --build "$BUILD" --target tokenizer_bench nn_bench train_bench vector_bench storage_bench vision_bench vision_train_bench mlaas >/dev/null
# Each benchmark's whole output stays in $LOGS (its tables are what docs/benchmarks.md shows).
LOGS=${LOGS:-/tmp/mlaas-bench-check}
mkdir -p "$LOGS"
rm -f "$LOGS"/*.log "$LOGS/run.jsonl" "$LOGS/mlm.txt"
WORK=$LOGS
export MLAAS_BENCH_RECORDS=$WORK/run.jsonl
: >"$MLAAS_BENCH_RECORDS"

# run NAME FULL_COMMAND SHORT_COMMAND: the benchmark's output goes to its log; its measures
# to $MLAAS_BENCH_RECORDS, after a line naming the benchmark and its full-length command.
run() {
  local name=$1 full=$2 short=$3 cmd
  case " $ONLY " in *" $name "*) ;; *) return 0 ;; esac
  cmd=$([ "$MODE" = full ] && echo "$full" || echo "$short")
  /usr/bin/python3 -c 'import json, sys; print(json.dumps({"bench": sys.argv[1], "command": sys.argv[2]}))' \
    "$name" "$full" >>"$MLAAS_BENCH_RECORDS"
  echo "== $name ($MODE): $cmd  > $WORK/$name.log"
  local t0=$SECONDS
  if ! (eval "$cmd") >"$WORK/$name.log" 2>&1; then
    echo "   failed; the end of its output:"
    tail -n 20 "$WORK/$name.log" | sed 's/^/   /'
  fi
  echo "   $((SECONDS - t0)) s"
}

CORPUS=$WORK/mlm.txt
if [ -f "$SHARED/data/debian_mlm_train.csv" ]; then
  /usr/bin/python3 -c "import csv, sys; print('\n'.join(r['text'] for r in csv.DictReader(open(sys.argv[1]))))" \
    "$SHARED/data/debian_mlm_train.csv" >"$CORPUS"
else
  echo "(no $SHARED/data/debian_mlm_train.csv: the tokenizer benchmark is skipped)"
  ONLY=${ONLY//tokenizers/}
fi

run tokenizers "$BUILD/bench/tokenizer_bench $CORPUS" "$BUILD/bench/tokenizer_bench $CORPUS"
# Each as docs/benchmarks.md runs it: the engine benchmarks under OMP_WAIT_POLICY=PASSIVE, the
# server with libgomp's default (what scripts/start.sh runs).
run nn "OMP_WAIT_POLICY=PASSIVE $BUILD/bench/nn_bench --threads 1 --rounds 3 --shared $SHARED" \
  "OMP_WAIT_POLICY=PASSIVE $BUILD/bench/nn_bench --threads 1 --rounds 3 --pipeline no --shared $SHARED"
run train "OMP_WAIT_POLICY=PASSIVE $BUILD/bench/train_bench --threads 1 --steps 20 --rounds 3 --shared $SHARED" \
  "OMP_WAIT_POLICY=PASSIVE $BUILD/bench/train_bench --threads 1 --steps 8 --rounds 1 --shared $SHARED"
run vector "PEER=0 $BUILD/bench/vector_bench" "PEER=0 $BUILD/bench/vector_bench"
run serve "MLAAS=$BUILD/src/cli/mlaas SHARED=$SHARED/bench bench/serve/serve_bench.sh 30" \
  "MLAAS=$BUILD/src/cli/mlaas SHARED=$SHARED/bench SHAPES=mini CONNS=16 bench/serve/serve_bench.sh 10"
# S3 against `aws s3 cp` on s3rver, the hub against curl on a hub-shaped server (loopback).
run storage "$BUILD/bench/storage_bench --mib 1024 --hub-mib 400 --rounds 3" \
  "$BUILD/bench/storage_bench --mib 256 --hub-mib 100 --rounds 1"
# Image classification (ResNet-18) against PyTorch eager + torchvision, decode to label.
run vision "$BUILD/bench/vision_bench --threads 2 --rounds 60 --batch 32" \
  "$BUILD/bench/vision_bench --threads 2 --rounds 20 --batch 16"
# Image-classifier training (cnn-small, ResNet-18) against the same loop in PyTorch eager.
run vision_train "$BUILD/bench/vision_train_bench --threads 2 --images 8192" \
  "$BUILD/bench/vision_train_bench --threads 2 --images 2048"

ARGS=(docs/benchmarks.json "$MLAAS_BENCH_RECORDS" --mode "$MODE" --build "$BUILD")
((RECORD)) && ARGS+=(--write)
/usr/bin/python3 bench/check_records.py "${ARGS[@]}"
