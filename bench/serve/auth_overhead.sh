#!/bin/bash
# What checking API tokens costs a served request (issue 19: auth on must keep >= 0.97x the
# requests/s of auth off): the same bert-mini deployment served by one data directory, the
# server started alternately with --auth off and --auth on (wrk sending the admin token), the
# same wrk load each time (one short text per request, CONNS connections, DUR seconds), ROUNDS
# rounds of each; medians and their ratio.
# Usage: bench/serve/auth_overhead.sh [DUR=10]   (env: CONNS=16, ROUNDS=3, MLAAS=..., THREADS=2)
set -euo pipefail
source "$(dirname "$0")/common.sh"
PORT=18183
TOKEN=auth-overhead-admin-token-0123456789
WORK=$(mktemp -d /tmp/mlaas-auth-bench.XXXXXX)
SERVER=""
cleanup() { [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

mini_model "$WORK/data/objects"

start() {  # start AUTH: the server on the data directory, the deployment ready
  MLAAS_ADMIN_TOKEN=$TOKEN "$MLAAS" serve --port $PORT --data-dir "$WORK/data" --threads "$THREADS" --auth "$1" \
    --log-level warn >>"$WORK/server.log" 2>&1 &
  SERVER=$!
  for _ in $(seq 300); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.2; done
  if ! curl -sf -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT/api/v1/deployments/mini" >/dev/null; then
    curl -sf -XPOST -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
      "http://127.0.0.1:$PORT/api/v1/deployments" \
      -d '{"name": "mini", "model": {"path": "models/mini", "objective": "text-classification"}}' >/dev/null
  fi
  until curl -sf -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT/v2/models/mini/ready" >/dev/null; do sleep 0.05; done
}
stop() { kill "$SERVER"; wait "$SERVER" 2>/dev/null || true; SERVER=""; }
load() {  # load: requests/s of one wrk run with the token
  local url="http://127.0.0.1:$PORT/v2/models/mini/infer"
  wrk -t2 -c"$CONNS" -d2s -H "Authorization: Bearer $TOKEN" -s "$ROOT/bench/serve/wrk_v2.lua" "$url" >/dev/null
  wrk -t2 -c"$CONNS" -d"${DUR}s" -H "Authorization: Bearer $TOKEN" -s "$ROOT/bench/serve/wrk_v2.lua" "$url" |
    awk '/Non-2xx/ {bad=1} /Requests\/sec/ {rps=$2} END {if (bad) print "non-2xx answers" > "/dev/stderr"; print rps}'
}
off=() on=()
for r in $(seq "$ROUNDS"); do
  start off; off+=("$(load)"); stop
  start on; on+=("$(load)"); stop
  echo "round $r: auth off ${off[-1]} req/s, auth on ${on[-1]} req/s"
done
/usr/bin/python3 - "${off[*]}" "${on[*]}" <<'PY'
import statistics, sys
off = [float(x) for x in sys.argv[1].split()]
on = [float(x) for x in sys.argv[2].split()]
a, b = statistics.median(off), statistics.median(on)
print(f"bert-mini, {len(off)} rounds: auth off {a:.1f} req/s, auth on {b:.1f} req/s (medians): auth on = {b / a:.3f}x auth off")
PY
