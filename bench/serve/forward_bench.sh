#!/bin/bash
# What handing an inference request to another API server costs (a deployment pinned to a
# labelled server, asked through a server that does not hold it: api/forward.cpp): two servers
# on one database (SQLite, shared), the deployment loaded only on server A (label "bench"),
# the same wrk load sent straight to A and through B, alternately, ROUNDS rounds: requests/s at
# CONNS connections and mean latency at one connection; medians and the ratios forwarded/direct.
# Usage: bench/serve/forward_bench.sh [DUR=10]   (env: CONNS=16, ROUNDS=3, MLAAS=..., THREADS=2)
set -euo pipefail
source "$(dirname "$0")/common.sh"
PORT_A=18191
PORT_B=18192
WORK=$(mktemp -d /tmp/mlaas-forward-bench.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

mini_model "$WORK/a/objects"

# A holds the model and the label; B shares A's database and serves nothing itself.
"$MLAAS" serve --port $PORT_A --data-dir "$WORK/a" --threads "$THREADS" --workers 0 --labels bench \
  --log-level warn >"$WORK/a.log" 2>&1 &
PIDS+=($!)
up() {  # up PORT LOG: waits for the server's /healthz, or shows its log and fails
  for _ in $(seq 300); do curl -sf "http://127.0.0.1:$1/healthz" >/dev/null && return 0; sleep 0.2; done
  echo "the server on port $1 did not start:"; cat "$2"; exit 1
}
up $PORT_A "$WORK/a.log"
"$MLAAS" serve --port $PORT_B --data-dir "$WORK/b" --database "$WORK/a/mlaas.db" --threads "$THREADS" --workers 0 \
  --log-level warn >"$WORK/b.log" 2>&1 &
PIDS+=($!)
up $PORT_B "$WORK/b.log"
curl -sf -XPOST -H 'Content-Type: application/json' "http://127.0.0.1:$PORT_A/api/v1/deployments" \
  -d '{"name": "mini", "model": {"path": "models/mini", "objective": "text-classification"},
       "resources": {"labels": ["bench"]}}' >/dev/null
for port in $PORT_A $PORT_B; do
  for _ in $(seq 600); do curl -sf "http://127.0.0.1:$port/v2/models/mini/ready" >/dev/null && break; sleep 0.1; done
done
curl -sf "http://127.0.0.1:$PORT_B/v2/models/mini/ready" >/dev/null || { echo "B does not reach the deployment"; cat "$WORK/b.log"; exit 1; }

run() {  # run PORT CONNS SECONDS: wrk's "rps latency_ms" (mean latency)
  local url="http://127.0.0.1:$1/v2/models/mini/infer"
  wrk -t"$(( $2 < 2 ? $2 : 2 ))" -c"$2" -d"$3s" -s "$ROOT/bench/serve/wrk_v2.lua" "$url" | awk '
    /Non-2xx/ {bad=1}
    /Latency/ {v=$2; ms=v+0; if (v ~ /us$/) ms/=1000; else if (v ~ /[^m]s$/) ms*=1000}
    /Requests\/sec/ {rps=$2}
    END {if (bad) {print "non-2xx answers: not counted" > "/dev/stderr"; exit 1} print rps, ms}'
}
run $PORT_A "$CONNS" 2 >/dev/null
run $PORT_B "$CONNS" 2 >/dev/null
direct=() forwarded=() direct1=() forwarded1=()
for r in $(seq "$ROUNDS"); do
  out=$(run $PORT_A "$CONNS" "$DUR"); direct+=("${out% *}")
  out=$(run $PORT_B "$CONNS" "$DUR"); forwarded+=("${out% *}")
  out=$(run $PORT_A 1 "$DUR"); direct1+=("${out#* }")
  out=$(run $PORT_B 1 "$DUR"); forwarded1+=("${out#* }")
  echo "round $r: $CONNS connections: direct ${direct[-1]} req/s, forwarded ${forwarded[-1]} req/s;" \
       "1 connection: direct ${direct1[-1]} ms, forwarded ${forwarded1[-1]} ms"
done
/usr/bin/python3 - "${direct[*]}" "${forwarded[*]}" "${direct1[*]}" "${forwarded1[*]}" "$CONNS" <<'PY'
import statistics, sys
d, f, d1, f1 = ([float(x) for x in a.split()] for a in sys.argv[1:5])
a, b, c, e = (statistics.median(x) for x in (d, f, d1, f1))
print(f"bert-mini, {len(d)} rounds (medians): {sys.argv[5]} connections: direct {a:.1f} req/s, forwarded {b:.1f} req/s "
      f"= {b / a:.3f}x; 1 connection: direct {c:.2f} ms, forwarded {e:.2f} ms (+{e - c:.2f} ms)")
PY
