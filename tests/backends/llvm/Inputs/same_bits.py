"""same_bits.py DIR_A DIR_B: prints MATCH when every .npy file of DIR_A
has the same shape, dtype and bits as DIR_B's file of that name, except
that any NaN equals any NaN (compilers may order commutative operands
differently, and x86 propagates the first NaN operand's sign and
payload); else what differs."""
import os
import sys

import numpy as np


def main():
    a_dir, b_dir = sys.argv[1:3]
    bad = 0
    for name in sorted(os.listdir(a_dir)):
        a = np.load(os.path.join(a_dir, name))
        b = np.load(os.path.join(b_dir, name))
        if a.shape != b.shape or a.dtype != b.dtype:
            print(f"{name}: {a.dtype}{list(a.shape)} vs {b.dtype}{list(b.shape)}")
            bad += 1
            continue
        same = a.view(np.uint8).reshape(a.size, -1) == b.view(np.uint8).reshape(b.size, -1)
        same = same.all(axis=1) | (np.isnan(a) & np.isnan(b)).reshape(-1)
        if not same.all():
            i = np.flatnonzero(~same)
            print(f"{name}: {len(i)} differ, first at {i[0]}: "
                  f"{a.reshape(-1)[i[0]]!r} vs {b.reshape(-1)[i[0]]!r}")
            bad += 1
    print("MATCH" if bad == 0 else f"{bad} differ")


main()
