"""make_files.py DIR: writes the safetensors files the weights tests load.

Written here with struct + json + numpy (no safetensors package), so the
files do not come from kiln's writer.  For each good file NAME it also
writes NAME.spec (the model: one test_weights SPEC per line) and
NAME.expect (what `test_weights load` must print).  Bad files are named
after what is wrong with them; the .test files say what error each gives.
"""
import json
import os
import struct
import sys

import numpy as np

ST = {np.dtype('float32'): 'F32', np.dtype('float64'): 'F64',
      np.dtype('int64'): 'I64', np.dtype('int32'): 'I32',
      np.dtype('int8'): 'I8', np.dtype('uint8'): 'U8',
      np.dtype('bool'): 'BOOL', np.dtype('float16'): 'F16'}
KILN = {'F32': 'f32', 'F64': 'f64', 'I64': 'i64', 'I32': 'i32', 'I8': 'i8',
        'U8': 'u8', 'BOOL': 'bool'}
OUT = sys.argv[1]


def put(name, header, data=b'', hlen=None):
    """Writes OUT/name: the length of header (or hlen), header, data."""
    if isinstance(header, str):
        header = header.encode('utf-8')
    n = len(header) if hlen is None else hlen
    with open(os.path.join(OUT, name), 'wb') as f:
        f.write(struct.pack('<Q', n) + header + data)


def layout(arrays, metadata=None, **dump):
    """Header (bytes) and data for [(name, array)], in the given order."""
    header, data = {}, b''
    if metadata is not None:
        header['__metadata__'] = metadata
    for name, a in arrays:
        raw = a.astype(a.dtype.newbyteorder('<'), order='C')
        header[name] = {'dtype': ST[a.dtype], 'shape': list(a.shape),
                        'data_offsets': [len(data), len(data) + a.nbytes]}
        data += raw.tobytes()
    return json.dumps(header, **dump).encode('utf-8'), data


def esc(name):
    """A name as test_weights spells it: \\xNN for all but plain ASCII."""
    return ''.join(chr(b) if 0x21 <= b <= 0x7e and b not in b'\\:'
                   else '\\x%02x' % b for b in name.encode('utf-8'))


def ktype(a):
    return '%s[%s]' % (KILN[ST[a.dtype]], ','.join(map(str, a.shape)))


def good(name, arrays, specs, **kw):
    """A good file plus its model: specs is [(kind, name, array)]; the
    array is what load must print (kind *data starts as bytes 0xab)."""
    header, data = layout(arrays, **kw.pop('layout', {}))
    put(name + '.safetensors', header + b' ' * kw.pop('pad', 0), data)
    with open(os.path.join(OUT, name + '.spec'), 'w') as f:
        for kind, n, a in specs:
            f.write('%s:%s:%s\n' % (kind, esc(n), ktype(a)))
    with open(os.path.join(OUT, name + '.expect'), 'w') as f:
        for kind, n, a in specs:
            hexdata = a.astype(a.dtype.newbyteorder('<')).tobytes().hex()
            f.write('%s %s %s\n' % (esc(n), ktype(a), hexdata or '-'))


def good_files():
    f32, ab = np.float32, np.frombuffer(b'\xab' * 8, np.float32)
    odd = 'e\u0301"\\x\n\U0001F600'  # combining accent, escapes, emoji
    arrays = [
        ('u8v', np.array([1, 2, 255], np.uint8)),       # leaves f32 unaligned
        ('a.w', np.array([[1.5, -2], [0.25, 1e-8]], f32)),
        (odd, np.array([1 / 3, -1e300])),
        ('steps', np.array(2**62 + 1, np.int64)),
        ('i32v', np.array([-1, 0, 2**31 - 1], np.int32)),
        ('i8v', np.array([-128, 127], np.int8)),
        ('flags', np.array([True, False, True, True])),
        ('empty', np.zeros((0, 3), f32)),
        ('k.c', np.array([9, 10], f32)),
        ('old', np.array([3, 4], f32)),
        ('extra.unused', np.array([1], f32)),
        ('half.unused', np.array([1, 2], np.float16)),
    ]
    a = dict(arrays)
    specs = [('param', n, a[n]) for n in ['u8v', 'a.w', odd, 'steps',
                                         'i32v', 'i8v', 'flags', 'empty']]
    specs += [('const', 'k.c', a['k.c']), ('paramdata', 'old', a['old']),
              ('constdata', 'kept', ab)]
    meta = {'format': 'pt', 'note': 'quote " and \u00e9 \U0001F600'}
    good('python', arrays, specs, pad=13,
         layout=dict(metadata=meta, ensure_ascii=True, indent=1))
    # The reference implementation's own style: compact, aligned, padded.
    arrays = [('b', np.array([2.5, -1], np.float64)),
              ('a', np.arange(6, dtype=f32).reshape(2, 3)),
              ('c', np.array([7], np.int32)), ('d', np.array([1], np.uint8))]
    header, _ = layout(arrays, separators=(',', ':'))
    good('reference', arrays, [('param', n, x) for n, x in arrays],
         pad=-len(header) % 8, layout=dict(separators=(',', ':')))
    good('empty', [], [('constdata', 'kept', ab[:1])], pad=6)
    put('many.safetensors', *layout([('t%d' % i, np.zeros(1, f32))
                                     for i in range(7)]))


