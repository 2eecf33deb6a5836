"""data_ref.py: the NumPy reference for tests/e2e/data.test.

  data_ref.py GRAPH EXE [--bad-index]

GRAPH is one of the graphs in data.test (layout, pad_resize, norm,
convt) and EXE the executable kiln built from it.  Makes seeded random
inputs (the names, dtypes and shapes come from EXE --describe), runs EXE
with every output written next to it as EXE_NAME.npy, and compares each
output with the reference below, computed independently in float64:
slices with Python's slice(), gathers with np.take, pads with np.pad,
resize as a product of per-axis interpolation matrices from the ONNX
coordinate formulas, normalizations from their formulas, and the
transposed convolution by explicit scatter loops.  Prints "NAME: MATCH"
per output (or what differs) and exits 1 on any mismatch.  Floats must
agree within 1e-5, relative to max(|reference|, 1).

With --bad-index, index input i gets an out-of-range entry; prints EXE's
exit status and error output instead.
"""
import json
import os
import subprocess
import sys

import numpy as np

NP = {"f32": np.float32, "f64": np.float64, "i64": np.int64,
      "i32": np.int32, "i8": np.int8, "u8": np.uint8, "bool": np.bool_}
TOL = 1e-5


def make_inputs(graph, desc, rng):
    """Random inputs by name; indices stay in range, variances positive."""
    ins = {}
    for t in desc["inputs"]:
        name, shape, dt = t["name"], tuple(t["shape"]), NP[t["dtype"]]
        if name == "i":
            a = rng.integers(-4, 4, shape)
        elif name == "j":
            a = rng.integers(-5, 5, shape)
        elif dt == np.bool_:
            a = rng.integers(0, 2, shape)
        elif dt != np.float32:
            a = rng.integers(0, 100, shape)
        elif name == "v":
            a = rng.uniform(0.1, 2, shape)
        else:
            a = rng.uniform(-2, 2, shape)
        ins[name] = np.asarray(a).astype(dt)
    return ins


# ---- layout --------------------------------------------------------------

def layout(x, n, u, m, i, j):
    k = np.array([3, -1, 0, -4], np.int32)
    t = np.transpose(x, (0, 2, 3, 1))
    c = np.concatenate([x, np.transpose(t, (0, 3, 1, 2)), x], axis=1)
    t2 = np.transpose(c, (3, 1, 2, 0))
    tn = n.T
    return {
        "t": t, "tn": tn, "tu": u.T, "c": c,
        "cs": t2[slice(-1, -2**63, -2), slice(7, 1, -3), :],
        "cu": np.concatenate([u, u], axis=0),
        "cn": np.concatenate([tn, tn, tn], axis=-1),
        "sm": m[1:100:2, 1:2],
        "s1": x[:, :, -2:100, 2:-100:-1],
        "g": np.take(x, i, axis=2), "gj": np.take(x, j, axis=-1),
        "gk": np.take(n, k, axis=1), "gt": np.take(t2, i, axis=0),
    }


# ---- pad and resize --------------------------------------------------------

def pad(x, pads, mode, value=0.0):
    """ONNX Pad: negative pads crop first, then np.pad adds the rest."""
    r = x.ndim
    crop = tuple(slice(max(-pads[d], 0), x.shape[d] - max(-pads[r + d], 0))
                 for d in range(r))
    width = [(max(pads[d], 0), max(pads[r + d], 0)) for d in range(r)]
    if mode == "constant":
        return np.pad(x[crop], width, mode, constant_values=value)
    return np.pad(x[crop], width, mode)


def coord(o, n, m, ctm):
    """ONNX Resize: the input coordinate of output index o, n -> m."""
    scale = m / n
    if ctm == "half_pixel":
        return (o + 0.5) / scale - 0.5
    if ctm == "pytorch_half_pixel":
        return (o + 0.5) / scale - 0.5 if m > 1 else -0.5
    if ctm == "asymmetric":
        return o / scale
    return 0.0 if m == 1 else o * (n - 1) / (m - 1)


def nearest(c, mode):
    f = np.floor(c)
    if c == f:
        return int(c)
    up = {"round_prefer_floor": c - f > 0.5, "round_prefer_ceil": c - f >= 0.5,
          "floor": False, "ceil": True}[mode]
    return int(f) + up


def weights(n, m, mode, ctm, nmode):
    """The m x n matrix taking a dim of n elements to m."""
    w = np.zeros((m, n))
    for o in range(m):
        c = coord(o, n, m, ctm)
        if mode == "nearest":
            w[o, min(max(nearest(c, nmode), 0), n - 1)] = 1
            continue
        lo = int(np.floor(c))
        for k, wt in ((lo, 1 - (c - lo)), (lo + 1, c - lo)):
            w[o, min(max(k, 0), n - 1)] += wt
    return w


