"""The peer of bench/vision_train_bench: the same training loop in PyTorch eager (Debian's
python3-torch and python3-torchvision): the same model (cnn-small as mlaas defines it, or
torchvision's ResNet-18 with the small-image stem mlaas uses below 64 pixels: a 3x3 stride-1
first convolution, no max pool), the same random images, torchvision-style loading (a Dataset
whose transforms — RandomCrop with padding, RandomHorizontalFlip, Normalize — run per image,
batched by a DataLoader), AdamW, cross-entropy. Prints one JSON line: {"images_per_s"} over
the timed steps (the first 3 are warm-up).

    train_peer.py PRESET SIZE CHANNELS IMAGES BATCH THREADS [float32|bfloat16]

bfloat16: the forward pass and loss under torch.autocast("cpu", bfloat16), as mlaas's
model_train.precision "bfloat16".
"""
import json
import sys
import time

import torch
import torchvision
from torch import nn
from torchvision import transforms


def cnn_small(channels, size, classes):
    def block(cin, cout):
        return [nn.Conv2d(cin, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]
    features = nn.Sequential(*block(channels, 32), *block(32, 32), nn.MaxPool2d(2), *block(32, 64), *block(64, 64),
                             nn.MaxPool2d(2), nn.Flatten())
    classifier = nn.Sequential(nn.Dropout(0.25), nn.Linear(64 * (size // 4) ** 2, 128), nn.ReLU(), nn.Dropout(0.25),
                               nn.Linear(128, classes))
    return nn.Sequential(features, classifier)


def resnet18_small(channels, classes):
    m = torchvision.models.resnet18(num_classes=classes)
    m.conv1 = nn.Conv2d(channels, 64, 3, 1, 1, bias=False)
    m.maxpool = nn.Identity()
    return m


class Images(torch.utils.data.Dataset):
    def __init__(self, pixels, labels, transform):
        self.pixels, self.labels, self.transform = pixels, labels, transform

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return self.transform(self.pixels[i]), self.labels[i]


def main():
    preset, size, channels, images, batch, threads = sys.argv[1], *map(int, sys.argv[2:7])
    bf16 = len(sys.argv) > 7 and sys.argv[7] == "bfloat16"
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    classes = 10
    pixels = torch.randint(0, 256, (images, channels, size, size), dtype=torch.uint8)
    labels = torch.randint(0, classes, (images,))
    transform = transforms.Compose([transforms.RandomCrop(size, padding=2), transforms.RandomHorizontalFlip(),
                                    transforms.ConvertImageDtype(torch.float32),
                                    transforms.Normalize([0.5] * channels, [0.5] * channels)])
    loader = torch.utils.data.DataLoader(Images(pixels, labels, transform), batch_size=batch, shuffle=True,
                                         num_workers=0, drop_last=True)
    model = cnn_small(channels, size, classes) if preset == "cnn-small" else resnet18_small(channels, classes)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    seen, start = 0, None
    for step, (x, y) in enumerate(loader):
        if step == 3:
            start, seen = time.perf_counter(), 0
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        seen += x.shape[0]
    print(json.dumps({"images_per_s": seen / (time.perf_counter() - start)}))


if __name__ == "__main__":
    main()
