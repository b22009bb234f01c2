#!/usr/bin/env python3
"""An independent ResNet50 v1 forward pass in NumPy (float64), the golden for Graft's ImageNet parity test.

Nothing here comes from Graft but the input bytes: the safetensors file is parsed by hand, and the network is
written from the Keras applications definition (keras/applications/resnet.py, `ResNet50` with `stack1`/`block1`):

    ZeroPadding2D(3) → Conv 7×7/2 valid → BN → ReLU → ZeroPadding2D(1) → MaxPool 3×3/2 valid
    → stacks of bottleneck blocks (64×3, 128×4 stride 2, 256×6 stride 2, 512×3 stride 2)
    → global average pool → dense 2048→1000 → softmax.
    A block is 1×1 (stride s) → BN → ReLU → 3×3 'same' → BN → ReLU → 1×1 → BN, plus the shortcut (1×1 stride s
    → BN in the first block of a stack, the identity otherwise), then ReLU. v1: the stride is on the first 1×1.

Convolution is im2col: a strided window view of the padded NHWC input contracted with the HWIO kernel by
`np.einsum` (BLAS underneath). BatchNorm is the inference form gamma·(x − mean)/sqrt(var + eps) + beta with eps
from the file's metadata (`batchnorm_epsilon`). Inputs are caffe-preprocessed: RGB → BGR, then subtract the
ImageNet means [103.939, 116.779, 123.68] (B, G, R), no scaling.

Reads:  weights/resnet50-imagenet.safetensors   (`graft weights fetch resnet50`)
        test/fixtures/imagenet/inputs.json and <name>.rgb.gz   (`npx tsx test/golden/imagenet-inputs.ts`)
Writes: test/fixtures/imagenet/resnet50-top5.json

Regenerate (from the repository root; NumPy only, any Python 3 with numpy ≥ 1.20):

    node bin/graft.js weights fetch resnet50
    python3 test/golden/resnet50_numpy.py
"""
import gzip
import hashlib
import json
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WEIGHTS = os.path.join(ROOT, 'weights', 'resnet50-imagenet.safetensors')
FIXTURES = os.path.join(ROOT, 'test', 'fixtures', 'imagenet')
OUT = os.path.join(FIXTURES, 'resnet50-top5.json')
CAFFE_MEANS_BGR = np.array([103.939, 116.779, 123.68])
DTYPES = {'F32': np.float32, 'F16': np.float16, 'F64': np.float64}


def read_safetensors(path):
    """(tensors by name as float64 arrays, metadata dict). Format: u64 LE header length, JSON header, data."""
    with open(path, 'rb') as f:
        raw = f.read()
    n = int.from_bytes(raw[:8], 'little')
    header = json.loads(raw[8:8 + n].decode('utf-8'))
    data = memoryview(raw)[8 + n:]
    meta = header.pop('__metadata__', {})
    tensors = {}
    for name, t in header.items():
        begin, end = t['data_offsets']
        arr = np.frombuffer(data[begin:end], dtype=DTYPES[t['dtype']]).reshape(t['shape'])
        tensors[name] = arr.astype(np.float64)
    return tensors, meta, hashlib.sha256(raw).hexdigest()


def zero_pad(x, p):
    return np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))


def conv2d(x, kernel, bias, stride=1, pad=0):
    """NHWC x, HWIO kernel; zero padding `pad` on every side, then a valid convolution with `stride`."""
    if pad:
        x = zero_pad(x, pad)
    kh, kw = kernel.shape[:2]
    # [N, OH, OW, C, KH, KW] view of every window, then every stride-th one.
    windows = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(1, 2))[:, ::stride, ::stride]
    return np.einsum('nhwcij,ijco->nhwo', windows, kernel, optimize=True) + bias


def batch_norm(x, w, name, eps):
    g, b = w[f'{name}/gamma'], w[f'{name}/beta']
    m, v = w[f'{name}/moving_mean'], w[f'{name}/moving_variance']
    return g * (x - m) / np.sqrt(v + eps) + b


def relu(x):
    return np.maximum(x, 0)


