#!/usr/bin/python3
"""Exports a model directory written by mlaas (config.json + model.safetensors) to ONNX with
python3-torch, through the Hugging Face definitions of tests/nn/reference/hf_reference.py.
  export_onnx.py MODEL_DIR OUT.onnx
The graph takes input_ids and attention_mask [batch, seq] (dynamic axes) and returns the
classification logits."""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../tests/nn/reference"))
import hf_reference as hf  # noqa: E402


class Wrapped(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask):
        return self.model(input_ids, attention_mask, None)[1]


def main():
    model_dir, out = sys.argv[1], sys.argv[2]
    config = json.load(open(os.path.join(model_dir, "config.json")))
    model, _ = hf.build(config)
    model.load_state_dict({k: v.float() for k, v in hf.read_safetensors(os.path.join(model_dir, "model.safetensors")).items()})
    model.eval()
    ids = torch.randint(5, config["vocab_size"], (2, 16))
    mask = torch.ones_like(ids)
    with torch.no_grad():
        torch.onnx.export(Wrapped(model), (ids, mask), out, input_names=["input_ids", "attention_mask"],
                          output_names=["logits"], opset_version=14,
                          dynamic_axes={"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"},
                                        "logits": {0: "batch"}})
    print(json.dumps({"exported": out, "bytes": os.path.getsize(out)}))


if __name__ == "__main__":
    main()
