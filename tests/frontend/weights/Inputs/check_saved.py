"""check_saved.py FILE: checks the demo module that `test_weights save`
writes, with a reader independent of kiln's (struct + json), against
values computed here, and against the bytes the reference implementation
(huggingface/safetensors) would write for the same tensors: header keys
in data order, tensors sorted by dtype (widest alignment first) then by
name, compact JSON, padded with spaces to a multiple of 8.
"""
import json
import struct
import sys

import numpy as np

# The reference's dtype order; it writes the last first.
ORDER = ['BOOL', 'U8', 'I8', 'F8_E5M2', 'F8_E4M3', 'I16', 'U16', 'F16',
         'BF16', 'I32', 'U32', 'F32', 'F64', 'I64', 'U64']
ST = {np.dtype('float32'): 'F32', np.dtype('float64'): 'F64',
      np.dtype('int64'): 'I64', np.dtype('int32'): 'I32',
      np.dtype('int8'): 'I8', np.dtype('uint8'): 'U8',
      np.dtype('bool'): 'BOOL'}

EXPECTED = {
    'h.w': np.arange(12, dtype=np.float32) * np.float32(0.25) - 1,
    'h.b': np.ones(4, np.float32),
    'emb': (np.arange(6, dtype=np.float64) / 3.0).reshape(2, 3),
    'step': np.array(1234567890123, np.int64),
    'idx': np.array([-2, -1, 0, 1, 2**31 - 1], np.int32),
    'q': np.array([-128, -1, 0, 127], np.int8),
    'u': np.array([0, 128, 255], np.uint8),
    'mask': np.array([[True, False], [False, True]]),
    'zero': np.zeros((0, 3), np.float32),
    'w"q\\\n\t': np.array([2.5], np.float32),
    '\u03c0.w': np.array([3.14159274, -0.0], np.float32),
    'infer.only': np.array([5, 6], np.int32),
}
EXPECTED['h.w'] = EXPECTED['h.w'].reshape(3, 4)


def fail(msg):
    print('NOT OK:', msg)
    sys.exit(1)


def read(path):
    """An independent reader: returns (header dict, {name: array})."""
    raw = open(path, 'rb').read()
    (n,) = struct.unpack('<Q', raw[:8])
    text = raw[8:8 + n]
    if n % 8 or len(text) - len(text.rstrip(b' ')) >= 8:
        fail('header not padded with spaces to a multiple of 8')
    header = json.loads(text.decode('utf-8'))
    data = raw[8 + n:]
    out, at = {}, 0
    inv = {v: k for k, v in ST.items()}
    for name, e in sorted(((k, v) for k, v in header.items()
                           if k != '__metadata__'),
                          key=lambda kv: kv[1]['data_offsets']):
        b, end = e['data_offsets']
        if b != at:
            fail('%r: data not contiguous' % name)
        at = end
        out[name] = np.frombuffer(data[b:end], inv[e['dtype']]).reshape(
            e['shape'])
    if at != len(data):
        fail('data does not end at the end of the file')
    return header, out


def reference_bytes(tensors, metadata):
    """What safetensors.numpy.save_file(tensors, metadata=...) writes."""
    items = sorted(tensors.items(),
                   key=lambda kv: (-ORDER.index(ST[kv[1].dtype]), kv[0]))
    header, at = {'__metadata__': metadata}, 0
    for name, a in items:
        header[name] = {'dtype': ST[a.dtype], 'shape': list(a.shape),
                        'data_offsets': [at, at + a.nbytes]}
        at += a.nbytes
    text = json.dumps(header, separators=(',', ':'), ensure_ascii=False)
    text = text.encode('utf-8')
    text += b' ' * (-len(text) % 8)
    body = b''.join(a.astype(a.dtype.newbyteorder('<')).tobytes()
                    for _, a in items)
    return struct.pack('<Q', len(text)) + text + body


def main():
    path = sys.argv[1]
    header, got = read(path)
    if header.get('__metadata__') != {'format': 'kiln'}:
        fail('__metadata__ is %r' % header.get('__metadata__'))
    if set(got) != set(EXPECTED):
        fail('tensors %s, expected %s' % (sorted(got), sorted(EXPECTED)))
    for name, want in EXPECTED.items():
        g = got[name]
        if g.dtype != want.dtype or g.shape != want.shape:
            fail('%r: %s%s, expected %s%s' % (name, g.dtype, g.shape,
                                              want.dtype, want.shape))
        if g.tobytes() != want.tobytes():
            fail('%r: values %s, expected %s' % (name, g, want))
    if open(path, 'rb').read() != reference_bytes(EXPECTED, {'format': 'kiln'}):
        fail('bytes differ from what the reference implementation writes')
    print('saved file ok: %d tensors' % len(got))


main()