def resize(x, h, w, mode="nearest", ctm="half_pixel",
           nmode="round_prefer_floor"):
    wh = weights(x.shape[2], h, mode, ctm, nmode)
    ww = weights(x.shape[3], w, mode, ctm, nmode)
    return np.einsum("ih,nchw,jw->ncij", wh, x.astype(np.float64), ww)


def pad_resize(x):
    pe = pad(x, [0, 0, 4, -1, 0, 0, -2, 5], "edge")
    return {
        "pc": pad(x, [0, 1, 2, 0, 1, 0, 3, 4], "constant", 1.5),
        "pr": pad(x, [0, 0, -1, 3, 0, 0, 2, -2], "reflect"),
        "pe": pe,
        "pn": pad(x, [0, 0, 1, 1, 0, 0, 1, 1], "constant", -np.inf),
        "r1": resize(x, 10, 12),
        "r2": resize(x, 3, 4, nmode="round_prefer_ceil"),
        "r3": resize(x, 7, 9, ctm="asymmetric", nmode="floor"),
        "r4": resize(x, 8, 5, ctm="align_corners", nmode="ceil"),
        "r5": resize(x, 2, 9, ctm="pytorch_half_pixel"),
        "l1": resize(x, 10, 12, "linear"),
        "l2": resize(x, 3, 4, "linear", "pytorch_half_pixel"),
        "l3": resize(x, 1, 9, "linear", "pytorch_half_pixel"),
        "l4": resize(x, 9, 4, "linear", "align_corners"),
        "l5": resize(x, 7, 13, "linear", "asymmetric"),
        "rp": resize(pe, 14, 5, "linear"),
    }


# ---- normalization ---------------------------------------------------------

def batchnorm(x, s, b, m, v, eps):
    sh = (1, -1) + (1,) * (x.ndim - 2)
    x, m, v = (a.astype(np.float64) for a in (x, m, v))
    eps = float(np.float32(eps))
    return ((x - m.reshape(sh)) / np.sqrt(v.reshape(sh) + eps) *
            s.reshape(sh) + b.reshape(sh))


def layernorm(x, scale, bias, axis, eps):
    x = x.astype(np.float64)
    axes = tuple(range(axis % x.ndim, x.ndim))
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    return (x - mean) / np.sqrt(var + float(np.float32(eps))) * scale + bias


def norm(x, s, b, m, v, ls, lb, ls2):
    bn2 = batchnorm(x, s, b, m, v, 0.01)
    return {
        "bn": batchnorm(x, s, b, m, v, 1e-5), "bn2": bn2,
        "ln": layernorm(x, ls, lb, -1, 1e-5),
        "ln2": layernorm(x, ls2, 0, 1, 0.001),
        "lnb": layernorm(bn2.astype(np.float32), ls, 0, -1, 1e-5),
    }


# ---- transposed convolution ------------------------------------------------

def conv_transpose(x, w, b, strides=(1, 1), pads=(0, 0, 0, 0),
                   dilations=(1, 1), output_padding=(0, 0), group=1):
    """Scatters every input element through every tap into the output."""
    n, c, h, wd = x.shape
    og, kh, kw = w.shape[1:]
    (sh, sw), (dh, dw) = strides, dilations
    oh = sh * (h - 1) + output_padding[0] + (kh - 1) * dh + 1 - pads[0] - pads[2]
    ow = sw * (wd - 1) + output_padding[1] + (kw - 1) * dw + 1 - pads[1] - pads[3]
    y = np.zeros((n, og * group, oh, ow))
    for ci in range(c):
        g = ci // (c // group)
        for i in range(h):
            for j in range(wd):
                for u in range(kh):
                    for v in range(kw):
                        r = i * sh - pads[0] + u * dh
                        q = j * sw - pads[1] + v * dw
                        if 0 <= r < oh and 0 <= q < ow:
                            y[:, g * og:(g + 1) * og, r, q] += (
                                x[:, ci, i, j, None] * w[ci, :, u, v])
    if b is not None:
        y += b.reshape(1, -1, 1, 1)
    return y


def convt(x, w, b, wg, bg):
    d = conv_transpose(x, wg, bg, strides=(1, 2), dilations=(2, 1), group=2)
    return {
        "a": conv_transpose(x, w, None),
        "c": conv_transpose(x, w, b, strides=(2, 3), pads=(1, 0, 2, 1),
                            output_padding=(1, 2)),
        "d": d,
        "e": conv_transpose(x, w, b, strides=(3, 2), pads=(1, 1, 1, 1),
                            dilations=(2, 2), output_padding=(2, 1)),
        "f": conv_transpose(d.astype(np.float32), wg, None, group=2),
    }


GRAPHS = {"layout": layout, "pad_resize": pad_resize, "norm": norm,
          "convt": convt}


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
    ins = make_inputs(graph, desc, rng)
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
