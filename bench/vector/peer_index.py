#!/usr/bin/python3
"""Index-build peer: PyTorch eager (the bert-mini-shaped encoder of ../shared/bench/py_bert_bench.py)
embeds the same token ids as mlaas (from `mlaas tokenizer encode`), truncated to 128, in
length-sorted batches of 32 with an attention mask, mean-pooled and normalised, then FAISS
(python3-faiss) builds a Flat and an HNSW (M 32, efConstruction 40) index.
Usage: peer_index.py IDS.jsonl SHARED_BENCH_DIR [threads=2]  -> one JSON line."""
import json, math, sys, time

sys.path.insert(0, sys.argv[2])
import faiss  # noqa: E402
import torch  # noqa: E402
import py_bert_bench as pb  # noqa: E402

threads = int(sys.argv[3]) if len(sys.argv) > 3 else 2
torch.set_num_threads(threads)
faiss.omp_set_num_threads(threads)
seqs = []
with open(sys.argv[1]) as f:
    for line in f:
        ids = json.loads(line)["ids"][: pb.SEQ]
        seqs.append([min(i, pb.VOCAB - 1) for i in ids])
model = pb.Bert().eval()


def encode(x, mask):
    # py_bert_bench's encoder with an attention mask (padding keys get -inf), as BERT does.
    h = model.ln(model.tok(x) + model.pos(torch.arange(x.size(1))))
    bias = (1.0 - mask[:, None, None, :].float()) * -1e9
    for m in model.layers:
        B, T, H = h.shape
        q, k, v = m.qkv(h).view(B, T, 3, m.heads, m.hd).permute(2, 0, 3, 1, 4)
        p = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(m.hd) + bias, -1)
        ctx = (p @ v).transpose(1, 2).reshape(B, T, H)
        h = m.ln1(h + m.out(ctx))
        h = m.ln2(h + m.ff2(torch.nn.functional.gelu(m.ff1(h))))
    return h


order = sorted(range(len(seqs)), key=lambda i: -len(seqs[i]))
vectors = torch.zeros(len(seqs), pb.HIDDEN)
tokens = 0
t0 = time.perf_counter()
with torch.inference_mode():
    for s in range(0, len(order), 32):
        rows = order[s:s + 32]
        T = max(len(seqs[i]) for i in rows)
        x = torch.zeros(len(rows), T, dtype=torch.long)
        mask = torch.zeros(len(rows), T, dtype=torch.long)
        for r, i in enumerate(rows):
            x[r, :len(seqs[i])] = torch.tensor(seqs[i])
            mask[r, :len(seqs[i])] = 1
            tokens += len(seqs[i])
        h = encode(x, mask)
        pooled = (h * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
        vectors[rows] = torch.nn.functional.normalize(pooled, dim=1)
embed_s = time.perf_counter() - t0
xb = vectors.numpy()
t1 = time.perf_counter()
flat = faiss.IndexFlatL2(pb.HIDDEN)
flat.add(xb)
flat_s = time.perf_counter() - t1
t2 = time.perf_counter()
hnsw = faiss.IndexHNSWFlat(pb.HIDDEN, 32)
hnsw.hnsw.efConstruction = 40
hnsw.add(xb)
hnsw_s = time.perf_counter() - t2
print(json.dumps(dict(impl="pytorch+faiss", documents=len(seqs), tokens=tokens, threads=threads,
                      embedding_seconds=round(embed_s, 2), flat_index_seconds=round(flat_s, 3),
                      hnsw_index_seconds=round(hnsw_s, 2),
                      docs_per_second_flat=round(len(seqs) / (embed_s + flat_s), 1),
                      docs_per_second_hnsw=round(len(seqs) / (embed_s + hnsw_s), 1))), flush=True)
