#!/bin/bash
# Serving benchmark: mlaas (a deployment, dynamic batching, Open Inference Protocol v2) beside
# the FastAPI + Uvicorn + PyTorch peer of ../shared/bench, in one run, under the same wrk load:
#   1. load: 16 and 64 connections, one short text per request (27 words), DUR seconds each,
#      text classification in the bert-mini and bert-base shapes: requests/s, p50, p99;
#   2. single-request latency (one connection) of bert-mini against ONNX Runtime (npm
#      onnxruntime-node) running the same model on the same token count at batch 1, in process
#      (bench/onnx/ort_peer.js) and behind node's http server (bench/onnx/ort_serve.js, the same
#      v2 request through wrk);
#   3. cold start: POST /api/v1/deployments to ready, per shape, from local disk.
# Usage: bench/serve/serve_bench.sh [DUR=30]   (env: SHAPES="mini base", CONNS="16 64",
#        DTYPES="float32 bfloat16" (ours: a deployment per shape and dtype; the peer runs float32),
#        MLAAS=path/to/mlaas, SHARED=../shared/bench, THREADS=2)
# Needs: wrk, python3-torch, python3-fastapi, python3-uvicorn (apt); `npm ci --ignore-scripts`
# in bench/onnx for the ONNX Runtime peer.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SHARED=${SHARED:-$ROOT/../shared/bench}
MLAAS=${MLAAS:-$ROOT/build/test/src/cli/mlaas}
DUR=${1:-30}
SHAPES=${SHAPES:-mini base}
CONNS=${CONNS:-16 64}
DTYPES=${DTYPES:-float32 bfloat16}
THREADS=${THREADS:-2}
PORT=18181
PEER_PORT=18008
WORK=$(mktemp -d /tmp/mlaas-serve-bench.XXXXXX)
RESULTS=$WORK/results.jsonl
SERVER=""
PEER=""
cleanup() {
  [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null || true
  [ -n "$PEER" ] && kill "$PEER" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
for tool in wrk curl /usr/bin/python3; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install wrk curl python3-fastapi python3-uvicorn)"; exit 1; }
done

# wrk output -> one JSON line: impl, shape, conns, rps, p50_ms, p99_ms, non2xx.
parse_wrk() {
  /usr/bin/python3 -c '
import json, re, sys
t = sys.stdin.read()
def ms(s):
    v, u = re.match(r"([\d.]+)(us|ms|s)", s).groups(); return float(v) * {"us": 1e-3, "ms": 1, "s": 1e3}[u]
p = {k: ms(v) for k, v in re.findall(r"^\s+(50|99)%\s+(\S+)", t, re.M)}
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
err = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", t)
print(json.dumps({"impl": sys.argv[1], "shape": sys.argv[2], "conns": int(sys.argv[3]), "rps": rps,
                  "p50_ms": p["50"], "p99_ms": p["99"], "non2xx": int(err.group(1)) if err else 0}))
' "$@"
}

wait_http() {
  for _ in $(seq 300); do curl -sf "$1" >/dev/null && return 0; sleep 0.2; done
  echo "no answer from $1"; return 1
}

# A WordPiece vocabulary in which every word of the load text is one token, as in the peer's
# hashing tokenizer: both sides then run 28-29 tokens per request.
mkdir -p "$WORK/data/objects"
/usr/bin/python3 -c '
base = "the quick brown fox jumps over lazy dog while platform trains small bert model on two cores".split()
words = [w + str(d) for w in base for d in range(7)]
with open("'"$WORK"'/corpus.txt", "w") as f:
    for _ in range(50): f.write(" ".join(words) + "\n")'
"$MLAAS" tokenizer train --model wordpiece --vocab-size 8000 --lowercase \
  --special-tokens "[PAD],[UNK],[CLS],[SEP],[MASK]" --input "$WORK/corpus.txt" --output "$WORK/data/objects/tok" >/dev/null
for shape in $SHAPES; do
  "$MLAAS" model init --preset "bert-$shape" --objective text-classification --labels neg,pos \
    --tokenizer "$WORK/data/objects/tok" --output "$WORK/data/objects/models/$shape" --seed 1 >/dev/null
done

"$MLAAS" serve --port $PORT --data-dir "$WORK/data" --threads "$THREADS" --log-level warn >"$WORK/server.log" 2>&1 &
SERVER=$!
wait_http "http://127.0.0.1:$PORT/healthz"

# The deployment of a shape in a dtype: "mini" (float32), "mini-bf16" (bfloat16).
deployment() { if [ "$2" = float32 ]; then echo "$1"; else echo "$1-bf16"; fi; }

# 3. Cold start (the files were just written: they are in the page cache, as a model on a
# local disk that was read recently is).
for shape in $SHAPES; do
  for dtype in $DTYPES; do
    name=$(deployment "$shape" "$dtype")
    t0=$(date +%s%N)
    curl -sf -XPOST "http://127.0.0.1:$PORT/api/v1/deployments" -H 'Content-Type: application/json' \
      -d "{\"name\": \"$name\", \"dtype\": \"$dtype\", \"model\": {\"path\": \"models/$shape\", \"objective\": \"text-classification\"}}" >/dev/null
    until curl -sf "http://127.0.0.1:$PORT/v2/models/$name/ready" >/dev/null; do sleep 0.005; done
    t1=$(date +%s%N)
    load=$(curl -sf "http://127.0.0.1:$PORT/api/v1/deployments/$name" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["versions"][0]["load_seconds"])')
    echo "{\"impl\": \"mlaas\", \"kind\": \"cold_start\", \"shape\": \"$name\", \"seconds\": $(( (t1 - t0) / 1000000 ))e-3, \"load_seconds\": $load}" | tee -a "$RESULTS"
  done
done
tokens=$(curl -sf -XPOST "http://127.0.0.1:$PORT/api/v1/ml/nlp/predict" -H 'Content-Type: application/json' \
  -d "{\"model\": {\"path\": \"models/mini\", \"objective\": \"text-classification\"}, \"predict_input\": {\"input_text\": [\"$(WORDS=27 /usr/bin/python3 -c '
import os
base = "the quick brown fox jumps over lazy dog while platform trains small bert model on two cores".split()
print(" ".join(base[(i - 1) % len(base)] + str(i % 7) for i in range(1, 28)))')\"]}}" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["tokens"])')
echo "tokens per request (ours, with [CLS] and [SEP]): $tokens"

# 1. Load, ours.
for shape in $SHAPES; do
  for dtype in $DTYPES; do
    name=$(deployment "$shape" "$dtype")
    url="http://127.0.0.1:$PORT/v2/models/$name/infer"
    wrk -t2 -c16 -d2s -s "$ROOT/bench/serve/wrk_v2.lua" "$url" >/dev/null  # warm-up
    for c in $CONNS; do
      wrk -t2 -c"$c" -d"${DUR}s" --latency --timeout 10s -s "$ROOT/bench/serve/wrk_v2.lua" "$url" | parse_wrk mlaas "$name" "$c" | tee -a "$RESULTS"
    done
  done
done

# 2. Single-request latency, ours (one connection, requests back to back).
for dtype in $DTYPES; do
  name=$(deployment mini "$dtype")
  # Warm-up; also lets the passes queued by the last load test drain.
  wrk -t1 -c1 -d2s -s "$ROOT/bench/serve/wrk_v2.lua" "http://127.0.0.1:$PORT/v2/models/$name/infer" >/dev/null
  wrk -t1 -c1 -d10s --latency -s "$ROOT/bench/serve/wrk_v2.lua" "http://127.0.0.1:$PORT/v2/models/$name/infer" |
    parse_wrk mlaas-latency "$name" 1 | tee -a "$RESULTS"
done
kill $SERVER; wait $SERVER 2>/dev/null || true; SERVER=""

# 1. Load, the FastAPI peer (as ../shared/bench/run_serve_bench.sh runs it).
for shape in $SHAPES; do
  OMP_WAIT_POLICY=PASSIVE OPENBLAS_NUM_THREADS=1 /usr/bin/python3 "$ROOT/bench/serve/peer_serve.py" "$SHARED" "$shape" $PEER_PORT \
    >"$WORK/peer.log" 2>&1 &
  PEER=$!
  wait_http "http://127.0.0.1:$PEER_PORT/health"
  WORDS=27 wrk -t2 -c16 -d2s -s "$SHARED/wrk_predict.lua" "http://127.0.0.1:$PEER_PORT/predict" >/dev/null
  for c in $CONNS; do
    WORDS=27 wrk -t2 -c"$c" -d"${DUR}s" --latency --timeout 10s -s "$SHARED/wrk_predict.lua" "http://127.0.0.1:$PEER_PORT/predict" |
      parse_wrk fastapi "$shape" "$c" | tee -a "$RESULTS"
  done
  kill $PEER; wait $PEER 2>/dev/null || true; PEER=""
done

# 2. ONNX Runtime, batch 1, the same model and token count, in process.
if [ -d "$ROOT/bench/onnx/node_modules/onnxruntime-node" ] && echo "$SHAPES" | grep -qw mini; then
  OPENBLAS_NUM_THREADS=1 /usr/bin/python3 "$ROOT/bench/onnx/export_onnx.py" "$WORK/data/objects/models/mini" "$WORK/mini.onnx" >/dev/null
  vocab=$(/usr/bin/python3 -c 'import json; print(json.load(open("'"$WORK"'/data/objects/models/mini/config.json"))["vocab_size"])')
  node "$ROOT/bench/onnx/ort_peer.js" "$WORK/mini.onnx" "$THREADS" "$vocab" "$tokens" 1 | tee -a "$RESULTS"
  # The same, behind HTTP (node's http server, the same v2 request; it skips tokenizing).
  node "$ROOT/bench/onnx/ort_serve.js" "$WORK/mini.onnx" "$THREADS" "$vocab" "$tokens" $PEER_PORT >"$WORK/ort.log" 2>&1 &
  PEER=$!
  wait_http "http://127.0.0.1:$PEER_PORT/health"
  wrk -t1 -c1 -d2s -s "$ROOT/bench/serve/wrk_v2.lua" "http://127.0.0.1:$PEER_PORT/v2/models/mini/infer" >/dev/null
  wrk -t1 -c1 -d10s --latency -s "$ROOT/bench/serve/wrk_v2.lua" "http://127.0.0.1:$PEER_PORT/v2/models/mini/infer" |
    parse_wrk ort-http mini 1 | tee -a "$RESULTS"
  kill $PEER; wait $PEER 2>/dev/null || true; PEER=""
else
  echo "(ONNX Runtime peer skipped: run npm ci --ignore-scripts in bench/onnx)"
fi

/usr/bin/python3 - "$RESULTS" <<'EOF'
import json, os, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
load = {(r["impl"], r["shape"], r["conns"]): r for r in rows if r.get("impl") in ("mlaas", "fastapi") and "rps" in r}
print("\n| shape | connections | mlaas req/s | p50 ms | p99 ms | FastAPI req/s | p50 ms | p99 ms | throughput ratio | our p99 < their p50 |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
for (impl, shape, c), r in sorted(load.items()):
    peer = ("fastapi", shape.removesuffix("-bf16"), c)  # the peer runs float32
    if impl != "mlaas" or peer not in load: continue
    p = load[peer]
    errors = f" ({r['non2xx']} non-2xx)" if r["non2xx"] else ""
    print(f"| bert-{shape.replace('-bf16', ', bf16')} | {c} | {r['rps']:.1f}{errors} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {p['rps']:.1f} | "
          f"{p['p50_ms']:.1f} | {p['p99_ms']:.1f} | {r['rps'] / p['rps']:.2f}x | {'yes' if r['p99_ms'] < p['p50_ms'] else 'no'} |")
lat = [r for r in rows if r.get("impl") == "mlaas-latency"]
ort = [r for r in rows if r.get("impl") == "ort"]
ort_http = [r for r in rows if r.get("impl") == "ort-http"]
for r in lat if ort else []:
    ours, theirs = r["p50_ms"], ort[0]["ms_per_batch"]
    print(f"\nSingle request, bert-{r['shape']}, {ort[0]['seq']} tokens: mlaas {ours:.2f} ms (p50, over HTTP) vs ONNX Runtime "
          f"float32 {theirs:.2f} ms (in process, batch 1): {ours / theirs:.2f}x its latency")
    if ort_http:
        theirs = ort_http[0]["p50_ms"]
        print(f"  both over HTTP: mlaas {ours:.2f} ms vs ONNX Runtime behind node's http {theirs:.2f} ms (p50): "
              f"{ours / theirs:.2f}x its latency")
for r in rows:
    if r.get("kind") == "cold_start":
        print(f"Cold start bert-{r['shape']}: {r['seconds']:.3f} s from POST to ready (model load {r['load_seconds']:.3f} s)")

# Each measure for the benchmark guard (bench/check.sh): ratio > 1 means mlaas is better.
records = os.environ.get("MLAAS_BENCH_RECORDS")
if records:
    with open(records, "a") as out:
        def record(id, what, ours, peer, unit, higher_is_better=True):
            if ours > 0 and peer > 0:
                out.write(json.dumps({"id": id, "what": what, "ours": ours, "peer": peer, "unit": unit,
                                      "ratio": ours / peer if higher_is_better else peer / ours}) + "\n")
        for (impl, shape, c), r in sorted(load.items()):
            peer = ("fastapi", shape.removesuffix("-bf16"), c)
            if impl == "mlaas" and peer in load and r["non2xx"] == 0:
                record(f"serve.{shape}.c{c}.fastapi", f"bert-{shape}, {c} connections, requests/s vs FastAPI + PyTorch",
                       r["rps"], load[peer]["rps"], "requests/s")
        for r in lat if ort else []:
            record(f"serve.{r['shape']}.latency.ort", f"bert-{r['shape']} single request p50 (HTTP) vs ONNX Runtime in process",
                   r["p50_ms"], ort[0]["ms_per_batch"], "ms", False)
            if ort_http:
                record(f"serve.{r['shape']}.latency.ort-http", f"bert-{r['shape']} single request p50 vs ONNX Runtime behind HTTP",
                       r["p50_ms"], ort_http[0]["p50_ms"], "ms", False)
EOF
