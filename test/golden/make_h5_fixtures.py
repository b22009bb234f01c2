#!/usr/bin/python3
"""Writes the small Keras .h5 weight files that test/weights/keras-h5.test.ts reads.

Run with the system Python, which has h5py (`apt-get install -y python3-h5py`):

    /usr/bin/python3 test/golden/make_h5_fixtures.py

The files are written as Keras writes them (keras/saving/legacy/hdf5_format.py, `save_weights_to_hdf5_group`):

    /                           attrs: layer_names = [b'block1_conv1', ...], backend, keras_version
    /<layer>                    a group, attrs: weight_names = [b'<layer>/kernel:0', b'<layer>/bias:0']
    /<layer>/<layer>/kernel:0   the dataset (the weight name, ':0' included, is its path inside the layer group)

A full model (`model.save('m.h5')`) keeps the same under the group /model_weights. Layers without weights
(pooling) have an empty weight_names.

Values: element i (row-major) of the weight numbered `seed` in its file is

    value(seed, i) = ((i * 37 + seed * 101) % 1000 - 500) / 128

which is exact in float32; the float64 dataset holds (i + 1) / 3, which float32 rounds. The test computes the
same formulas; keep them in step.
"""
import os

import h5py
import numpy as np

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'weights', 'fixtures', 'keras-h5')


def value(seed, shape, dtype=np.float32):
    i = np.arange(int(np.prod(shape)), dtype=np.int64)
    return (((i * 37 + seed * 101) % 1000 - 500) / 128).astype(dtype).reshape(shape)


def third(shape):
    i = np.arange(int(np.prod(shape)), dtype=np.float64)
    return ((i + 1) / 3).reshape(shape)


def names(strings):
    # Keras writes a numpy array of byte strings (fixed length), empty arrays for layers without weights.
    return np.array([s.encode('utf8') for s in strings]) if strings else np.array([], dtype='S1')


def write_weights(group, layers, chunked=()):
    """layers: list of (layer name, [(weight name, array)]); weights named in `chunked` are chunked + gzip."""
    group.attrs['layer_names'] = names([name for name, _ in layers])
    group.attrs['backend'] = b'tensorflow'
    group.attrs['keras_version'] = b'2.2.4'
    for layer, weights in layers:
        g = group.create_group(layer)
        g.attrs['weight_names'] = names([f'{layer}/{w}:0' for w, _ in weights])
        for w, array in weights:
            path = f'{layer}/{w}:0'
            if f'{layer}/{w}' in chunked:
                chunks = tuple(max(1, d // 2) for d in array.shape)
                g.create_dataset(path, data=array, chunks=chunks, compression='gzip', compression_opts=4)
            else:
                g.create_dataset(path, data=array)


def conv(layer, kh, cin, cout, seed):
    return (layer, [('kernel', value(seed, (kh, kh, cin, cout))), ('bias', value(seed + 1, (cout,)))])


def main():
    os.makedirs(HERE, exist_ok=True)
    out = lambda name: os.path.join(HERE, name)

    # (a) Keras 2 layout: two conv layers with block1_conv1's kernel size and input channels, few filters.
    with h5py.File(out('keras2-two-convs.h5'), 'w') as f:
        write_weights(f, [conv('block1_conv1', 3, 3, 4, 0), conv('block1_conv2', 3, 4, 4, 2), ('block1_pool', [])])

    # The same with the newest HDF5 structures (superblock v3, version 2 object headers), as h5py writes
    # with libver='latest'.
    with h5py.File(out('keras2-latest-format.h5'), 'w', libver='latest') as f:
        write_weights(f, [conv('block1_conv1', 3, 3, 4, 0), conv('block1_conv2', 3, 4, 4, 2), ('block1_pool', [])])

    # (b) full model: the weights under /model_weights, (d) one dataset chunked and gzip-compressed.
    with h5py.File(out('full-model-gzip.h5'), 'w') as f:
        f.attrs['model_config'] = b'{"class_name": "Sequential"}'
        write_weights(f.create_group('model_weights'), [conv('conv', 3, 8, 16, 0), ('dense', [('kernel', value(2, (16, 5))), ('bias', value(3, (5,)))])], chunked={'conv/kernel'})

    # (c) a float64 dataset.
    with h5py.File(out('float64.h5'), 'w') as f:
        write_weights(f, [('dense', [('kernel', third((4, 3))), ('bias', value(1, (3,)))])])

    # Errors: an int32 dataset; a layer group without weight_names; a weight name without its dataset.
    with h5py.File(out('int32.h5'), 'w') as f:
        write_weights(f, [('dense', [('kernel', np.arange(6, dtype=np.int32).reshape(2, 3))])])
    with h5py.File(out('no-weight-names.h5'), 'w') as f:
        write_weights(f, [conv('dense', 1, 2, 3, 0)])
        del f['dense'].attrs['weight_names']
    with h5py.File(out('missing-dataset.h5'), 'w') as f:
        write_weights(f, [conv('dense', 1, 2, 3, 0)])
        del f['dense/dense/bias:0']

    # VGG16's layer names (no top) with tiny shapes: recognised as vgg16, but every shape differs from the model's.
    layers = []
    seed = 0
    for block, convs in enumerate([2, 2, 3, 3, 3], start=1):
        for i in range(1, convs + 1):
            layers.append(conv(f'block{block}_conv{i}', 1, 1, 2, seed))
            seed += 2
        layers.append((f'block{block}_pool', []))
    with h5py.File(out('vgg16-names-tiny.h5'), 'w') as f:
        write_weights(f, layers)


if __name__ == '__main__':
    main()
