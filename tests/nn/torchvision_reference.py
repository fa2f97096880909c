# The reference for tests/nn/vision_model_test.cpp: a torchvision ResNet (Debian's
# python3-torchvision) with seeded weights and running statistics, its state dict saved as
# torch.save does (pytorch_model.bin), an input and the logits it gives in eval mode, as raw
# float32 files.   usage: torchvision_reference.py OUT_DIR ARCH CLASSES SIZE
import os
import sys

import torch
import torchvision

out, arch, classes, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
torch.manual_seed(3)
model = getattr(torchvision.models, arch)(num_classes=classes)
with torch.no_grad():
    for m in model.modules():  # running statistics and affine parameters that are not 0/1
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.uniform_(0.5, 1.5)
            m.bias.uniform_(-0.2, 0.2)
model.eval()
x = torch.randn(2, 3, size, size)
with torch.no_grad():
    logits = model(x)
os.makedirs(out, exist_ok=True)
torch.save(model.state_dict(), os.path.join(out, "pytorch_model.bin"))
x.numpy().astype("float32").tofile(os.path.join(out, "input.bin"))
logits.numpy().astype("float32").tofile(os.path.join(out, "logits.bin"))
