"""fused_ref.py: the NumPy reference for fused.test (Inputs/fused.kir).

It shares no code with kiln: every output is computed here in float64
from the ops' textbook or ONNX definitions.

  fused_ref.py input DIR         writes DIR/{x,b,c,s}.npy, seeded
  fused_ref.py check DIR OUTDIR  compares OUTDIR/NAME.npy (kiln's outputs)
                                 with the reference; prints MATCH or what
                                 differs
"""
import math
import os
import sys

import numpy as np

from act_ref import differs  # same tolerances: rtol 1e-5, atol 1e-6

SELU_ALPHA, SELU_GAMMA = 1.67326319217681884765625, 1.05070102214813232421875
SHAPES = {"x": (2, 3, 4), "b": (4,), "c": (3, 1), "s": (1,)}


def f32(v):
    """Attributes reach the code as f32."""
    return float(np.float32(v))


def sigmoid(v):
    return 1 / (1 + np.exp(-v))


def reference(x, b, c, s):
    erf = np.vectorize(math.erf)
    e = np.exp(x * 0.25)
    tree = sigmoid(e - np.tanh(x)) * (x + s) * np.clip((x + s) / 6 + 0.5, 0, 1)
    e2 = e * e
    p1 = np.abs(x) + 1
    pw = (np.log(p1) / np.sqrt(p1)) ** 2
    cl = np.clip(np.minimum(np.maximum(pw, c), b), -1, 0.5)
    el = np.where(cl >= 0, cl, 0.5 * (np.exp(cl) - 1))
    g1 = 0.5 * x * (1 + erf(x / math.sqrt(2)))
    g2 = 0.5 * g1 * (1 + np.tanh(math.sqrt(2 / math.pi) *
                                 (g1 + 0.044715 * g1**3)))
    sl = g2 * sigmoid(g2)
    hg = np.clip(f32(0.25) * sl + f32(0.4), 0, 1)
    se = f32(SELU_GAMMA) * np.where(hg > 0, hg, f32(SELU_ALPHA) *
                                    (np.exp(hg) - 1))
    sp = np.log1p(np.exp(1 / p1))
    ex = np.exp(x - x.max(axis=-1, keepdims=True))
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    gamma = np.array([1.5, -0.5, 2, 0.25])
    beta = np.array([0.1, 0.2, -0.3, 0])
    return {
        "bias_relu": np.maximum(x * c + b, 0),
        "tree": tree,
        "shared": np.where(e2 >= 0, e2, f32(0.2) * e2),
        "math": -el,
        "acts": erf(se) + sp,
        "softmax": ex / ex.sum(axis=-1, keepdims=True),
        "layernorm": (x - mean) / np.sqrt(var + f32(1e-5)) * gamma + beta,
    }


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    d = sys.argv[2]
    if sys.argv[1] == "input":
        rng = np.random.default_rng(20261205)
        for name, shape in SHAPES.items():
            v = rng.uniform(-3, 3, size=shape).astype(np.float32)
            np.save(os.path.join(d, name + ".npy"), v)
    elif sys.argv[1] == "check":
        args = [np.load(os.path.join(d, n + ".npy")).astype(np.float64)
                for n in SHAPES]
        bad = 0
        for name, want in reference(*args).items():
            got = np.load(os.path.join(sys.argv[3], name + ".npy"))
            bad += differs(name, got, want)
        print("MATCH" if bad == 0 else f"MISMATCH in {bad} outputs")
        sys.exit(1 if bad else 0)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
