#!/usr/bin/python3
"""PyTorch eager peer in bfloat16: the model of ../shared/bench/py_bert_bench.py (imported, not
copied) converted to bf16, inference at batch 1 and 32 (seq 128) measured the same way.
  py_bert_bf16_peer.py SHARED_BENCH_DIR THREADS
Prints one JSON line per measurement, like the fp32 peer."""
import json
import sys
import time

import torch

sys.path.insert(0, sys.argv[1])
import py_bert_bench as pb  # noqa: E402


def main():
    torch.set_num_threads(int(sys.argv[2]))
    torch.manual_seed(0)
    model = pb.Bert().eval().to(torch.bfloat16)
    with torch.inference_mode():
        for batch in (1, 32):
            ids = torch.randint(5, pb.VOCAB, (batch, pb.SEQ))
            iters = 50 if batch == 1 else 5
            for _ in range(2):
                model.cls_logits(model.encode(ids))
            start = time.perf_counter()
            for _ in range(iters):
                model.cls_logits(model.encode(ids))
            dt = time.perf_counter() - start
            print(json.dumps({"impl": "py-bf16", "kind": "infer", "batch": batch, "seq": pb.SEQ,
                              "ms_per_batch": round(1e3 * dt / iters, 2), "seq_per_s": round(batch * iters / dt, 1)}),
                  flush=True)


if __name__ == "__main__":
    main()
