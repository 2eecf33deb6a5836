"""npy_close.py RTOL ATOL A.npy B.npy [A2.npy B2.npy ...]: prints MATCH when
each pair of arrays has the same shape and dtype and agrees within
|a - b| <= ATOL + RTOL * |b| (NaN equal to NaN), else what differs.
ATOL written as Nx means N times the largest |b| of the pair: a
tolerance relative to the array's scale, for elements near zero that
cancellation leaves with few correct digits."""
import sys

import numpy as np


def main():
    rtol, atol_arg = float(sys.argv[1]), sys.argv[2]
    files = sys.argv[3:]
    bad = 0
    for a_path, b_path in zip(files[::2], files[1::2]):
        a, b = np.load(a_path), np.load(b_path)
        if a.shape != b.shape or a.dtype != b.dtype:
            print(f"{a_path}: {a.dtype}{list(a.shape)} vs {b.dtype}{list(b.shape)}")
            bad += 1
            continue
        atol = float(atol_arg.rstrip('x'))
        if atol_arg.endswith('x') and b.size:
            atol *= float(np.nanmax(np.abs(b.astype(np.float64))))
        if not np.allclose(a, b, rtol=rtol, atol=atol, equal_nan=True):
            err = np.abs(a.astype(np.float64) - b.astype(np.float64))
            print(f"{a_path}: max abs difference {np.nanmax(err):.3g}")
            bad += 1
    print("MATCH" if bad == 0 else f"{bad} differ")


main()
