#!/usr/bin/python3
"""Query -> package search quality through the running server: sends the queries of one split
of debian_search_queries.csv to POST /api/v1/ml/nlp/vector/search (top 10, in batches) in the
given modes and prints recall@1, recall@10 and MRR@10 per mode, one JSON line each.
Usage: search_eval.py URL QUERIES.csv SPLIT STORE MODEL OBJECTIVE MODE[:DENSE_WEIGHT]...
MODE: dense, lexical, hybrid (reciprocal-rank fusion) or linear (hybrid, linear fusion)."""
import csv
import json
import sys
import urllib.request

url, queries_csv, split, store, model, objective = sys.argv[1:7]
modes = sys.argv[7:]
rows = [r for r in csv.DictReader(open(queries_csv, encoding="utf-8")) if r["split"] == split]


def search(texts, mode, weight):
    inp = {"input_text": texts, "top_k": 10, "mode": "hybrid" if mode == "linear" else mode}
    if mode == "linear":
        inp["fusion"] = "linear"
    if weight is not None:
        inp["dense_weight"] = weight
    body = {"model": {"path": model, "objective": objective},
            "dataset": {"path": store, "format": "vector_store"}, "search_input": inp}
    req = urllib.request.Request(url + "/api/v1/ml/nlp/vector/search", json.dumps(body).encode(),
                                 {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=3600) as r:
        return json.load(r)["results"]


for spec in modes:
    mode, _, w = spec.partition(":")
    weight = float(w) if w else None
    r1 = r10 = rr = 0.0
    for s in range(0, len(rows), 500):
        batch = rows[s:s + 500]
        for row, hits in zip(batch, search([r["text"] for r in batch], mode, weight)):
            ids = [h["id"] for h in hits]
            if row["doc_id"] in ids:
                rank = ids.index(row["doc_id"]) + 1
                r1 += rank == 1
                r10 += 1
                rr += 1.0 / rank
    n = len(rows)
    print(json.dumps({"split": split, "mode": mode, "dense_weight": weight, "queries": n,
                      "recall@1": round(r1 / n, 4), "recall@10": round(r10 / n, 4), "mrr@10": round(rr / n, 4)}),
          flush=True)
