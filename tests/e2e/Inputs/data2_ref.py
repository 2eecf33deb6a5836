"""data2_ref.py: the NumPy reference for tests/e2e/data2.test.

  data2_ref.py GRAPH EXE [--bad-index]

GRAPH is one of the graphs in data2.test (move, scan, norm) and EXE the
executable kiln built from it.  Makes seeded random inputs (names, dtypes
and shapes from EXE --describe), runs EXE with every output written next
to it as EXE_NAME.npy, and compares each output with the reference below,
computed independently: np.broadcast_to, np.tile, np.tril/np.triu,
np.take_along_axis, reshape-and-transpose for depth_to_space and
space_to_depth as the ONNX spec writes them, NumPy's argmax/argmin
(select_last_index by flipping, as the ONNX reference does), np.cumsum,
and the LRN and InstanceNormalization formulas in float64.  Prints
"NAME: MATCH" per output (or what differs) and exits 1 on any mismatch.
Floats must agree within 1e-5 relative to max(|reference|, 1); integers
exactly.

With --bad-index, index input i gets an out-of-range entry; prints EXE's
exit status and error output instead.
"""
import json
import subprocess
import sys

import numpy as np

NP = {"f32": np.float32, "f64": np.float64, "i64": np.int64,
      "i32": np.int32, "i8": np.int8, "u8": np.uint8, "bool": np.bool_}
TOL = 1e-5


def make_inputs(desc, rng):
    """Random inputs by name: q and n hold small integers, so ties."""
    ins = {}
    for t in desc["inputs"]:
        name, shape, dt = t["name"], tuple(t["shape"]), NP[t["dtype"]]
        if name == "i":
            a = rng.integers(-4, 4, shape)
        elif name == "j":
            a = rng.integers(-4, 4, shape)
        elif name in ("q", "n"):
            a = rng.integers(0, 3, shape)
        elif name == "l":
            a = rng.integers(-50, 50, shape)
        elif dt == np.uint8:
            a = rng.integers(0, 256, shape)
        else:
            a = rng.uniform(-2, 2, shape)
        ins[name] = np.asarray(a).astype(dt)
    return ins


# ---- move ----------------------------------------------------------------

def expand(x, shape):
    return np.broadcast_to(x, np.broadcast_shapes(x.shape, tuple(shape)))


def gather_elements(x, idx, axis):
    """ONNX GatherElements: indices may be shorter than x off the axis."""
    axis %= x.ndim
    sub = tuple(slice(None) if d == axis else slice(0, idx.shape[d])
                for d in range(x.ndim))
    idx = np.where(idx < 0, idx + x.shape[axis], idx)
    return np.take_along_axis(x[sub], idx, axis)


