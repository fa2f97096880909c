#!/usr/bin/python3
"""The FastAPI + Uvicorn + PyTorch serving peer of ../shared/bench/fastapi_serve.py, in the
bert-mini shape it has or in the bert-base shape (hidden 768, 12 layers, 12 heads, FFN 3072).
  peer_serve.py SHARED_BENCH_DIR mini|base PORT"""
import sys

sys.path.insert(0, sys.argv[1])
import py_bert_bench as shape  # noqa: E402

if sys.argv[2] == "base":
    shape.HIDDEN, shape.LAYERS, shape.HEADS, shape.INTER = 768, 12, 12, 3072
import fastapi_serve  # noqa: E402  (builds its model with the shape above)
import uvicorn  # noqa: E402

uvicorn.run(fastapi_serve.app, host="127.0.0.1", port=int(sys.argv[3]), log_level="warning", access_log=False)
