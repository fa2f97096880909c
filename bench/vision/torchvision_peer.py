"""The peer of bench/vision_bench: the same image through torchvision's ResNet-18 in PyTorch eager
(Debian's python3-torch and python3-torchvision): PIL decoding, Resize + ToTensor + Normalize
as torchvision's transforms do, inference_mode. Prints one JSON line:
{"latency_ms": p50 of one image, decode to label, "images_per_s": batches of `batch`}."""
import io
import json
import statistics
import sys
import time

import torch
import torchvision
from PIL import Image
from torchvision import transforms


def main():
    path, threads, rounds, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=1000).eval()
    data = open(path, "rb").read()
    prep = transforms.Compose([transforms.Resize((224, 224)), transforms.ToTensor(),
                               transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])

    def classify(files):
        x = torch.stack([prep(Image.open(io.BytesIO(f)).convert("RGB")) for f in files])
        with torch.inference_mode():
            p = torch.softmax(model(x), -1)
        return p.argmax(-1).tolist()

    classify([data])  # warm up
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        classify([data])
        times.append((time.perf_counter() - t0) * 1000)
    classify([data] * batch)
    t0 = time.perf_counter()
    for _ in range(max(1, rounds // 4)):
        classify([data] * batch)
    rate = batch * max(1, rounds // 4) / (time.perf_counter() - t0)
    print(json.dumps({"latency_ms": statistics.median(times), "images_per_s": rate}))


if __name__ == "__main__":
    main()