def tensor(dtype='F32', shape=(4,), offsets=(0, 16)):
    return {'dtype': dtype, 'shape': list(shape),
            'data_offsets': list(offsets)}


def entry(name, **kw):
    """A one-tensor file 'a' whose entry is changed by kw."""
    e = tensor()
    e.update(kw)
    put(name, json.dumps({'a': e}), bytes(16))


def bad_files():
    z16 = bytes(16)
    ok = json.dumps({'a': tensor()})
    with open(os.path.join(OUT, 'short.safetensors'), 'wb') as f:
        f.write(b'\x05\x00\x00\x00\x00')
    put('absurd.safetensors', ok, z16, hlen=2**63)
    put('beyond.safetensors', b'{}', bytes(48), hlen=1000)
    put('truncated.safetensors', ok, bytes(8))
    put('trailing.safetensors', ok, bytes(20))
    entry('gap.safetensors', data_offsets=[4, 20])
    put('overlap.safetensors', json.dumps({'a': tensor(), 'b': tensor(
        offsets=(8, 24))}), bytes(24))
    entry('size.safetensors', shape=[2, 3], data_offsets=[0, 20])
    entry('backwards.safetensors', data_offsets=[8, 4])
    entry('overflow.safetensors', shape=[2**62, 4])
    put('dupname.safetensors', '{"a":%s,"a":%s}' % (
        json.dumps(tensor(shape=[1], offsets=(0, 4))),
        json.dumps(tensor(shape=[1], offsets=(4, 8)))), bytes(8))
    put('notobject.safetensors', '{"a":[1]}')
    entry('dtypetype.safetensors', dtype=5)
    entry('dtypeunknown.safetensors', dtype='F17')
    entry('shapetype.safetensors', shape='4')
    entry('rank9.safetensors', shape=[1] * 9)
    entry('offsets3.safetensors', data_offsets=[0, 16, 16])
    put('nokey.safetensors', '{"a":{"dtype":"F32","data_offsets":[0,16]}}',
        z16)
    put('unknownkey.safetensors', '{"a":{"dtype":"F32","shape":[4],'
        '"offsets":[0,16]}}', z16)
    put('dupkey.safetensors', '{"a":{"dtype":"F32","dtype":"F32",'
        '"shape":[4],"data_offsets":[0,16]}}', z16)
    put('metavalue.safetensors', '{"__metadata__":{"n":1}}')
    put('metatype.safetensors', '{"__metadata__":"x"}')
    put('metadupkey.safetensors', '{"__metadata__":{"n":"1","n":"2"}}')
    put('metatwice.safetensors', '{"__metadata__":{},"__metadata__":{}}')
    model_files()
    json_files()


def model_files():
    put('mlp.safetensors', *layout([
        ('h.w', np.arange(20, dtype=np.float32).reshape(4, 5) / 4),
        ('h.b', -np.arange(1, 6, dtype=np.float32)),
        ('odd name', np.array([5, 6], np.float32)),
        ('c', np.full(20, 7, np.float32))]))
    put('other.safetensors', *layout([('other', np.ones(1, np.float32))]))
    put('transposed.safetensors',
        *layout([('h.w', np.zeros((256, 784), np.float32))]))
    put('i32.safetensors', *layout([('x', np.array([1, 2], np.int32))]))
    put('f16.safetensors', *layout([('x', np.array([1, 2], np.float16))]))
    put('bool2.safetensors', '{"m":{"dtype":"BOOL","shape":[3],'
        '"data_offsets":[0,3]}}', b'\x00\x02\x01')


# Bad JSON: each header is the text given, exactly.
JSON = {
    'colon': b'{"a" {}}',
    'comma': b'{"a":{"dtype":"F32","shape":[],"data_offsets":[0,4]},}',
    'true': b'{"a":true}',
    'fraction': b'{"a":{"shape":[1.5]}}',
    'negative': b'{"a":{"shape":[-1]}}',
    'leadzero': b'{"a":{"shape":[01]}}',
    'bigint': b'{"a":{"shape":[9223372036854775808]}}',
    'escape': b'{"a\\q":{}}',
    'hex': b'{"\\u12g4":{}}',
    'lowsurrogate': b'{"\\udc00":{}}',
    'highsurrogate': b'{"\\ud83dx":{}}',
    'nul': b'{"\\u0000":{}}',
    'utf8': b'{"\xff":{}}',
    'overlong': b'{"\xc0\xaf":{}}',
    'utf16': b'{"\xed\xa0\x80":{}}',
    'control': b'{"a\tb":{}}',
    'deep': b'{"a":[[[[[[[[[[]]]]]]]]]]}',
    'longarray': b'{"a":{"shape":[' + b','.join([b'1'] * 65) + b']}}',
    'unterminated': b'{"abc',
    'eof': b'{"a":',
    'after': b'{} x',
    'nulpad': b'{}\x00\x00\x00\x00\x00\x00',
    'array': b'[]',
    'empty': b'',
}


def json_files():
    for name, text in JSON.items():
        put('json_%s.safetensors' % name, text)


os.makedirs(OUT, exist_ok=True)
good_files()
bad_files()
