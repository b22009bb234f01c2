"""PyTorch CPU peer of bench/models.ts: ResNet50 v1 (Keras layout: the stride on the first 1x1) and VGG16
(include_top=False) plus Graft's transfer head (global average pool -> Linear(512) + ReLU -> Dropout(0.5)
-> Linear(2)), in plain torch.nn (no torchvision), timed for inference and three training modes:

  frozen  the base under no_grad, then the head trained (cross-entropy, backward, Adam);
  last    the last residual block (ResNet50) or block5's three convolutions (VGG16) trained with the head;
          BatchNorm stays in inference mode, as Graft's fineTune keeps it;
  full    every layer trained, BatchNorm in training mode (batch statistics).

Prints one JSON object on stdout: per mode the cold (first) step, the warm steps' times in ms, and the
build's BLAS and thread count. Run by bench/models.ts as
  /usr/bin/python3 bench/torch_models.py --model resnet50 --size 64 --batch 8 --warm 3 --modes forward,frozen
"""
import argparse
import json
import time

import torch
import torch.nn as nn


def conv_bn(c, f, k, stride, pad, relu):
    layers = [nn.Conv2d(c, f, k, stride, pad), nn.BatchNorm2d(f, eps=1.001e-5)]
    return nn.Sequential(*layers, nn.ReLU(inplace=True)) if relu else nn.Sequential(*layers)


class Bottleneck(nn.Module):
    def __init__(self, c, f, stride, projection):
        super().__init__()
        self.shortcut = conv_bn(c, 4 * f, 1, stride, 0, False) if projection else nn.Identity()
        self.body = nn.Sequential(conv_bn(c, f, 1, stride, 0, True), conv_bn(f, f, 3, 1, 1, True), conv_bn(f, 4 * f, 1, 1, 0, False))

    def forward(self, x):
        return torch.relu(self.shortcut(x) + self.body(x))


def resnet50_units():
    units = [nn.Sequential(conv_bn(3, 64, 7, 2, 3, True), nn.MaxPool2d(3, 2, 1))]
    c = 64
    for f, blocks, stride in [(64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)]:
        for b in range(blocks):
            units.append(Bottleneck(c, f, stride if b == 0 else 1, b == 0))
            c = 4 * f
    return units, c


def vgg16_units():
    units, c = [], 3
    for f, n in [(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)]:
        for i in range(n):
            layers = [nn.Conv2d(c, f, 3, 1, 1), nn.ReLU(inplace=True)]
            if i == n - 1:
                layers.append(nn.MaxPool2d(2, 2))
            units.append(nn.Sequential(*layers))
            c = f
    return units, c


def head(c):
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, 512), nn.ReLU(inplace=True), nn.Dropout(0.5), nn.Linear(512, 2))


def blas_info():
    config = torch.__config__.show()
    for part in config.replace('\n', ',').split(','):
        if 'BLAS_INFO' in part:
            return part.split('BLAS_INFO=')[1].strip()
    return 'unknown'


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--model', choices=['resnet50', 'vgg16'], required=True)
    p.add_argument('--size', type=int, required=True)
    p.add_argument('--batch', type=int, default=8)
    p.add_argument('--warm', type=int, default=3)
    p.add_argument('--modes', default='forward,frozen,last,full')
    p.add_argument('--threads', type=int, default=0, help="intra-op threads (0: torch's default)")
    a = p.parse_args()
    default_threads = torch.get_num_threads()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    units, channels = resnet50_units() if a.model == 'resnet50' else vgg16_units()
    units.append(head(channels))
    net = nn.Sequential(*units)
    x = torch.rand(a.batch, 3, a.size, a.size) * 2 - 1
    y = torch.randint(0, 2, (a.batch,))
    last_units = 2 if a.model == 'resnet50' else 4  # the last block (or block5's 3 convs) + the head
    results = {}
    for mode in a.modes.split(','):
        if mode == 'forward':
            net.eval()

            def step():
                with torch.no_grad():
                    torch.softmax(net(x), -1)
        else:
            start = {'frozen': len(units) - 1, 'last': len(units) - last_units, 'full': 0}[mode]
            prefix, suffix = nn.Sequential(*units[:start]), nn.Sequential(*units[start:])
            for i, u in enumerate(units):
                u.requires_grad_(i >= start)
                u.eval()  # frozen layers and fineTune's unfrozen BatchNorms: inference mode
            if mode == 'full':
                net.train()
            units[-1].train()  # the head's dropout
            opt = torch.optim.Adam(suffix.parameters(), lr=1e-3)

            def step(prefix=prefix, suffix=suffix, opt=opt):
                opt.zero_grad(set_to_none=True)
                with torch.no_grad():
                    features = prefix(x)
                loss = nn.functional.cross_entropy(suffix(features), y)
                loss.backward()
                opt.step()
        t0 = time.perf_counter()
        step()
        cold = (time.perf_counter() - t0) * 1000
        times = []
        for _ in range(a.warm):
            t0 = time.perf_counter()
            step()
            times.append((time.perf_counter() - t0) * 1000)
        results[mode] = {'coldMs': cold, 'times': times}
    print(json.dumps({
        'torch': torch.__version__,
        'threads': torch.get_num_threads(),
        'defaultThreads': default_threads,
        'blas': blas_info(),
        'mkldnn': torch.backends.mkldnn.is_available(),
        'results': results,
    }))


if __name__ == '__main__':
    main()
