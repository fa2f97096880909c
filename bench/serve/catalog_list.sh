#!/bin/bash
# Catalog listing at scale (issue 19: listing 10,000 registered models with a query answers in
# < 20 ms at p50): a server whose catalog holds N models (names, descriptions, tags, owners,
# visibility and popularity varied; rows written straight into its database, as N registrations
# would leave them), then REQUESTS timed GETs of each listing query over one keep-alive
# connection, as an anonymous caller (public entries only) and as a user (public + own). Prints
# p50/p90 per query and p50 against the 20 ms budget.
# Usage: bench/serve/catalog_list.sh [N=10000]   (env: REQUESTS=200, MLAAS=...)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
MLAAS=${MLAAS:-$ROOT/build/test/src/cli/mlaas}
N=${1:-10000}
REQUESTS=${REQUESTS:-200}
PORT=18184
TOKEN=catalog-bench-admin-token-0123456789
WORK=$(mktemp -d /tmp/mlaas-catalog-bench.XXXXXX)
SERVER=""
cleanup() { [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

MLAAS_ADMIN_TOKEN=$TOKEN "$MLAAS" serve --port $PORT --data-dir "$WORK/data" --auth on --log-level warn \
  >>"$WORK/server.log" 2>&1 &
SERVER=$!
for _ in $(seq 300); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.2; done
USER_TOKEN=$(curl -sf -XPOST -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT/api/v1/tokens" \
  -d '{"user": "user7", "scopes": ["read"]}' | /usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])')

/usr/bin/python3 - "$WORK/data/mlaas.db" "$N" "$PORT" "$REQUESTS" "$USER_TOKEN" <<'PY'
import http.client, json, random, sqlite3, statistics, sys, time
db, n, port, requests, token = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
rng = random.Random(1)
words = "bert roberta distil sentiment review legal medical finance news tweet classifier ner qa embedding small base large multilingual".split()
objectives = ["text-classification", "masked-lm", "sentence-embedding", "token-classification", "question-answering"]
rows = []
for i in range(n):
    name = "-".join(rng.sample(words, 2)) + f"-{i}"
    description = " ".join(rng.choice(words) for _ in range(12))
    tags = json.dumps(sorted(set(rng.sample(words, 3))))
    downloads, predictions, deployments = rng.randrange(1000), rng.randrange(5000), rng.randrange(20)
    rows.append(("model", name, f"user{i % 50}", "public" if i % 4 else "private", description,
                 rng.choice(objectives), tags, 1, downloads, predictions, deployments,
                 downloads + predictions + deployments, 1_700_000_000_000 + i * 1000, 1_700_000_000_000 + i * 1000))
con = sqlite3.connect(db, timeout=30)
con.executemany("INSERT INTO catalog_entries (kind, name, owner, visibility, description, objective, tags, latest_version, "
                "downloads, predictions, deployments, popularity, created_ms, updated_ms) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
con.commit()
con.close()

queries = {
    "q=sentiment, sort=popular": "/api/v1/catalog/models?q=sentiment&sort=popular&limit=50",
    "q=legal review, recent": "/api/v1/catalog/models?q=legal&limit=50",
    "tag + objective filter": "/api/v1/catalog/models?tag=bert&objective=masked-lm&limit=50",
    "sort=name, 3rd page": None,
    "no query, recent": "/api/v1/catalog/models?limit=50",
    "q matching nothing (scan)": "/api/v1/catalog/models?q=zzz-none&limit=50",
}
conn = http.client.HTTPConnection("127.0.0.1", port)
def get(path, auth):
    headers = {"Authorization": "Bearer " + token} if auth else {}
    t = time.perf_counter()
    conn.request("GET", path, headers=headers)
    r = conn.getresponse()
    body = r.read()
    elapsed = time.perf_counter() - t
    assert r.status == 200, body[:300]
    return elapsed, json.loads(body)
# The third page of the name order, by its cursor.
_, page = get("/api/v1/catalog/models?sort=name&limit=50", False)
_, page = get("/api/v1/catalog/models?sort=name&limit=50&cursor=" + page["next_cursor"], False)
queries["sort=name, 3rd page"] = "/api/v1/catalog/models?sort=name&limit=50&cursor=" + page["next_cursor"]
worst = 0.0
for who, auth in (("anonymous", False), ("user", True)):
    for label, path in queries.items():
        for _ in range(10):
            get(path, auth)
        times = sorted(get(path, auth)[0] * 1000 for _ in range(requests))
        _, answer = get(path, auth)
        p50, p90 = statistics.median(times), times[int(len(times) * 0.9)]
        worst = max(worst, p50)
        print(f"{who:9s} {label:28s} p50 {p50:6.2f} ms  p90 {p90:6.2f} ms  ({len(answer['models'])} entries)")
print(f"catalog of {n} models: slowest listing p50 {worst:.2f} ms; budget 20 ms: {worst / 20:.2f}x of it")
PY
