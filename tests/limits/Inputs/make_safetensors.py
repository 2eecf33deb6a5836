"""Writes safetensors files whose header breaks one of kiln's limits, for
tests/limits/safetensors.test.  Each holds one tensor 'W' (the name of a
parameter in both of that test's models) with 96 bytes of data, so that
only the header's shape can be wrong.

usage: make_safetensors.py DIR   (writes DIR/KIND.safetensors per KIND)
"""
import json
import os
import sys

SHAPES = {
    'rank9': '[1,1,1,1,1,1,1,1,24]',
    'negative': '[8,-3]',
    'zero': '[0,3]',
    'elements_2_62': '[2147483648,2147483648]',     # 2^64 bytes as F32
    'bytes_2_62': '[1152921504606846976]',          # fits: offsets too short
}


def write(path, shape):
    header = ('{"W":{"dtype":"F32","shape":%s,"data_offsets":[0,96]}}'
              % shape).encode()
    header += b' ' * (-len(header) % 8)
    with open(path, 'wb') as f:
        f.write(len(header).to_bytes(8, 'little') + header + bytes(96))


def main():
    for kind, shape in SHAPES.items():
        write(os.path.join(sys.argv[1], kind + '.safetensors'), shape)


main()
