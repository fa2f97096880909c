#!/usr/bin/env python3
"""Compares a benchmark run (JSON lines from $MLAAS_BENCH_RECORDS) with the recorded figures.

  check_records.py RECORDS_JSON RUN_JSONL [--mode short|full] [--build DIR] [--write]

Prints every measure: its recorded ratio, this run's, and the change. A measure whose ratio
fell more than its tolerance (default 15%) below the record is a regression: listed at the end
with the command that re-runs its benchmark at full length; the exit status is then 1.
Measures recorded but not measured now (a peer missing, a measure of the full-length run only)
are listed as such. --write records this run's measures in RECORDS_JSON (the others, and
recorded tolerances, are kept).
Ratios are always "> 1: mlaas is better" (bench/bench_util.h, Record).
"""
import argparse
import datetime
import json
import os
import sys

DEFAULT_TOLERANCE = 0.15
# Measures known to move more than that between identical runs (a new record takes these;
# a recorded tolerance is kept; the first match wins), measured (docs/benchmarks.md): one
# connection's p50 against ONNX Runtime went from 0.57x to 1.42x over 13 paired rounds;
# serving throughput moved by up to 32% between two full runs of the same build, and Flat
# search one query at a time (bound by memory bandwidth, FAISS's scan is not) by 17%;
# tokenizing on both cores of a 2-vCPU machine by 21% between a full and a short run; loopback
# transfers against s3rver and a hub-shaped server (client, server and SHA-256 sharing 2 cores)
# from 0.68x to 1.13x of curl between two runs of the same build.
NOISY = {".latency.": 0.35, "serve.": 0.25, "vector.": 0.25, ".all-threads": 0.25, "storage.": 0.4}


def tolerance_for(id):
    return next((t for part, t in NOISY.items() if part in id), DEFAULT_TOLERANCE)


def load_run(path):
    measures, commands, bench = {}, {}, None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line.startswith("{"):
                continue
            j = json.loads(line)
            if "bench" in j:
                bench = j["bench"]
                commands[bench] = j["command"]
            elif "id" in j:
                j["bench"] = bench
                measures[j["id"]] = j  # a measure taken twice: the last one
    for m in measures.values():
        m["command"] = commands.get(m["bench"], "")
    return measures


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("records")
    ap.add_argument("run")
    ap.add_argument("--mode", default="short")
    ap.add_argument("--build", default="")
    ap.add_argument("--write", action="store_true")
    a = ap.parse_args()

    recorded = {}
    if os.path.exists(a.records):
        with open(a.records) as f:
            recorded = json.load(f).get("measures", {})
    run = load_run(a.run)

    rows, fell, missing = [], [], []
    for id in sorted(set(recorded) | set(run)):
        rec, now = recorded.get(id), run.get(id)
        if now is None:
            missing.append(id)
            continue
        if rec is None:
            rows.append((id, now["what"], None, now["ratio"], "new"))
            continue
        tolerance = rec.get("tolerance", tolerance_for(id))
        change = now["ratio"] / rec["ratio"] - 1
        status = "ok"
        if change < -tolerance:
            status = "FELL"
            fell.append((id, now, rec, change, tolerance))
        rows.append((id, now["what"], rec["ratio"], now["ratio"], f"{change:+.0%} {status}"))

    print(f"\n{'measure':<38} {'recorded':>9} {'now':>8}  change  (ratio > 1: mlaas is better)")
    for id, what, rec, now, status in rows:
        print(f"{id:<38} {(f'{rec:.2f}x' if rec else '-'):>9} {now:>7.2f}x  {status:<9} {what}")
    if missing:
        print(f"\nnot measured in this run ({a.mode} mode, or a peer missing): {', '.join(missing)}")

    if a.write:
        kept = dict(recorded)  # measures not taken in this run keep their record
        for id, m in run.items():
            entry = {k: m[k] for k in ("bench", "what", "ours", "peer", "unit", "ratio", "command")}
            tolerance = recorded.get(id, {}).get("tolerance", tolerance_for(id))
            if tolerance != DEFAULT_TOLERANCE:
                entry["tolerance"] = tolerance
            kept[id] = entry
        doc = {
            "about": "Benchmark figures checked by bench/check.sh; ratio > 1: mlaas is better (docs/benchmarks.md).",
            "recorded": datetime.date.today().isoformat(),
            "mode": a.mode,
            "build": a.build,
            "measures": kept,
        }
        with open(a.records, "w") as f:
            json.dump(doc, f, indent=1, sort_keys=True)
            f.write("\n")
        print(f"\nrecorded {len(run)} measures in {a.records} ({len(kept)} in all)")

    if fell:
        print(f"\n{len(fell)} measure(s) fell more than their tolerance below the record:")
        for id, now, rec, change, tolerance in fell:
            # Which side moved: a peer that ran faster than at its record is not our regression.
            print(f"  {id}: {now['what']}: {rec['ratio']:.2f}x -> {now['ratio']:.2f}x ({change:+.0%}, tolerance "
                  f"{tolerance:.0%}); ours {now['ours']:.4g} {now['unit']} ({now['ours'] / rec['ours'] - 1:+.0%} on the "
                  f"record), peer {now['peer']:.4g} ({now['peer'] / rec['peer'] - 1:+.0%})")
            print(f"    re-run at full length: bench/check.sh --full --only {now['bench']}\n"
                  f"      (which runs: {rec.get('command') or now['command']})")
        return 0 if a.write else 1
    print("\nno measure fell below its record" + ("" if rows else " (nothing was measured)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
