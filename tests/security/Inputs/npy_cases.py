"""Writes the executable tests' input files into DIR: x.npy, f32[2,3] as
the model two.kiln takes it, and broken or mismatched variants of it.

usage: npy_cases.py DIR"""
import os
import sys

import numpy as np

d = sys.argv[1]
x = np.arange(6, dtype='<f4').reshape(2, 3)


def put(name, data):
    with open(os.path.join(d, name), 'wb') as f:
        f.write(data)


np.save(os.path.join(d, 'x.npy'), x)
np.save(os.path.join(d, 'f64.npy'), x.astype('<f8'))
np.save(os.path.join(d, 'shape.npy'), x.reshape(3, 2))
np.save(os.path.join(d, 'rank.npy'), x.reshape(6))
np.save(os.path.join(d, 'big_endian.npy'), x.astype('>f4'))
np.save(os.path.join(d, 'fortran.npy'), np.asfortranarray(x))
raw = open(os.path.join(d, 'x.npy'), 'rb').read()
put('truncated.npy', raw[:-5])          # 19 of the 24 bytes of data
put('extra.npy', raw + b'\0' * 4)       # 28 bytes of data
put('magic.npy', b'XNUMPY' + raw[6:])
put('bad_key.npy', raw.replace(b"'descr'", b"'dexcr'"))
put('header_cut.npy', raw[:40])         # the header runs past the end
put('empty.npy', b'')
