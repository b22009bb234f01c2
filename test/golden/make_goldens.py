#!/usr/bin/env python3
"""Golden outputs of VGG16 and ResNet50 (v1 and v1.5) from PyTorch, for test/models/pytorch-parity.test.ts.

The networks are written here by hand with torch.nn (torchvision is not needed) to be Keras-equivalent, layer
for layer as keras.applications builds them and as Graft's src/models/ does:
  VGG16     five blocks of 3×3 convolutions (padding 1 = Keras 'same' at stride 1) + ReLU, each ending in a
            2×2/2 max pool; with the top: Flatten in NHWC order (as Keras flattens), fc1 4096 ReLU, fc2 4096
            ReLU, predictions; without: global average or max pooling.
  ResNet50  ZeroPadding2D(3) + 7×7/2 valid conv, BN, ReLU, ZeroPadding2D(1) + 3×3/2 valid max pool, bottleneck
            stacks 64×3, 128×4, 256×6, 512×3 (1×1 → 3×3 → 1×1, each with BN, ReLU after the first two, the
            shortcut a 1×1 conv + BN in a stack's first block), global average pool, predictions.
            v1 (Keras): a downsampling block's stride is on the first 1×1; v1.5 (torchvision): on the 3×3,
            with padding 1. BatchNorm in inference mode with eps 1.001e-5 (Keras's ResNet50).
Weights and inputs are rounded to float32 (what Graft holds), then everything runs in float64; the outputs are
the logits with the top (the last dense layer's output, before any softmax), the pooled features without.

The weights are not random but a formula, so that the TypeScript test makes the very same numbers without a
weights file (test/models/formula-weights.ts implements it identically; keep the two in step):

    t  = the index of the weight's Keras key ('conv1_conv/kernel', …) in the sorted list of the model's keys
    i  = the element's index in the row-major Keras layout (conv kernels HWIO, dense kernels [in, out])
    j = (i + 7919·t) mod 1000003
    s(t, i) = sin(j² mod 1000003)                            (an integer argument, in radians)
    kernel           s(t, i) · 2 / sqrt(fan_in)   fan_in = product of all but the last dimension (He scale)
    bias             0.1 · s(t, i)
    gamma            1 + 0.1 · s(t, i)
    beta             0.1 · s(t, i)
    moving_mean      0.1 · s(t, i)
    moving_variance  1 + 0.2 · |s(t, i)|
    input            s(1000, i) over the NHWC input [2, H, W, 3]
The integer arithmetic is exact in doubles (j² < 2^40), so NumPy and JavaScript take the sine of the same
integer. The square (a chirp) makes the values behave like noise: no correlation between neighbours, and a
[K, O] kernel's singular values spread like a random matrix's. A linear phase would not do: sin(a·i + b) over
i = k·O + o is sin(a·O·k + a·o + b), a rank-2 matrix.

Run (Debian's Python with its PyTorch, `apt-get install python3-torch`), from the repository root:

    /usr/bin/python3 test/golden/make_goldens.py

It writes test/fixtures/pytorch/<case>.json: the case's configuration, the sorted weight keys with their
shapes and the sums of their formula values (so the test can check that t means the same tensor on both sides
and that both formulas agree), the input's sum, and the outputs (logits) of the two inputs.
"""
import json
import math
import os
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, 'test', 'fixtures', 'pytorch')
BN_EPS = 1.001e-5
INPUT_T = 1000
BATCH = 2

# ---------------------------------------------------------------------------------------------------------
# The formula


def s(t, n):
    """s(t, i) for i = 0 … n-1: sin(j² mod 1000003) with j = (i + 7919·t) mod 1000003, in exact integers first."""
    j = (np.arange(n, dtype=np.int64) + 7919 * t) % 1000003
    return np.sin((j * j % 1000003).astype(np.float64))


def formula_weight(key, shape, t):
    """The formula tensor in the Keras shape, rounded to float32 as Graft holds it (then widened again)."""
    v = s(t, math.prod(shape))
    kind = key.rsplit('/', 1)[1]
    if kind == 'kernel':
        v = (2 / math.sqrt(math.prod(shape[:-1]))) * v
    elif kind in ('bias', 'beta', 'moving_mean'):
        v = 0.1 * v
    elif kind == 'gamma':
        v = 1 + 0.1 * v
    elif kind == 'moving_variance':
        v = 1 + 0.2 * np.abs(v)
    else:
        raise ValueError(f'no formula for {key}')
    return v.astype(np.float32).astype(np.float64).reshape(shape)


def formula_input(h, w):
    return s(INPUT_T, BATCH * h * w * 3).astype(np.float32).astype(np.float64).reshape(BATCH, h, w, 3)


# ---------------------------------------------------------------------------------------------------------
# Keras-named weights: each model lists (key, Keras shape), and gets its tensors by key.


