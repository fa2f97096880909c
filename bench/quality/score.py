#!/usr/bin/python3
"""Scores `mlaas predict --json` output against a CSV's labels: accuracy and macro-F1 (over the
classes present in the truth or the predictions).
Usage: score.py DATA.csv LABEL_COLUMN PREDICTIONS.jsonl  -> one JSON line"""
import csv, json, sys
from collections import Counter

truth = [r[sys.argv[2]] for r in csv.DictReader(open(sys.argv[1], encoding="utf-8"))]
pred = []
for line in open(sys.argv[3], encoding="utf-8"):
    line = line.strip()
    if line.startswith("{"):
        pred.append(json.loads(line)["label"])
assert len(pred) == len(truth), f"{len(pred)} predictions for {len(truth)} rows"
right = sum(t == p for t, p in zip(truth, pred))
tp, fp, fn = Counter(), Counter(), Counter()
for t, p in zip(truth, pred):
    if t == p:
        tp[t] += 1
    else:
        fp[p] += 1
        fn[t] += 1
f1 = []
for c in set(truth) | set(pred):
    prec = tp[c] / (tp[c] + fp[c]) if tp[c] + fp[c] else 0.0
    rec = tp[c] / (tp[c] + fn[c]) if tp[c] + fn[c] else 0.0
    f1.append(2 * prec * rec / (prec + rec) if prec + rec else 0.0)
print(json.dumps({"rows": len(truth), "accuracy": round(right / len(truth), 4), "macro_f1": round(sum(f1) / len(f1), 4)}))
