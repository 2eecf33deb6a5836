"""Helpers of train.test for the trainer's safetensors files.

  train_weights.py check FILE       prints the header of a --save output
                                    after checking its layout
  train_weights.py make FILE DIR    writes variants of FILE into DIR:
                                    python.st (the same tensors written by
                                    Python, reordered, with an escaped
                                    name and an extra tensor), missing.st,
                                    shape.st, badjson.st, short.st
  train_weights.py log FILE         checks a --log file: the loss goes
                                    down and the last test accuracy is high
"""
import json
import struct
import sys

import numpy as np


def read(path):
    raw = open(path, 'rb').read()
    (n,) = struct.unpack('<Q', raw[:8])
    return json.loads(raw[8:8 + n]), raw[8 + n:], raw[8:8 + n]


def tensors(path):
    header, data, _ = read(path)
    out = {}
    for name, e in header.items():
        if name == '__metadata__':
            continue
        b, end = e['data_offsets']
        out[name] = np.frombuffer(data[b:end], '<f4').reshape(e['shape'])
    return out


def write(path, header_text, blobs):
    text = header_text.encode()
    text += b' ' * (-len(text) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(text)) + text + b''.join(blobs))


def entries(ts):
    """Header entries for the arrays of ts, in order, and their bytes."""
    parts, blobs, at = [], [], 0
    for name, a in ts:
        a = np.array(a, dtype='<f4', order='C')  # keeps 0-d
        parts.append('%s:{"dtype":"F32","shape":%s,"data_offsets":[%d,%d]}'
                     % (name, json.dumps(list(a.shape)), at, at + a.nbytes))
        blobs.append(a.tobytes())
        at += a.nbytes
    return '{' + ','.join(parts) + '}', blobs


def check(path):
    header, data, text = read(path)
    assert len(text) % 8 == 0, len(text)
    names = list(header)
    at = 0
    for name in names[1:]:
        b, end = header[name]['data_offsets']
        assert b == at, (name, b, at)
        at = end
    assert at == len(data), (at, len(data))
    print(text.decode().rstrip())


def make(path, out):
    t = tensors(path)
    order = [('"temp"', t['temp']), ('"extra"', np.ones(5)),
             ('"\\u0057"', t['W']), ('"x_mean"', t['x_mean']),
             ('"b"', t['b'])]
    write(out + '/python.st', *entries(order))
    write(out + '/missing.st', *entries(
        [(n, a) for n, a in order if n != '"x_mean"']))
    write(out + '/shape.st', *entries(
        [(n, a.T if n == '"\\u0057"' else a) for n, a in order]))
    text, blobs = entries(order)
    write(out + '/badjson.st', text.replace(':{', ':[', 1), blobs)
    raw = open(out + '/python.st', 'rb').read()
    open(out + '/short.st', 'wb').write(raw[:-4])


def log(path):
    rows = [json.loads(line) for line in open(path)]
    losses = [r['loss'] for r in rows]
    assert losses[-1] < 0.6 * losses[0], losses
    assert all(b < a for a, b in zip(losses, losses[1:])), losses
    assert rows[-1]['test_accuracy'] > 0.9, rows[-1]
    print('%d epochs, loss %.4f -> %.4f, test_accuracy %.4f'
          % (len(rows), losses[0], losses[-1], rows[-1]['test_accuracy']))


if __name__ == '__main__':
    {'check': check, 'make': make, 'log': log}[sys.argv[1]](*sys.argv[2:])
