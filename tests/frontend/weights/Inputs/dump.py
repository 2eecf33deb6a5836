"""dump.py FILE: prints a safetensors file's metadata, then one line per
tensor in data order: name, dtype, shape and values.  Independent of kiln
(struct + json + numpy)."""
import json
import struct
import sys

import numpy as np

KINDS = {'F32': '<f4', 'F64': '<f8', 'I64': '<i8', 'I32': '<i4', 'I8': 'i1',
         'U8': 'u1', 'BOOL': '?'}
raw = open(sys.argv[1], 'rb').read()
(n,) = struct.unpack('<Q', raw[:8])
header = json.loads(raw[8:8 + n])
print('metadata', json.dumps(header.pop('__metadata__', None)))
for name, e in sorted(header.items(), key=lambda kv: kv[1]['data_offsets']):
    b, end = e['data_offsets']
    a = np.frombuffer(raw[8 + n + b:8 + n + end], KINDS[e['dtype']])
    print(json.dumps(name), e['dtype'], e['shape'], a.tolist())
