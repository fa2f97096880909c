#!/bin/bash
# Index-build benchmark: `mlaas index` (the vector-indexing task on a running server) embeds
# N documents (default 50,000: the Debian search corpus topped up with MLM-corpus
# descriptions, ../shared/data) with a bert-mini-shaped model (hidden 256, 4 layers, 128
# positions, WordPiece 8000 trained on the same texts) into a Flat and an HNSW store; beside
# it, in the same run, PyTorch eager + FAISS from Python embed the same token ids
# (bench/vector/peer_index.py). Prints docs/s, the share of time embedding vs indexing and
# the ratio.
# Usage: bench/vector/index_bench.sh [N=50000]   (env: MLAAS=path/to/mlaas, THREADS=2,
#        SHARED=../shared)   Needs python3-torch and python3-faiss (apt) for the peer.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SHARED=${SHARED:-$ROOT/../shared}
MLAAS=${MLAAS:-$ROOT/build/test/src/cli/mlaas}
N=${1:-50000}
THREADS=${THREADS:-2}
PORT=18282
WORK=$(mktemp -d /tmp/mlaas-index-bench.XXXXXX)
SERVER=""
cleanup() {
  [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
mkdir -p "$WORK/data/objects/models"

/usr/bin/python3 - "$SHARED/data" "$WORK" "$N" <<'PY'
import csv, sys
csv.field_size_limit(1 << 30)
src, work, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
rows = []
for name, id_col in (("debian_search_corpus.csv", "doc_id"), ("debian_mlm_train.csv", "id")):
    with open(f"{src}/{name}", newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            if len(rows) == n: break
            rows.append((f"{name[:10]}:{r[id_col]}", " ".join(r["text"].split())))
with open(f"{work}/data/objects/docs.csv", "w", newline="", encoding="utf-8") as f:
    w = csv.writer(f)
    w.writerow(["doc_id", "text"])
    w.writerows(rows)
with open(f"{work}/texts.txt", "w", encoding="utf-8") as f:
    f.writelines(t + "\n" for _, t in rows)
print(f"{len(rows)} documents, {sum(len(t) for _, t in rows) / len(rows):.0f} characters on average")
PY

"$MLAAS" tokenizer train --model wordpiece --vocab-size 8000 --lowercase \
  --special-tokens "[PAD],[UNK],[CLS],[SEP],[MASK]" --input "$WORK/texts.txt" --output "$WORK/data/objects/tok" >/dev/null
cat >"$WORK/mini.json" <<'JSON'
{"model_type": "bert", "hidden_size": 256, "num_hidden_layers": 4, "num_attention_heads": 4,
 "intermediate_size": 1024, "max_position_embeddings": 128, "hidden_act": "gelu"}
JSON
"$MLAAS" model init --config "$WORK/mini.json" --objective no-objective --tokenizer "$WORK/data/objects/tok" \
  --output "$WORK/data/objects/models/mini" --seed 1 >/dev/null
"$MLAAS" tokenizer encode --tokenizer "$WORK/data/objects/tok" --input "$WORK/texts.txt" --output "$WORK/ids.jsonl"

"$MLAAS" serve --data-dir "$WORK/data" --port $PORT --threads "$THREADS" --workers 1 --log-level warn &
SERVER=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.2; done

for index in Flat HNSW; do
  "$MLAAS" --server "http://127.0.0.1:$PORT" --json index --model models/mini --dataset docs.csv \
    --text-column text --id-column doc_id --save "stores/$index" --index "$index" --follow >"$WORK/$index.json"
  /usr/bin/python3 -c '
import json, sys
t = json.load(open(sys.argv[1]))
e, i, el = t["embedding_seconds"], t["index_seconds"], t["elapsed_seconds"]
print(json.dumps(dict(impl="mlaas", index=sys.argv[2], documents=t["documents"], tokens=t["tokens"],
                      elapsed_seconds=round(el, 2), embedding_seconds=round(e, 2), index_seconds=round(i, 3),
                      embedding_share=round(e / el, 3), index_share=round(i / el, 4),
                      docs_per_second=round(t["docs_per_second"], 1))))' "$WORK/$index.json" "$index" | tee -a "$WORK/ours.jsonl"
done
kill "$SERVER"; wait "$SERVER" 2>/dev/null || true; SERVER=""

OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 "$ROOT/bench/vector/peer_index.py" "$WORK/ids.jsonl" "$SHARED/bench" "$THREADS" | tee "$WORK/peer.json"
/usr/bin/python3 - "$WORK/ours.jsonl" "$WORK/peer.json" <<'PY'
import json, sys
ours = {r["index"]: r for r in map(json.loads, open(sys.argv[1]))}
peer = json.load(open(sys.argv[2]))
for index, key in (("Flat", "docs_per_second_flat"), ("HNSW", "docs_per_second_hnsw")):
    o = ours[index]
    print(f"{index}: mlaas {o['docs_per_second']} docs/s (embedding {100 * o['embedding_share']:.1f}% of the task, "
          f"index {100 * o['index_share']:.2f}%), peer {peer[key]} docs/s: {o['docs_per_second'] / peer[key]:.2f}x")
PY