class Keras:
    """Collects the Keras keys and shapes a model declares, then hands out formula tensors in torch layout."""

    def __init__(self):
        self.shapes = {}

    def declare(self, key, shape):
        self.shapes[key] = list(shape)

    def finish(self):
        keys = sorted(self.shapes)
        self.values = {k: formula_weight(k, self.shapes[k], t) for t, k in enumerate(keys)}
        return keys

    def conv(self, name, conv):
        """Loads the HWIO kernel as OIHW, and the bias."""
        conv.weight.data = torch.from_numpy(self.values[f'{name}/kernel'].transpose(3, 2, 0, 1).copy())
        conv.bias.data = torch.from_numpy(self.values[f'{name}/bias'].copy())

    def dense(self, name, linear):
        """Loads the [in, out] kernel as [out, in], and the bias."""
        linear.weight.data = torch.from_numpy(self.values[f'{name}/kernel'].T.copy())
        linear.bias.data = torch.from_numpy(self.values[f'{name}/bias'].copy())

    def bn(self, name, bn):
        bn.weight.data = torch.from_numpy(self.values[f'{name}/gamma'].copy())
        bn.bias.data = torch.from_numpy(self.values[f'{name}/beta'].copy())
        bn.running_mean.data = torch.from_numpy(self.values[f'{name}/moving_mean'].copy())
        bn.running_var.data = torch.from_numpy(self.values[f'{name}/moving_variance'].copy())


def conv_layer(k, name, cin, cout, size, stride=1, padding=0):
    k.declare(f'{name}/kernel', (size, size, cin, cout))
    k.declare(f'{name}/bias', (cout,))
    return (name, nn.Conv2d(cin, cout, size, stride=stride, padding=padding))


def bn_layer(k, name, c):
    for w in ('gamma', 'beta', 'moving_mean', 'moving_variance'):
        k.declare(f'{name}/{w}', (c,))
    return (name, nn.BatchNorm2d(c, eps=BN_EPS))


def dense_layer(k, name, cin, cout):
    k.declare(f'{name}/kernel', (cin, cout))
    k.declare(f'{name}/bias', (cout,))
    return (name, nn.Linear(cin, cout))


def load(module, k, named):
    """Fills the layers from the formula, and registers them with `module` (so that .eval() reaches every
    BatchNorm: an unregistered one would stay in training mode and normalize with the batch's statistics)."""
    for name, m in named:
        {nn.Conv2d: k.conv, nn.Linear: k.dense, nn.BatchNorm2d: k.bn}[type(m)](name, m)
    module.layers = nn.ModuleDict(dict(named))
    loaded = sum(p.numel() for p in module.parameters()) + sum(b.numel() for n, b in module.named_buffers() if 'running' in n)
    assert loaded == sum(math.prod(shape) for shape in k.shapes.values()), 'every formula weight is in a registered layer'


# ---------------------------------------------------------------------------------------------------------
# VGG16


class VGG16(nn.Module):
    def __init__(self, include_top, pooling, h, w):
        super().__init__()
        self.k = Keras()
        self.include_top, self.pooling = include_top, pooling
        self.convs = []
        cin = 3
        for b, (filters, n) in enumerate([(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)]):
            block = []
            for i in range(n):
                block.append(conv_layer(self.k, f'block{b + 1}_conv{i + 1}', cin, filters, 3, padding=1))
                cin = filters
            self.convs.append(block)
        self.dense = []
        if include_top:
            fh, fw = h // 32, w // 32
            self.dense = [dense_layer(self.k, 'fc1', fh * fw * 512, 4096), dense_layer(self.k, 'fc2', 4096, 4096),
                          dense_layer(self.k, 'predictions', 4096, 1000)]
        self.keys = self.k.finish()
        load(self, self.k, [m for block in self.convs for m in block] + self.dense)

    def forward(self, x):
        for block in self.convs:
            for _, conv in block:
                x = F.relu(conv(x))
            x = F.max_pool2d(x, 2, 2)
        if self.include_top:
            x = x.permute(0, 2, 3, 1).flatten(1)  # Keras flattens NHWC
            x = F.relu(self.dense[0][1](x))
            x = F.relu(self.dense[1][1](x))
            return self.dense[2][1](x)
        if self.pooling == 'avg':
            return x.mean(dim=(2, 3))
        if self.pooling == 'max':
            return x.amax(dim=(2, 3))
        return x.permute(0, 2, 3, 1)


# ---------------------------------------------------------------------------------------------------------
# ResNet50