def depth_to_space(x, b, mode):
    n, c, h, w = x.shape
    if mode == "DCR":
        t = x.reshape(n, b, b, c // (b * b), h, w)
        t = t.transpose(0, 3, 4, 1, 5, 2)
    else:
        t = x.reshape(n, c // (b * b), b, b, h, w)
        t = t.transpose(0, 1, 4, 2, 5, 3)
    return t.reshape(n, c // (b * b), h * b, w * b)


def space_to_depth(x, b):
    n, c, h, w = x.shape
    t = x.reshape(n, c, h // b, b, w // b, b).transpose(0, 3, 5, 1, 2, 4)
    return t.reshape(n, c * b * b, h // b, w // b)


def move(x, q, n, u, i, j, z):
    e = expand(q, [2, 1, 4, 1])
    eu = expand(u, [4, 1, 3])
    t = np.tile(n, (2, 3))
    te = np.triu(e, 2)
    dc = depth_to_space(z, 2, "CRD")
    return {
        "e": e, "eu": eu, "e1": expand(n, [1]), "t": t,
        "tq": np.tile(q, (1, 2, 1)), "tr": np.tril(x, -1), "te": te,
        "tb": np.triu(eu, -1), "tk": np.tril(t, -100),
        "ge": gather_elements(te, i, 2), "gn": gather_elements(n, j, -1),
        "dd": depth_to_space(z, 2, "DCR"), "dc": dc,
        "sd": space_to_depth(dc, 2), "s3": space_to_depth(x, 1),
    }


# ---- scan ----------------------------------------------------------------

def argext(x, axis, keepdims=True, last=False, fn=np.argmax):
    """ONNX ArgMax/ArgMin; select_last_index flips the axis first."""
    if last:
        flipped = np.flip(x, axis)
        r = x.shape[axis] - 1 - fn(flipped, axis=axis)
    else:
        r = fn(x, axis=axis)
    return np.expand_dims(r, axis) if keepdims else r


def cumsum(x, axis, exclusive=False, reverse=False):
    if reverse:
        x = np.flip(x, axis)
    y = np.cumsum(x.astype(np.float64) if x.dtype.kind == "f" else x,
                  axis=axis, dtype=None if x.dtype.kind == "f" else x.dtype)
    if exclusive:
        y = y - x
    return np.flip(y, axis) if reverse else y


def hardmax(x, axis):
    k = np.expand_dims(np.argmax(x, axis=axis), axis)
    y = np.zeros_like(x)
    np.put_along_axis(y, k, 1, axis)
    return y


def scan(x, q, n, d, l):
    x64 = x.astype(np.float64)
    cx = cumsum(x, 2, reverse=True)
    return {
        "am": argext(x, -1, keepdims=False),
        "aq": argext(q, 2, last=True),
        "aq0": argext(q, -1, fn=np.argmin),
        "an": argext(n, 0, last=True, fn=np.argmin),
        "an1": argext(n, 1, keepdims=False),
        "ad": argext(d, 0),
        "al": argext(l, -1, last=True, fn=np.argmin),
        "rm": np.min(x, axis=(1, 3), keepdims=True),
        "rp": np.prod(x64, axis=-1),
        "ra": np.min(cx.astype(np.float32), keepdims=True),
        "rq": np.prod(q.astype(np.float64), axis=(0, 2), keepdims=True),
        "cs": cumsum(n, 1, exclusive=True, reverse=True),
        "cd": cumsum(d, -2), "cl": cumsum(l, 1, exclusive=True),
        "hm": hardmax(x, 1), "hq": hardmax(q, -1), "cx": cx,
    }


# ---- norm ----------------------------------------------------------------

def lrn(x, size, alpha=0.0001, beta=0.75, bias=1.0):
    """The ONNX LRN formula, channel by channel."""
    x = x.astype(np.float64)
    c = x.shape[1]
    y = np.empty_like(x)
    for ch in range(c):
        lo = max(0, ch - (size - 1) // 2)
        hi = min(c - 1, ch + -(-(size - 1) // 2))
        s = np.sum(x[:, lo:hi + 1] ** 2, axis=1)
        y[:, ch] = x[:, ch] / (bias + alpha / size * s) ** beta
    return y


def instance_norm(x, s, b, eps=1e-5):
    x = x.astype(np.float64)
    axes = tuple(range(2, x.ndim))
    mean = x.mean(axis=axes, keepdims=True)
    var = x.var(axis=axes, keepdims=True)
    shape = (1, -1) + (1,) * (x.ndim - 2)
    return (x - mean) / np.sqrt(var + eps) * s.reshape(shape) + \
        b.reshape(shape)


def norm(x, s, b, w, ws):
    return {
        "l3": lrn(x, 3, 0.0002, 0.5, 2.0), "l2": lrn(x, 2),
        "l9": lrn(x, 9, 0.5, 1.5), "in": instance_norm(x, s, b, 0.01),
        "iw": instance_norm(w, ws, ws),
    }


GRAPHS = {"move": move, "scan": scan, "norm": norm}


def compare(name, got, ref):
    """Prints NAME: MATCH or what differs; returns whether it matched."""
    if got.shape != ref.shape:
        print(f"{name}: MISMATCH shape {got.shape}, want {ref.shape}")
        return False
    if got.dtype.kind != "f":
        ok = np.array_equal(got, ref.astype(got.dtype))
        print(f"{name}: {'MATCH' if ok else 'MISMATCH (exact)'}")
        return ok
    ref = ref.astype(np.float64)
    same = (got == ref) | (np.isnan(got) & np.isnan(ref))
    with np.errstate(invalid="ignore"):
        err = np.abs(got - ref) / np.maximum(np.abs(ref), 1)
    err = np.where(same, 0, err)
    if np.all(err <= TOL):
        print(f"{name}: MATCH")
        return True
    k = np.unravel_index(np.argmax(err), err.shape)
    print(f"{name}: MISMATCH at {k}: got {got[k]!r}, want {ref[k]!r} "
          f"(max error {err.max():.3g})")
    return False


def main():
    graph, exe = sys.argv[1], sys.argv[2]
    rng = np.random.default_rng(sum(map(ord, graph)))
    desc = json.loads(subprocess.run([exe, "--describe"], check=True,
                                     capture_output=True, text=True).stdout)
    ins = make_inputs(desc, rng)
    if "--bad-index" in sys.argv:
        ins["i"].flat[-1] = 4
    args = [exe]
    for name, a in ins.items():
        np.save(f"{exe}_{name}.npy", a)
        args += ["--input", f"{name}={exe}_{name}.npy"]
    outs = [t["name"] for t in desc["outputs"]]
    for name in outs:
        args += ["--output", f"{name}={exe}_{name}.npy"]
    run = subprocess.run(args, capture_output=True, text=True)
    if "--bad-index" in sys.argv:
        print(f"exit status {run.returncode}")
        sys.stdout.write(run.stderr)
        return 0
    if run.returncode:
        sys.exit(f"{exe} failed: {run.stderr}")
    ref = GRAPHS[graph](**ins)
    ok = [compare(n, np.load(f"{exe}_{n}.npy"), np.asarray(ref[n]))
          for n in outs]
    if all(ok):
        print(f"all {len(ok)} outputs match")
    return 0 if all(ok) else 1


if __name__ == "__main__":
    sys.exit(main())
