# Converts a model directory's model.safetensors into pytorch_model.bin (zip, or legacy with
# --legacy) with python3-torch, for the end-to-end check that both load to the same outputs.
import sys, os, json, struct, torch
src, legacy = sys.argv[1], "--legacy" in sys.argv
# --pretraining: a BertForPreTraining checkpoint as the hub ships bert-base-uncased's, the
# masked-LM head plus next-sentence prediction's cls.seq_relationship.
pretraining = "--pretraining" in sys.argv
with open(os.path.join(src, "model.safetensors"), "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    header = json.loads(f.read(n))
    data = f.read()
sd = {}
dt = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "I64": torch.int64}
for name, info in header.items():
    if name == "__metadata__": continue
    b, e = info["data_offsets"]
    t = torch.frombuffer(bytearray(data[b:e]), dtype=dt[info["dtype"]]).reshape(info["shape"])
    sd[name] = t.clone()
if pretraining:
    hidden = sd["bert.embeddings.word_embeddings.weight"].shape[1]
    sd["cls.seq_relationship.weight"] = torch.randn(2, hidden) * 0.02
    sd["cls.seq_relationship.bias"] = torch.zeros(2)
    with open(os.path.join(src, "config.json")) as f:
        config = json.load(f)
    config["architectures"] = ["BertForPreTraining"]
    with open(os.path.join(src, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
torch.save(sd, os.path.join(src, "pytorch_model.bin"), _use_new_zipfile_serialization=not legacy)
os.remove(os.path.join(src, "model.safetensors"))
