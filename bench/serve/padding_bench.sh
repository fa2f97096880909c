#!/bin/bash
# Padding in a pass: the time of one Open Inference Protocol v2 request of 32 texts of mixed
# lengths (6-126 tokens) against 32 texts of the longest length, on a bert-SHAPE deployment
# (random weights). A pass pads to its longest text; the layers skip the padding, so the mixed
# batch costs about its real tokens (docs/serving.md).
#   bench/serve/padding_bench.sh [SHAPE=mini] (env MLAAS)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
MLAAS=${MLAAS:-$ROOT/build/test/src/cli/mlaas}; SHAPE=${1:-mini}; PORT=18197
WORK=$(mktemp -d /tmp/mlaas-padding-bench.XXXXXX); S=; trap '[ -n "$S" ] && kill $S 2>/dev/null; rm -rf $WORK' EXIT
python3 -c '
words = ["w%d" % i for i in range(500)]
open("'$WORK'/corpus.txt","w").write("\n".join(" ".join(words) for _ in range(20)))'
"$MLAAS" tokenizer train --model wordpiece --vocab-size 8000 --lowercase --special-tokens "[PAD],[UNK],[CLS],[SEP],[MASK]" --input $WORK/corpus.txt --output $WORK/data/objects/tok >/dev/null 2>&1
"$MLAAS" model init --preset bert-$SHAPE --objective text-classification --labels neg,pos --tokenizer $WORK/data/objects/tok --output $WORK/data/objects/models/m --seed 1 >/dev/null 2>&1
"$MLAAS" serve --port $PORT --data-dir $WORK/data --threads 2 --log-level warn > $WORK/s.log 2>&1 & S=$!
for _ in $(seq 100); do curl -sf localhost:$PORT/healthz >/dev/null && break; sleep 0.2; done
curl -sf -XPOST localhost:$PORT/api/v1/deployments -H 'Content-Type: application/json' -d '{"name": "m", "model": {"path": "models/m", "objective": "text-classification"}}' >/dev/null 2>&1
until curl -sf localhost:$PORT/v2/models/m/ready >/dev/null; do sleep 0.05; done
python3 - $PORT <<'PY'
import json, sys, time, urllib.request, statistics
port = sys.argv[1]
def text(n, k): return " ".join("w%d" % ((k * 7 + i) % 500) for i in range(n))
sets = {"mixed, 6-126 tokens": [text(4 + (120 * k) // 31, k) for k in range(32)],
        "all 126 tokens": [text(124, k) for k in range(32)]}
p50, tokens = {}, {}
for name, texts in sets.items():
    body = json.dumps({"inputs": [{"name": "text", "datatype": "BYTES", "shape": [len(texts)], "data": texts}]}).encode()
    times = []
    for i in range(18):
        t0 = time.perf_counter()
        r = urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/v2/models/m/infer", body, {"Content-Type": "application/json"}))
        json.load(r)
        if i >= 3: times.append(1e3 * (time.perf_counter() - t0))
    p50[name], tokens[name] = statistics.median(times), sum(len(t.split()) + 2 for t in texts)
    print(f"{name}: {tokens[name]} tokens, p50 {p50[name]:.1f} ms")
(mixed, full), (n_mixed, n_full) = p50.values(), tokens.values()
print(f"mixed / all long: {mixed / full:.2f} of the time for {n_mixed / n_full:.2f} of the tokens")
PY
