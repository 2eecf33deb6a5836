"""synth.py DIR N: a small learnable 10-class image set as .npy files.

train_x.npy f32[N,784] (test_x.npy f32[N/4,784]): each class lights a
band of its own rows of a 28x28 image, plus uniform noise; train_y.npy
and test_y.npy hold the classes (i64).  Seeded, so runs are repeatable.
"""
import os
import sys

import numpy as np


def make(rng, n):
    y = rng.integers(0, 10, n)
    x = rng.uniform(0, 0.5, (n, 28, 28)).astype(np.float32)
    for i, c in enumerate(y):
        x[i, 2 * c + 4:2 * c + 7, :] += 0.5
    return x.reshape(n, 784), y.astype(np.int64)


def main(argv):
    out, n = argv[1], int(argv[2])
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(7)
    for split, count in (("train", n), ("test", n // 4)):
        x, y = make(rng, count)
        np.save(os.path.join(out, split + "_x.npy"), x)
        np.save(os.path.join(out, split + "_y.npy"), y)


if __name__ == "__main__":
    main(sys.argv)
