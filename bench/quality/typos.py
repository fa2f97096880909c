#!/usr/bin/python3
"""Writes a typo-corrupted copy of a CSV column (keyboard-neighbour substitutions, drops, swaps,
doublings, stray spaces on ASCII letters and digits, each at RATE per character; seeded), the
kind of noise the platform's augmentation models, so robustness can be measured on it.
Usage: typos.py IN.csv COLUMN RATE SEED OUT.csv"""
import csv, random, sys

ROWS = ["1234567890", "qwertyuiop", "asdfghjkl", "zxcvbnm"]
POS = {c: (r, i) for r, row in enumerate(ROWS) for i, c in enumerate(row)}

def neighbours(c):
    if c not in POS:
        return ""
    r, i = POS[c]
    out = []
    for dr in (-1, 0, 1):
        for di in (-1, 0, 1):
            rr, ii = r + dr, i + di
            if (dr or di) and 0 <= rr < len(ROWS) and 0 <= ii < len(ROWS[rr]):
                out.append(ROWS[rr][ii])
    return "".join(out)

def corrupt(text, rate, rng):
    out, i = [], 0
    while i < len(text):
        c = text[i]
        if not (c.isascii() and c.isalnum()) or rng.random() >= rate:
            out.append(c); i += 1; continue
        kind = rng.randrange(5)
        if kind == 0:
            n = neighbours(c.lower())
            r = rng.choice(n) if n else c
            out.append(r.upper() if c.isupper() else r)
        elif kind == 2 and i + 1 < len(text) and text[i + 1].isascii() and text[i + 1].isalnum():
            out += [text[i + 1], c]; i += 1
        elif kind == 3:
            out += [c, c]
        elif kind == 4:
            out += [c, " "]
        elif kind != 1:
            out.append(c)
        i += 1
    return "".join(out)

src, column, rate, seed, dst = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
rng = random.Random(seed)
with open(src, encoding="utf-8", newline="") as f, open(dst, "w", encoding="utf-8", newline="") as g:
    r = csv.DictReader(f)
    w = csv.DictWriter(g, fieldnames=r.fieldnames)
    w.writeheader()
    for row in r:
        row[column] = corrupt(row[column], rate, rng)
        w.writerow(row)
