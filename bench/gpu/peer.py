#!/usr/bin/env python3
"""The GPU benchmarks' peer (bench/gpu_bench.cpp, docs/gpu.md): BERT in PyTorch eager, written
with torch.nn's own blocks (post-LayerNorm encoder layers, GELU, as BERT), so that it needs
nothing beyond the wheel. One JSON line per measure on stdout.

  peer.py --mode train --device cuda --model bert-base --batch 64 --steps 20 --precision bf16
  peer.py --mode infer --device cuda --model bert-base --batch 1 --iters 50 --precision bf16
  peer.py --mode gemm --device cuda            # the machine's bf16 (or fp32) matrix rate

train: masked-LM, 15% of positions masked, the head over every position (as transformers'
BertForMaskedLM), AdamW (fused where this torch has it, lr 1e-4, weight decay 0.01), forward
under autocast when bf16; tokens/s after two warm-up steps. infer: a classifier's logits under
inference_mode, weights in bf16 when bf16; ms per batch and sequences/s."""
import argparse
import json
import time

import torch
from torch import nn

SHAPES = {  # hidden, layers, heads, ffn, vocab
    "bert-base": (768, 12, 12, 3072, 30522),
    "bert-mini": (256, 4, 4, 1024, 8000),
}
SEQ = 128


class Bert(nn.Module):
    def __init__(self, shape, labels=2):
        super().__init__()
        h, layers, heads, ffn, vocab = shape
        self.word = nn.Embedding(vocab, h)
        self.pos = nn.Embedding(512, h)
        self.token_type = nn.Embedding(2, h)
        self.norm = nn.LayerNorm(h, eps=1e-12)
        self.drop = nn.Dropout(0.1)
        layer = nn.TransformerEncoderLayer(h, heads, ffn, dropout=0.1, activation="gelu", batch_first=True,
                                           layer_norm_eps=1e-12)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.mlm = nn.Sequential(nn.Linear(h, h), nn.GELU(), nn.LayerNorm(h, eps=1e-12))
        self.decoder = nn.Linear(h, vocab)
        self.decoder.weight = self.word.weight  # tied, as BERT's
        self.pooler = nn.Linear(h, h)
        self.classifier = nn.Linear(h, labels)
        for e in (self.word, self.pos, self.token_type):
            nn.init.normal_(e.weight, std=0.02)  # BERT's initialisation

    def encode(self, ids):
        positions = torch.arange(ids.shape[1], device=ids.device)
        x = self.word(ids) + self.pos(positions)[None] + self.token_type(torch.zeros_like(ids))
        return self.encoder(self.drop(self.norm(x)))

    def mlm_logits(self, ids):
        return self.decoder(self.mlm(self.encode(ids)))

    def cls_logits(self, ids):
        return self.classifier(torch.tanh(self.pooler(self.encode(ids)[:, 0])))


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train(a, device, bf16):
    shape = SHAPES[a.model]
    model = Bert(shape).to(device).train()
    try:
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01, fused=device.type == "cuda")
    except (TypeError, RuntimeError):
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)
    g = torch.Generator().manual_seed(0)
    start = None
    for step in range(a.steps + 2):
        if step == 2:
            sync(device)
            start = time.perf_counter()
        ids = torch.randint(5, shape[4], (a.batch, SEQ), generator=g)
        labels = torch.full_like(ids, -100)
        masked = torch.rand(ids.shape, generator=g) < 0.15
        labels[masked] = ids[masked]
        ids = ids.masked_fill(masked, 4)
        ids, labels = ids.to(device, non_blocking=True), labels.to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = model.mlm_logits(ids)
        loss = nn.functional.cross_entropy(logits.float().view(-1, shape[4]), labels.view(-1), ignore_index=-100)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    sync(device)
    seconds = time.perf_counter() - start
    print(json.dumps({"impl": "pytorch-eager", "kind": "train", "model": a.model, "batch": a.batch, "seq": SEQ,
                      "precision": a.precision, "tokens_per_s": a.steps * a.batch * SEQ / seconds,
                      "loss": float(loss)}))


def infer(a, device, bf16):
    model = Bert(SHAPES[a.model]).to(device).eval()
    if bf16:
        model = model.to(torch.bfloat16)
    ids = torch.randint(5, SHAPES[a.model][4], (a.batch, SEQ), device=device)
    with torch.inference_mode():
        for _ in range(3):
            model.cls_logits(ids)
        sync(device)
        start = time.perf_counter()
        for _ in range(a.iters):
            model.cls_logits(ids)
        sync(device)
    ms = (time.perf_counter() - start) * 1000 / a.iters
    print(json.dumps({"impl": "pytorch-eager", "kind": "infer", "model": a.model, "batch": a.batch, "seq": SEQ,
                      "precision": a.precision, "ms": ms, "sequences_per_s": a.batch * 1000 / ms}))


def gemm(a, device, bf16):
    n = 8192 if device.type == "cuda" else 1024
    dtype = torch.bfloat16 if bf16 else torch.float32
    x = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        x @ x
    sync(device)
    iters = 50 if device.type == "cuda" else 5
    start = time.perf_counter()
    for _ in range(iters):
        x @ x
    sync(device)
    seconds = (time.perf_counter() - start) / iters
    print(json.dumps({"impl": "torch", "kind": "gemm", "precision": a.precision, "n": n,
                      "tflops": 2 * n ** 3 / seconds / 1e12}))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=["train", "infer", "gemm"], required=True)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--model", choices=sorted(SHAPES), default="bert-base")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--precision", choices=["bf16", "fp32"], default="bf16")
    ap.add_argument("--threads", type=int, default=0)
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    device = torch.device(a.device)
    {"train": train, "infer": infer, "gemm": gemm}[a.mode](a, device, a.precision == "bf16")


if __name__ == "__main__":
    main()
