"""Writes .npy files whose headers break one of the runtime's limits, for
tests/limits/npy.test: each KIND below is a shape (the dtype is <f4) with
24 bytes of data after the header, so that only the header can be wrong.

usage: make_npy.py DIR   (writes DIR/KIND.npy for every KIND, and k.npy)
"""
import os
import sys

SHAPES = {
    'rank9': '(1, 1, 1, 1, 1, 1, 1, 1, 6)',
    'negative': '(-6,)',
    'zero': '(0, 3)',
    'elements_2_62': '(2147483648, 2147483648)',   # 2^64 bytes
    'bytes_2_63': '(2305843009213693952,)',        # 2^61 elements
    'bytes_2_62': '(1152921504606846976,)',        # fits: file too short
    'dim_too_large': '(99999999999999999999,)',
}


def write(path, header, data):
    text = header + ' ' * (-(10 + len(header) + 1) % 64) + '\n'
    with open(path, 'wb') as f:
        f.write(b'\x93NUMPY\x01\x00' + len(text).to_bytes(2, 'little'))
        f.write(text.encode('latin-1') + data)


def main():
    d = sys.argv[1]
    for kind, shape in SHAPES.items():
        write(os.path.join(d, kind + '.npy'), "{'descr': '<f4', "
              "'fortran_order': False, 'shape': %s, }" % shape, bytes(24))
    write(os.path.join(d, 'k.npy'), "{'descr': '<i4', 'fortran_order': "
          "False, 'shape': (), }", bytes(4))


main()
