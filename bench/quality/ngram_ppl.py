#!/usr/bin/python3
"""The causal-LM baseline of bench/quality/run.sh clm: an interpolated Kneser-Ney trigram model
over the same token ids the model sees, scored on the same targets.

  ngram_ppl.py TRAIN_IDS.jsonl VALID_IDS.jsonl EOS_ID BLOCK VOCAB

The *_IDS files are `mlaas tokenizer encode --no-special-tokens` outputs (one text per line).
Each split becomes what the trainer builds (train/text_objectives.cpp, GroupIntoBlocks): every
text's ids followed by the end-of-text id, concatenated, cut into blocks of BLOCK tokens; the
targets are every position of a block but its first, and contexts stay inside their block, as
the model's do. Prints the perplexity (exp of the mean negative log-likelihood).
"""
import collections
import json
import math
import sys

DISCOUNT = 0.75


def blocks(path, eos, size):
    stream = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            ids = json.loads(line)["ids"]
            if ids:
                stream.extend(ids)
                stream.append(eos)
    out = [stream[i:i + size] for i in range(0, len(stream), size)]
    return [b for b in out if len(b) >= 2]


def main():
    train_path, valid_path, eos, size, vocab = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    train = blocks(train_path, eos, size)
    tri, bi_ctx = collections.Counter(), collections.Counter()
    for b in train:
        for i in range(2, len(b)):
            tri[(b[i - 2], b[i - 1], b[i])] += 1
    # Kneser-Ney continuation counts: how many distinct left contexts each (shorter) n-gram has.
    bi_cont = collections.Counter((v, w) for (_, v, w) in tri)           # N1+(. v w)
    uni_cont = collections.Counter(w for (v, w) in bi_cont)               # N1+(. w) over bigram types
    bigram_types = len(bi_cont)
    # Per context: totals and the number of distinct followers, for the discounted mass.
    tri_total, tri_types = collections.Counter(), collections.Counter()
    for (u, v, w), c in tri.items():
        tri_total[(u, v)] += c
        tri_types[(u, v)] += 1
    bi_total, bi_types = collections.Counter(), collections.Counter()
    for (v, w), c in bi_cont.items():
        bi_total[v] += c
        bi_types[v] += 1
    # Bigram counts for positions 1 of each block (only one token of context there).
    bi = collections.Counter()
    for b in train:
        for i in range(1, len(b)):
            bi[(b[i - 1], b[i])] += 1
    bi_ctx = collections.Counter()
    bi_ctx_types = collections.Counter()
    for (v, w), c in bi.items():
        bi_ctx[v] += c
        bi_ctx_types[v] += 1

    def p_uni(w):
        return (max(uni_cont[w] - DISCOUNT, 0) / bigram_types) + DISCOUNT * len(uni_cont) / bigram_types / vocab

    def p_bi_kn(v, w):  # the lower order of the trigram: continuation counts
        total = bi_total[v]
        if not total:
            return p_uni(w)
        return max(bi_cont[(v, w)] - DISCOUNT, 0) / total + DISCOUNT * bi_types[v] / total * p_uni(w)

    def p_bi(v, w):  # the highest order at a block's second position: plain counts
        total = bi_ctx[v]
        if not total:
            return p_uni(w)
        return max(bi[(v, w)] - DISCOUNT, 0) / total + DISCOUNT * bi_ctx_types[v] / total * p_uni(w)

    def p_tri(u, v, w):
        total = tri_total[(u, v)]
        if not total:
            return p_bi_kn(v, w)
        return max(tri[(u, v, w)] - DISCOUNT, 0) / total + DISCOUNT * tri_types[(u, v)] / total * p_bi_kn(v, w)

    nll, n = 0.0, 0
    for b in blocks(valid_path, eos, size):
        for i in range(1, len(b)):
            p = p_bi(b[0], b[1]) if i == 1 else p_tri(b[i - 2], b[i - 1], b[i])
            nll -= math.log(p)
            n += 1
    print(json.dumps({"perplexity": round(math.exp(nll / n), 3), "targets": n, "train_blocks": len(train),
                      "model": "interpolated Kneser-Ney trigram, discount 0.75"}))


if __name__ == "__main__":
    main()
