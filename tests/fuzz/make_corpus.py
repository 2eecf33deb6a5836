#!/usr/bin/python3
"""make_corpus.py: writes the seed corpora of the fuzz targets.

   /usr/bin/python3 tests/fuzz/make_corpus.py

corpus/kir and corpus/kiln are copies of the repository's own .kir tests
and .kiln examples; corpus/onnx is a sample of Debian's libonnx-testdata
(one model of each of 80 ops) and of the ONNX files tests make; corpus/npy
corpus/weights and corpus/data are made here with NumPy; kir.dict, kiln.dict and
onnx.dict list tokens of each language.  The result is checked in; run
this again when the sources change enough to matter.  The inputs of
past findings, corpus/*/crash-*, are kept.
"""
import glob
import gzip
import json
import os
import random
import shutil
import struct
import sys
import zlib

import numpy as np

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.dirname(os.path.dirname(here))


def fresh(name):
    """corpus/NAME emptied of seeds; the inputs of findings (crash-*) stay."""
    d = os.path.join(here, 'corpus', name)
    os.makedirs(d, exist_ok=True)
    for f in os.listdir(d):
        if not f.startswith('crash-'):
            os.remove(os.path.join(d, f))
    return d


def copy(files, d, limit=20000):
    for f in sorted(files):
        if os.path.getsize(f) <= limit:
            rel = os.path.relpath(f, root).replace('/', '_')
            shutil.copy(f, os.path.join(d, rel))


d = fresh('kir')
copy(glob.glob(os.path.join(root, 'tests/ir/*.kir')) +
     glob.glob(os.path.join(root, 'tests/passes/*/*.kir')), d)

d = fresh('kiln')
copy(glob.glob(os.path.join(root, 'examples/*.kiln')) +
     glob.glob(os.path.join(root, 'tests/frontend/kiln/*.kiln')), d)

d = fresh('onnx')
node = '/usr/share/libonnx-testdata/data/node'
if not os.path.isdir(node):
    sys.exit('make_corpus.py: needs Debian package libonnx-testdata')
seen = set()
for t in sorted(os.listdir(node)):
    op = t[5:].split('_')[0]          # test_conv_with_strides -> conv
    m = os.path.join(node, t, 'model.onnx')
    if op in seen or not os.path.exists(m) or os.path.getsize(m) > 4000:
        continue
    seen.add(op)
    shutil.copy(m, os.path.join(d, t + '.onnx'))
    if len(seen) == 80:
        break

d = fresh('npy')
rng = np.random.default_rng(1)
arrays = {
    'f32_2x3': rng.standard_normal((2, 3)).astype(np.float32),
    'i64_4': np.array([0, 5, -1, 2], np.int64),
    'f64_scalar': np.float64(2.5),
    'u8_empty': np.zeros((0, 3), np.uint8),
    'bool_2x2': np.array([[True, False], [False, True]]),
    'i32_rank5': np.arange(32, dtype=np.int32).reshape(2, 2, 2, 2, 2),
    'i8_3': np.array([-128, 0, 127], np.int8),
    'f32_fortran': np.asfortranarray(np.ones((2, 3), np.float32)),
    'f32_bigendian': np.ones((2, 3), '>f4'),
    'f16_2': np.ones(2, np.float16),
}
for name, a in arrays.items():
    np.save(os.path.join(d, name + '.npy'), a)
for version in [(2, 0), (3, 0)]:
    with open(os.path.join(d, 'v%d.npy' % version[0]), 'wb') as f:
        np.lib.format.write_array(f, arrays['f32_2x3'], version=version)

d = fresh('weights')


def safetensors(tensors, meta=None):
    """The bytes of a safetensors file of (name, dtype, shape, bytes)."""
    header, off, data = {}, 0, b''
    if meta:
        header['__metadata__'] = meta
    for name, dt, shape, b in tensors:
        header[name] = {'dtype': dt, 'shape': shape,
                        'data_offsets': [off, off + len(b)]}
        off += len(b)
        data += b
    h = json.dumps(header, separators=(',', ':')).encode()
    h += b' ' * (-len(h) % 8)
    return struct.pack('<Q', len(h)) + h + data


