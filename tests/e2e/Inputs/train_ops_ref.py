"""train_ops_ref.py: inputs and expected outputs for tests/e2e/train_ops.test.

  train_ops_ref.py DIR

writes into DIR, for Inputs/train_ops.kir, seeded inputs (x on a coarse
grid, so that pooling windows tie) as NAME.npy, labels_bad.npy (label 4 of
4 classes), and each output's reference as NAME.npy, computed from the
ops' definitions in float64 and rounded to f32: conv2d_grad_w and
maxpool2d_grad by loops over the taps, dropout_train by its splitmix64
recipe in Python integers (exact, as the kernel is), the loss and its
gradient from softmax.
"""
import sys

import numpy as np

U64 = (1 << 64) - 1
GOLDEN = 0x9e3779b97f4a7c15


def make_inputs(rng):
    m = rng.uniform(-1, 1, (2, 4, 4, 3))
    m[0, 0, 0] = 0
    return {
        "x": rng.integers(-2, 3, (2, 4, 7, 6)) / 2,
        "dy": rng.uniform(-1, 1, (2, 4, 4, 3)),
        "m": m,
        "dp": rng.uniform(-1, 1, (2, 4, 4, 4)),
        "z": rng.uniform(-3, 3, (5, 4)),
        "labels": rng.integers(0, 4, 5).astype(np.uint8),
        "step": np.array(7, np.int64),
        "dloss": np.array(0.5),
    }


def conv2d_grad_w(x, dy, k, s, p, d, group):
    """dw[o,q,u,v] = sum over n, i, j of dy * the input tap (0 in the
    padding)."""
    _, c, h, w = x.shape
    _, oc, oh, ow = dy.shape
    cg, og = c // group, oc // group
    dw = np.zeros((oc, cg, k[0], k[1]))
    for o in range(oc):
        for q in range(cg):
            xc = x[:, o // og * cg + q]
            for u in range(k[0]):
                for v in range(k[1]):
                    for i in range(oh):
                        for j in range(ow):
                            ih = i * s[0] - p[0] + u * d[0]
                            iw = j * s[1] - p[1] + v * d[1]
                            if 0 <= ih < h and 0 <= iw < w:
                                dw[o, q, u, v] += np.sum(dy[:, o, i, j] *
                                                         xc[:, ih, iw])
    return dw


def maxpool2d_grad(dy, x, k, s, p):
    """Each dy to the first strictly largest tap of its window."""
    dx = np.zeros(x.shape)
    h, w = x.shape[2:]
    for n in range(x.shape[0]):
        for c in range(x.shape[1]):
            for i in range(dy.shape[2]):
                for j in range(dy.shape[3]):
                    best, at = -np.inf, None
                    for u in range(k[0]):
                        for v in range(k[1]):
                            ih, iw = i * s[0] - p[0] + u, j * s[1] - p[1] + v
                            if 0 <= ih < h and 0 <= iw < w and \
                                    x[n, c, ih, iw] > best:
                                best, at = x[n, c, ih, iw], (ih, iw)
                    dx[n, c][at] += dy[n, c, i, j]
    return dx


def splitmix64(seed, j):
    z = (seed + (j + 1) * GOLDEN) & U64
    z = ((z ^ (z >> 30)) * 0xbf58476d1ce4e5b9) & U64
    z = ((z ^ (z >> 27)) * 0x94d049bb133111eb) & U64
    return z ^ (z >> 31)


def dropout_train(x, rate, seed, t):
    s = splitmix64(seed, t)
    keep = [(splitmix64(s, i) >> 11) * 2.0**-53 >= rate for i in range(x.size)]
    scale = np.float32(1) / (np.float32(1) - np.float32(rate))
    x = x.astype(np.float32)
    return np.where(np.reshape(keep, x.shape), x * scale, np.float32(0))


def xent(z, labels, ls):
    """Per row: -sum q log_softmax(z), and softmax - q."""
    n, c = z.shape
    e = np.exp(z - z.max(axis=1, keepdims=True))
    p = e / e.sum(axis=1, keepdims=True)
    q = (1 - ls) * np.eye(c)[labels.astype(np.int64)] + ls / c
    return -np.sum(q * np.log(p)) / n, p - q


def reference(x, dy, m, dp, z, labels, step, dloss):
    loss, g = xent(z, labels, 0.1)
    dx = maxpool2d_grad(dp, x, (3, 3), (2, 2), (1, 1))
    return {
        "dw": conv2d_grad_w(x, np.where(m > 0, dy, 0), (3, 2), (2, 2),
                            (1, 0), (1, 2), 2),
        "d": dropout_train(x, 0.375, 42, int(step)),
        "dd": dropout_train(dx, 0.375, 42, int(step)),
        "loss": loss,
        "gz": g * dloss / z.shape[0],
    }


def main():
    d = sys.argv[1]
    ins = make_inputs(np.random.default_rng(2024))
    for name in ("x", "dy", "m", "dp", "z", "dloss"):
        ins[name] = ins[name].astype(np.float32)
    for name, a in ins.items():
        np.save(f"{d}/{name}.npy", a)
    bad = ins["labels"].copy()
    bad[2] = 4
    np.save(f"{d}/labels_bad.npy", bad)
    f64 = {k: v.astype(np.float64) if v.dtype == np.float32 else v
           for k, v in ins.items()}
    for name, a in reference(**f64).items():
        np.save(f"{d}/{name}.npy", np.asarray(a, np.float32))


if __name__ == "__main__":
    main()
