"""Writes the PyTorch checkpoints the pytorch_pickle tests read (Debian's python3-torch):
state dicts saved by torch.save in the zip and the legacy format, with non-contiguous views,
shared storages, several dtypes and nested {"state_dict": ...}; and malicious pickles that
must be refused. Usage: make_pickles.py OUT_DIR"""
import collections
import os
import pickle
import struct
import sys

import torch

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
torch.manual_seed(0)

base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
sd = collections.OrderedDict()
sd["bert.embeddings.word_embeddings.weight"] = torch.randn(10, 4)
sd["bert.encoder.layer.0.attention.self.query.bias"] = torch.randn(4).to(torch.float16)
sd["transposed"] = base.t()                      # a non-contiguous view
sd["slice"] = base[1:3, 2:5]                     # an offset view of the same storage
sd["ids"] = torch.tensor([[1, 2, 3], [4, 5, 6]], dtype=torch.int64)
sd["bf16"] = torch.tensor([1.5, -2.25], dtype=torch.bfloat16)
sd["scalar"] = torch.tensor(3.5)
sd["param"] = torch.nn.Parameter(torch.ones(2, 2))
torch.save(sd, os.path.join(out, "zip.bin"))
torch.save(sd, os.path.join(out, "legacy.bin"), _use_new_zipfile_serialization=False)
torch.save({"state_dict": sd, "epoch": 3}, os.path.join(out, "nested.bin"))
# The expected values, as contiguous float64 lists, for the test to compare with.
with open(os.path.join(out, "expected.txt"), "w") as f:
    for name, t in sd.items():
        t = t.detach()
        values = " ".join(repr(float(x)) for x in t.reshape(-1).to(torch.float64).tolist())
        f.write(f"{name}\t{str(t.dtype).replace('torch.', '')}\t{' '.join(map(str, t.shape))}\t{values}\n")


class Evil:
    def __reduce__(self):
        return (os.system, ("touch " + os.path.join(out, "pwned"),))


with open(os.path.join(out, "evil_reduce.bin"), "wb") as f:
    pickle.dump({"w": Evil()}, f, protocol=2)
torch.save({"w": torch.ones(1), "x": Evil()}, os.path.join(out, "evil_zip.bin"))
# A hand-written pickle calling builtins.eval through STACK_GLOBAL.
with open(os.path.join(out, "evil_eval.bin"), "wb") as f:
    f.write(b"\x80\x04\x8c\x08builtins\x8c\x04eval\x93\x8c\x0bprint('hi')\x85R.")

# A view that repeats one stored element 16384 x 16384 times (stride 0): 4 bytes stored, 1 GiB
# as a tensor.
torch.save({"bert.embeddings.word_embeddings.weight": torch.zeros(1).expand(16384, 16384)}, os.path.join(out, "expanding.bin"))