w = np.arange(6, dtype=np.float32).tobytes()
params = [('w', 'F32', [2, 3], w), ('b', 'I64', [3], np.arange(3).tobytes()),
          ('bn.mean', 'F32', [4], np.ones(4, np.float32).tobytes())]
model = [('w', 'F32', [2, 3], w), ('b', 'F64', [3], np.ones(3).tobytes()),
         ('i', 'I64', [2], np.arange(2).tobytes()), ('u', 'U8', [1], b'\7')]
ck = params + [('w.m', 'F32', [2, 3], w)]
data = b''.join(t[3] for t in sorted(ck, key=lambda t: t[0]))
files = {
    'trainer.safetensors': safetensors(params, {'format': 'kiln'}),
    'model.safetensors': safetensors(model, {'format': 'kiln'}),
    'checkpoint.safetensors': safetensors(
        ck, {'format': 'kiln-checkpoint', 'model': 'm',
             'crc32': '%08x' % zlib.crc32(data)}),
    'empty.safetensors': safetensors([]),
}
for name, b in files.items():
    with open(os.path.join(d, name), 'wb') as f:
        f.write(b)

d = fresh('exe')
for name in ['f32_2x3', 'i64_4']:
    shutil.copy(os.path.join(here, 'corpus/npy', name + '.npy'), d)

d = fresh('data')
images = bytes([0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 2] +
               list(range(0, 240, 20)))
labels = bytes([0, 0, 8, 1, 0, 0, 0, 3, 2, 0, 1])
for name, b in [('images.idx', images), ('labels.idx', labels),
                ('images.idx.gz', gzip.compress(images, mtime=0)),
                ('labels.idx.gz', gzip.compress(labels, mtime=0)),
                ('train.csv', b'a,b,c,d,label\n0,0.5,1,1e-3,2\n1,1,1,1,0\n'),
                ('nohead.csv', b'0,0.5,1,-2,1\n')]:
    with open(os.path.join(d, name), 'wb') as f:
        f.write(b)
np.save(os.path.join(d, 'x.npy'), np.zeros((3, 2, 2), np.float32))
np.save(os.path.join(d, 'y.npy'), np.array([0, 2, 1], np.int64))
np.save(os.path.join(d, 'y_u8.npy'), np.array([0, 2, 1], np.uint8))


def dictionary(name, words):
    """Writes NAME.dict, libFuzzer's dictionary: one quoted token a line."""
    with open(os.path.join(here, name + '.dict'), 'w') as f:
        f.write('# %s.dict: tokens for fuzz_%s (made by make_corpus.py)\n'
                % (name, name))
        for w in sorted(set(words)):
            f.write('"%s"\n' % ''.join(
                c if ' ' <= c <= '~' and c not in '"\\' else
                '\\x%02x' % ord(c) for c in w))


import re
ops = open(os.path.join(root, 'ir/ops.def')).read()
kir = re.findall(r'^OP\(\w+,\s*"(\w+)"', ops, re.M)
kir += re.findall(r'^ATTR\(\w+,\s*\w+,\s*"(\w+)"', ops, re.M)
kir += ['graph', 'param', 'const', 'return', 'train', 'zeros', 'ones',
        'elided', 'he_uniform', 'glorot_uniform', 'seed=', 'fan_in=',
        'loc(', 'f32', 'f64', 'i64', 'i32', 'i8', 'u8', 'bool', 'bf16',
        'f16', '%', '$', '@', ': f32[', ' {', '}\n', ' = ', 'wpanel=']
dictionary('kir', kir)
words = set()
for f in glob.glob(os.path.join(root, 'examples/*.kiln')) + \
        glob.glob(os.path.join(root, 'tests/frontend/kiln/*.kiln')):
    text = re.sub(r'//.*', '', open(f).read())
    words.update(re.findall(r'[A-Za-z_][A-Za-z_0-9]*', text))
dictionary('kiln', sorted(words) + ['include "lib.kiln"',
                                    'include "model.kiln"', '"', '{', '}',
                                    '(', ')', '[', ']', '=', ':', ','])
import onnx.defs
dictionary('onnx', [s.name for s in onnx.defs.get_all_schemas()] +
           ['external_data', 'location', 'weights.bin', 'offset',
            'length', '../weights.bin', '/etc/passwd'])