class ResNet50(nn.Module):
    def __init__(self, variant, include_top, pooling):
        super().__init__()
        self.k = Keras()
        self.variant, self.include_top, self.pooling = variant, include_top, pooling
        named = []

        def conv_bn(name, cin, cout, size, stride=1, padding=0):
            c, b = conv_layer(self.k, f'{name}_conv', cin, cout, size, stride, padding), bn_layer(self.k, f'{name}_bn', cout)
            named.extend([c, b])
            return (c[1], b[1])

        self.stem = conv_bn('conv1', 3, 64, 7, stride=2)
        self.blocks = []
        cin = 64
        for stack, filters, blocks, stride1 in (('conv2', 64, 3, 1), ('conv3', 128, 4, 2), ('conv4', 256, 6, 2), ('conv5', 512, 3, 2)):
            for i in range(1, blocks + 1):
                name, stride = f'{stack}_block{i}', stride1 if i == 1 else 1
                s1, s2 = (stride, 1) if variant == 'v1' else (1, stride)
                self.blocks.append({
                    'shortcut': conv_bn(f'{name}_0', cin, 4 * filters, 1, stride) if i == 1 else None,
                    'main': [conv_bn(f'{name}_1', cin, filters, 1, s1),
                             conv_bn(f'{name}_2', filters, filters, 3, s2, padding=1),
                             conv_bn(f'{name}_3', filters, 4 * filters, 1)],
                })
                cin = 4 * filters
        if include_top:
            self.predictions = dense_layer(self.k, 'predictions', 2048, 1000)
            named.append(self.predictions)
        self.keys = self.k.finish()
        load(self, self.k, named)

    def forward(self, x):
        conv, bn = self.stem
        x = F.relu(bn(conv(F.pad(x, (3, 3, 3, 3)))))
        x = F.max_pool2d(F.pad(x, (1, 1, 1, 1)), 3, 2)  # zeros are safe after ReLU, as in Keras
        for block in self.blocks:
            shortcut = x
            if block['shortcut']:
                conv, bn = block['shortcut']
                shortcut = bn(conv(x))
            y = x
            for j, (conv, bn) in enumerate(block['main']):
                y = bn(conv(y))
                if j < 2:
                    y = F.relu(y)
            x = F.relu(shortcut + y)
        if self.include_top:
            return self.predictions[1](x.mean(dim=(2, 3)))
        if self.pooling == 'avg':
            return x.mean(dim=(2, 3))
        if self.pooling == 'max':
            return x.amax(dim=(2, 3))
        return x.permute(0, 2, 3, 1)


# ---------------------------------------------------------------------------------------------------------

CASES = [
    # name, model, Graft config (the test builds the same), input H, W
    ('vgg16-notop-avg-64', 'vgg16', {'includeTop': False, 'pooling': 'avg', 'inputShape': [64, 64, 3]}),
    ('vgg16-top-224', 'vgg16', {'includeTop': True, 'classifierActivation': 'linear', 'inputShape': [224, 224, 3]}),
    ('resnet50-v1-top-224', 'resnet50', {'variant': 'v1', 'includeTop': True, 'classifierActivation': 'linear', 'inputShape': [224, 224, 3]}),
    ('resnet50-v1.5-top-224', 'resnet50', {'variant': 'v1.5', 'includeTop': True, 'classifierActivation': 'linear', 'inputShape': [224, 224, 3]}),
    ('resnet50-v1.5-notop-max-75x61', 'resnet50', {'variant': 'v1.5', 'includeTop': False, 'pooling': 'max', 'inputShape': [75, 61, 3]}),
]


def build(model, config):
    h, w, _ = config['inputShape']
    if model == 'vgg16':
        return VGG16(config['includeTop'], config.get('pooling'), h, w)
    return ResNet50(config['variant'], config['includeTop'], config.get('pooling'))


def main():
    torch.set_num_threads(os.cpu_count() or 1)
    os.makedirs(OUT, exist_ok=True)
    for name, model, config in CASES:
        t0 = time.time()
        net = build(model, config).double().eval()
        assert not any(m.training for m in net.modules())
        h, w, _ = config['inputShape']
        x = torch.from_numpy(formula_input(h, w)).permute(0, 3, 1, 2).contiguous()  # NHWC → NCHW
        with torch.no_grad():
            y = net(x).numpy()
        golden = {
            'case': name,
            'model': model,
            'config': config,
            'generator': f'test/golden/make_goldens.py (PyTorch {torch.__version__}, float64)',
            'input': {'shape': [BATCH, h, w, 3], 'formula_t': INPUT_T, 'sum': float(x.sum())},
            'batchnorm_epsilon': BN_EPS if model == 'resnet50' else None,
            'weights': [[k, net.k.shapes[k], float(net.k.values[k].sum())] for k in net.keys],
            'output_shape': list(y.shape),
            'output': [[float(f'{v:.10g}') for v in row] for row in y.reshape(BATCH, -1)],
        }
        path = os.path.join(OUT, f'{name}.json')
        with open(path, 'w') as f:
            json.dump(golden, f, separators=(',', ':'))
            f.write('\n')
        a = np.abs(y)
        print(f'{name}: output {list(y.shape)}, max |y| {a.max():.4g}, mean |y| {a.mean():.4g}, std {y.std():.4g}, '
              f'{os.path.getsize(path) / 1024:.0f} KiB, {time.time() - t0:.1f} s')


if __name__ == '__main__':
    main()
