"""act_ref.py: the NumPy reference for act.test (tests/e2e/Inputs/act.kir).

It shares no code with kiln: every op is computed here in float64 from
its textbook or ONNX definition (gelu through math.erf), and random_normal
from the documented recipe (splitmix64 counters, Box-Muller).

  act_ref.py input OUT.npy     the input x: f32[2,3,4], uniform in [-4, 4)
  act_ref.py check X.npy DIR   compares DIR/NAME.npy (kiln's outputs) with
                               the reference; prints MATCH or what differs
  act_ref.py normal Y.npy MEAN SCALE SEED
                               compares Y.npy with random_normal's values
"""
import math
import os
import sys

import numpy as np

RTOL, ATOL = 1e-5, 1e-6
SELU_ALPHA, SELU_GAMMA = 1.67326319217681884765625, 1.05070102214813232421875
M64 = (1 << 64) - 1


def splitmix64(seed, j):
    """Output j of splitmix64 started from state seed."""
    z = (seed + (j + 1) * 0x9E3779B97F4A7C15) & M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def random_normal(shape, mean, scale, seed):
    n = int(np.prod(shape))
    out = []
    for k in range((n + 1) // 2):
        u1 = ((splitmix64(seed, 2 * k) >> 11) + 1) / 2.0**53
        u2 = (splitmix64(seed, 2 * k + 1) >> 11) / 2.0**53
        r = math.sqrt(-2 * math.log(u1))
        out += [r * math.cos(2 * math.pi * u2), r * math.sin(2 * math.pi * u2)]
    return mean + scale * np.array(out[:n]).reshape(shape)


def log_softmax(x, axis):
    m = x.max(axis=axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


def reference(x):
    erf = np.vectorize(math.erf)
    f32 = lambda v: float(np.float32(v))  # attributes reach kernels as f32
    noise = random_normal((3, 5), 1, 2, 7)
    return {
        "exp": np.exp(x),
        "log": np.log(np.abs(x) + 1),
        "sqrt": np.sqrt(np.abs(x)),
        "neg": -x,
        "leaky_relu": np.where(x >= 0, x, f32(0.1) * x),
        "elu": np.where(x >= 0, x, f32(0.5) * (np.exp(x) - 1)),
        "selu": f32(SELU_GAMMA) * np.where(
            x > 0, x, f32(SELU_ALPHA) * np.exp(x) - f32(SELU_ALPHA)),
        "gelu": 0.5 * x * (1 + erf(x / math.sqrt(2))),
        "gelu_tanh": 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) *
                                            (x + 0.044715 * x**3))),
        "silu": x / (1 + np.exp(-x)),
        "hardswish": x * np.clip(x / 6 + 0.5, 0, 1),
        "hardsigmoid": np.clip(f32(0.2) * x + 0.5, 0, 1),
        "clip": np.clip(x, -0.5, 1.5),
        "clip_min": np.maximum(x, 0),
        "dropout": x,
        "log_softmax": log_softmax(x, 1),
        "reduce_sum": x.sum(axis=(0, 2), keepdims=True),
        "reduce_mean": x.mean(axis=-1),
        "reduce_max": x.max(),
        "random_normal": noise,
        "relu6": np.clip(noise, 0, 6),
        "shifted": x + random_normal((4,), 0, 1, 9),
    }


def differs(name, got, want):
    """Prints and returns whether got (f32) is not want within tolerance."""
    want = np.asarray(want)
    if got.dtype != np.float32 or got.shape != want.shape:
        print(f"{name}: got {got.dtype}{list(got.shape)}, want "
              f"float32{list(want.shape)}")
        return True
    err = np.abs(got - want) - (ATOL + RTOL * np.abs(want))
    if (err > 0).any() or np.isnan(got).any():
        i = np.unravel_index(np.argmax(err), got.shape)
        print(f"{name}: differs at {i}: got {got[i]!r} want {want[i]!r}")
        return True
    return False


def check(xpath, outdir):
    x = np.load(xpath).astype(np.float64)
    bad = 0
    for name, want in reference(x).items():
        got = np.load(os.path.join(outdir, name + ".npy"))
        bad += differs(name, got, want)
    print("MATCH" if bad == 0 else f"MISMATCH in {bad} outputs")
    return bad


def normal(path, mean, scale, seed):
    got = np.load(path)
    bad = differs(path, got, random_normal(got.shape, mean, scale, seed))
    print("MATCH" if not bad else "MISMATCH")
    return bad


def main():
    if sys.argv[1] == "input":
        rng = np.random.default_rng(20240611)
        x = rng.uniform(-4, 4, size=(2, 3, 4)).astype(np.float32)
        np.save(sys.argv[2], x)
    elif sys.argv[1] == "check":
        sys.exit(1 if check(sys.argv[2], sys.argv[3]) else 0)
    elif sys.argv[1] == "normal":
        mean, scale = float(sys.argv[3]), float(sys.argv[4])
        sys.exit(1 if normal(sys.argv[2], mean, scale, int(sys.argv[5]))
                 else 0)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