def max_pool(x, size, stride):
    windows = np.lib.stride_tricks.sliding_window_view(x, (size, size), axis=(1, 2))[:, ::stride, ::stride]
    return windows.max(axis=(4, 5))


def conv_bn(x, w, name, eps, stride=1, pad=0):
    y = conv2d(x, w[f'{name}_conv/kernel'], w[f'{name}_conv/bias'], stride, pad)
    return batch_norm(y, w, f'{name}_bn', eps)


def block(x, w, name, eps, stride, projection):
    shortcut = conv_bn(x, w, f'{name}_0', eps, stride) if projection else x
    y = relu(conv_bn(x, w, f'{name}_1', eps, stride))
    y = relu(conv_bn(y, w, f'{name}_2', eps, 1, pad=1))  # 3×3 'same' at stride 1: one row/column each side
    y = conv_bn(y, w, f'{name}_3', eps)
    return relu(shortcut + y)


def resnet50_v1(x, w, eps):
    """x: [N, 224, 224, 3] caffe-preprocessed BGR. Returns the logits [N, 1000] (before the softmax)."""
    x = relu(conv_bn(x, w, 'conv1', eps, stride=2, pad=3))
    x = max_pool(zero_pad(x, 1), 3, 2)
    for stack, (blocks, stride) in zip(('conv2', 'conv3', 'conv4', 'conv5'), ((3, 1), (4, 2), (6, 2), (3, 2))):
        for i in range(1, blocks + 1):
            x = block(x, w, f'{stack}_block{i}', eps, stride if i == 1 else 1, projection=i == 1)
    x = x.mean(axis=(1, 2))
    return x @ w['predictions/kernel'] + w['predictions/bias']


def softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def main():
    if not os.path.exists(WEIGHTS):
        sys.exit(f'{WEIGHTS} is missing: run `node bin/graft.js weights fetch resnet50` first.')
    w, meta, weights_sha = read_safetensors(WEIGHTS)
    if meta.get('architecture') != 'resnet50-v1' or meta.get('preprocessing') != 'caffe':
        sys.exit(f'{WEIGHTS}: expected architecture resnet50-v1 with caffe preprocessing, got {meta}')
    eps = float(meta['batchnorm_epsilon'])
    labels = json.loads(meta['labels'])
    with open(os.path.join(FIXTURES, 'inputs.json')) as f:
        inputs = json.load(f)
    images = []
    for inp in inputs:
        with gzip.open(os.path.join(FIXTURES, f"{inp['name']}.rgb.gz"), 'rb') as f:
            rgb = f.read()
        if hashlib.sha256(rgb).hexdigest() != inp['rgb_sha256']:
            sys.exit(f"{inp['name']}.rgb.gz does not match the sha256 in inputs.json")
        images.append(np.frombuffer(rgb, dtype=np.uint8).reshape(inp['height'], inp['width'], 3))
    x = np.stack(images).astype(np.float64)
    x = x[..., ::-1] - CAFFE_MEANS_BGR  # RGB → BGR, then the channel means
    probs = softmax(resnet50_v1(x, w, eps))
    results = []
    for inp, p in zip(inputs, probs):
        top = np.argsort(-p)[:5]
        results.append({
            'name': inp['name'],
            'source': inp['source'],
            'top5': [{'index': int(i), 'label': labels[i], 'probability': float(p[i])} for i in top],
        })
        print(f"{inp['name']}: " + ', '.join(f'{labels[i]} ({i}) {p[i]:.4f}' for i in top))
    golden = {
        'generator': 'test/golden/resnet50_numpy.py (NumPy float64, independent of Graft)',
        'weights': 'weights/resnet50-imagenet.safetensors',
        'weights_sha256': weights_sha,
        'batchnorm_epsilon': eps,
        'preprocessing': 'caffe: RGB→BGR, minus [103.939, 116.779, 123.68]',
        'numpy': np.__version__,
        'images': results,
    }
    with open(OUT, 'w') as f:
        json.dump(golden, f, indent=2)
        f.write('\n')
    print(f'wrote {os.path.relpath(OUT, ROOT)}')


if __name__ == '__main__':
    main()
