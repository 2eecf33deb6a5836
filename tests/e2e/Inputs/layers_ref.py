"""layers_ref.py: the end-to-end check of the built-in layers.

  layers_ref.py KILN LAYERS.kiln MODEL TMPDIR

Builds MODEL of layers.kiln with --emit=weights, replaces every weight
with random values (running variances positive) and rebuilds with
--weights; runs the executable on random inputs and compares each output
with the float64 NumPy reference below, within 1e-5 (relative to the
output's magnitude when above 1).  The references are written from the
layers' definitions (Keras and ONNX semantics) with plain loops, shifted
slices and einsum, and share no code with kiln; sample's noise comes from
act_ref.py's independent random_normal.
"""
import json
import math
import os
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from act_ref import SELU_ALPHA, SELU_GAMMA, log_softmax, random_normal  # noqa: E402,E501
from reference import load_safetensors, save_safetensors  # noqa: E402

VOCAB = 10          # embedding's vocab in layers.kiln


def f32(v):
    return float(np.float32(v))   # attributes reach kernels as f32


# ---- convolutions --------------------------------------------------------

def conv2d(x, w, b, stride=(1, 1), pads=(0, 0, 0, 0), dil=(1, 1), group=1):
    """NCHW / OIHW cross-correlation; pads are top, left, bottom, right."""
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])))
    oh = (xp.shape[2] - (kh - 1) * dil[0] - 1) // stride[0] + 1
    ow = (xp.shape[3] - (kw - 1) * dil[1] - 1) // stride[1] + 1
    y = np.zeros((n, o, oh, ow))
    og = o // group
    for oc in range(o):
        g = oc // og
        for u in range(kh):
            for v in range(kw):
                r0, c0 = u * dil[0], v * dil[1]
                patch = xp[:, g * cg:(g + 1) * cg,
                           r0:r0 + (oh - 1) * stride[0] + 1:stride[0],
                           c0:c0 + (ow - 1) * stride[1] + 1:stride[1]]
                y[:, oc] += np.einsum("nchw,c->nhw", patch, w[oc, :, u, v])
    return y if b is None else y + b[None, :, None, None]


def same_pads(size, k, s, d):
    """Keras/TensorFlow 'same': ceil(size / s) out, odd pad at the end."""
    out = -(-size // s)
    total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
    return total // 2, total - total // 2


def conv1d(x, w, b, stride=1, pads=(0, 0), dil=1, group=1):
    """[N, C, L] / [O, C/G, K], by loops over output positions."""
    n, c, length = x.shape
    o, cg, k = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), pads))
    out = (xp.shape[2] - (k - 1) * dil - 1) // stride + 1
    og = o // group
    y = np.zeros((n, o, out))
    for oc in range(o):
        g = oc // og
        for t in range(out):
            taps = xp[:, g * cg:(g + 1) * cg, t * stride:t * stride +
                      (k - 1) * dil + 1:dil]
            y[:, oc, t] = np.einsum("nck,ck->n", taps, w[oc])
    return y if b is None else y + b[None, :, None]


def conv2d_transpose(x, w, b, stride, kernel_pad, outpad=(0, 0),
                     dil=(1, 1)):
    """By scatter: x[n,c,i,j] * w[c,o,u,v] lands on the full output at
    (i*s + u*d, j*s + v*d); the result is the full output cropped by
    kernel_pad (top, left, bottom, right), with outpad more rows and
    columns at the end (zeros before the bias)."""
    n, c, h, wd = x.shape
    _, o, kh, kw = w.shape
    fh = stride[0] * (h - 1) + (kh - 1) * dil[0] + 1
    fw = stride[1] * (wd - 1) + (kw - 1) * dil[1] + 1
    full = np.zeros((n, o, fh + outpad[0], fw + outpad[1]))
    for i in range(h):
        for j in range(wd):
            for u in range(kh):
                for v in range(kw):
                    full[:, :, i * stride[0] + u * dil[0],
                         j * stride[1] + v * dil[1]] += np.einsum(
                             "nc,co->no", x[:, :, i, j], w[:, :, u, v])
    t, l_, bt, r = kernel_pad
    y = full[:, :, t:full.shape[2] - bt, l_:full.shape[3] - r]
    return y + b[None, :, None, None]


def transpose_same(x, w, b, s):
    """Keras 'same' for conv2d_transpose: out = in * s, the crop being the
    padding a 'same' conv2d of the output would take (k - s, odd row at
    the end); with k < s the missing rows are zeros at the end."""
    k = w.shape[2:]
    crop = [max(k[i] - s[i], 0) for i in range(2)]
    extra = [max(s[i] - k[i], 0) for i in range(2)]
    return conv2d_transpose(x, w, b, s, (crop[0] // 2, crop[1] // 2,
                                         crop[0] - crop[0] // 2,
                                         crop[1] - crop[1] // 2), extra)


def depthwise(x, w, b, stride, pads):
    """Output channel c*m + j is x channel c with filter w[c*m + j, 0]."""
    m = w.shape[0] // x.shape[1]
    outs = []
    for oc in range(w.shape[0]):
        xc = x[:, oc // m:oc // m + 1]
        outs.append(conv2d(xc, w[oc:oc + 1], None, stride, pads)[:, 0])
    y = np.stack(outs, axis=1)
    return y if b is None else y + b[None, :, None, None]


def relu(x):
    return np.maximum(x, 0)


def ref_conv(W, x):
    s, im = x["s"], x["x"]
    p = same_pads(11, 3, 2, 1)
    dpads = same_pads(7, 3, 2, 1) + same_pads(6, 3, 2, 1)
    d = depthwise(im, W["dw.w"], W["dw.b"], (2, 2),
                  (dpads[0], dpads[2], dpads[1], dpads[3]))
    dws = depthwise(im, W["sep.dw"], None, (1, 1), (0, 0, 0, 0))
    return {
        "c1": conv1d(s, W["c1.w"], W["c1.b"], stride=2, pads=p),
        "c1g": np.tanh(conv1d(s, W["c1g.w"], W["c1g.b"], pads=(2, 1), dil=3,
                              group=2)),
        "c1v": conv1d(s, W["c1v.w"], None),
        "t": transpose_same(im, W["t.w"], W["t.b"], (2, 2)),
        "tv": conv2d_transpose(im, W["tv.w"], W["tv.b"], (2, 1), (0, 0, 0, 0),
                               (1, 0), (1, 2)),
        "t1": relu(transpose_same(im, W["t1.w"], W["t1.b"], (3, 3))),
        "dw": d,
        "sep": relu(conv2d(dws, W["sep.pw"], W["sep.b"])),
    }


# ---- pools and upsampling ------------------------------------------------

def bilinear(x, s):
    """Half-pixel centres: output o reads input (o + 0.5) / s - 0.5,
    clamped to the edge, interpolated between its two neighbours."""
    def axis_weights(n_in, n_out):
        m = np.zeros((n_out, n_in))
        for o in range(n_out):
            src = min(max((o + 0.5) / s - 0.5, 0), n_in - 1)
            lo = int(math.floor(src))
            hi = min(lo + 1, n_in - 1)
            m[o, lo] += 1 - (src - lo)
            m[o, hi] += src - lo
        return m
    mh = axis_weights(x.shape[2], x.shape[2] * s)
    mw = axis_weights(x.shape[3], x.shape[3] * s)
    return np.einsum("ph,nchw,qw->ncpq", mh, x, mw)


def ref_pool(W, x):
    im = x["x"]
    return {
        "ga": im.mean(axis=(2, 3)),
        "gm": im.max(axis=(2, 3), keepdims=True),
        "un": np.repeat(np.repeat(im, 2, axis=2), 3, axis=3),
        "ub": bilinear(im, 2),
    }


# ---- normalization -------------------------------------------------------

def batchnorm(x, W, name, axis, eps):
    shape = [1] * x.ndim
    shape[axis] = x.shape[axis]
    g, b, m, v = (W[name + "." + k].reshape(shape)
                  for k in ("gamma", "beta", "mean", "var"))
    return (x - m) / np.sqrt(v + f32(eps)) * g + b


def layernorm(x, W, name, axis, eps):
    axes = tuple(range(axis, x.ndim))
    m = x.mean(axis=axes, keepdims=True)
    v = ((x - m) ** 2).mean(axis=axes, keepdims=True)
    return (x - m) / np.sqrt(v + f32(eps)) * W[name + ".gamma"] + \
        W[name + ".beta"]


def ref_norm(W, x):
    return {
        "bn": batchnorm(x["x"], W, "bn", 1, 1e-3),
        "bn_last": batchnorm(x["s"], W, "bn_last", 2, 0.01),
        "ln": layernorm(x["s"], W, "ln", 2, 1e-5),
        "ln2": layernorm(x["s"], W, "ln2", 1, 1e-3),
    }


def ref_embed(W, x):
    return {"e": W["e.table"][x["ids"]], "e32": W["e32.table"][x["ids32"]]}


# ---- lists, reductions, activations --------------------------------------

def ref_misc(W, x):
    a, b, v = x["a"], x["b"], x["v"]
    erf = np.vectorize(math.erf)

    def dense(name):
        return v @ W[name + ".w"] + W[name + ".b"]
    sig = lambda t: 1 / (1 + np.exp(-t))
    e = dense("elu")
    s = dense("selu")
    g = dense("gelu")
    return {
        "cat": np.concatenate([a, b], axis=1),
        "sum2": a + b,
        "prod": a * b,
        "m": a.mean(axis=(1, 2)),
        "s": a.sum(axis=1, keepdims=True),
        "mx": a.max(axis=-1),
        "leaky": np.where(dense("leaky") >= 0, dense("leaky"),
                          f32(0.01) * dense("leaky")),
        "elu": np.where(e >= 0, e, np.exp(e) - 1),
        "selu": f32(SELU_GAMMA) * np.where(s > 0, s, f32(SELU_ALPHA) *
                                           (np.exp(s) - 1)),
        "gelu": 0.5 * g * (1 + erf(g / math.sqrt(2))),
        "swish": dense("swish") * sig(dense("swish")),
        "hswish": dense("hswish") * np.clip(dense("hswish") / 6 + 0.5, 0, 1),
        "hsig": np.clip(f32(0.2) * dense("hsig") + 0.5, 0, 1),
        "logsm": log_softmax(dense("logsm"), -1),
        "sw": v * sig(v),
        "drop": v,
        "noisy": v,
    }


# ---- the VAE's sampling and KL term ---------------------------------------

def ref_vae(W, x, seeds):
    h = x["h"]
    m = h @ W["mean.w"] + W["mean.b"]
    lv = h @ W["logvar.w"] + W["logvar.b"]
    eps = random_normal(m.shape, 0, 1, seeds["z.eps"])
    return {"z": m + np.exp(0.5 * lv) * eps,
            "kl": -0.5 * (1 + lv - m ** 2 - np.exp(lv)).sum(axis=1)}


REFERENCES = {"conv": ref_conv, "pool": ref_pool, "norm": ref_norm,
              "embed": ref_embed, "misc": ref_misc, "vae": ref_vae}


# ---- driver --------------------------------------------------------------

def kiln(exe, *args):
    return subprocess.run([exe, *args], check=True, capture_output=True,
                          text=True).stdout


def seeds_of(ir):
    """The seed attribute of each random_normal node, by value name."""
    out = {}
    for line in ir.splitlines():
        if "= random_normal" in line:
            name = line.split("=")[0].strip().lstrip("%")
            out[name] = int(line.split("seed=")[1].split("}")[0])
    return out


def randomize(W, rng):
    out = {}
    for k, v in W.items():
        if k.endswith(".var"):
            out[k] = rng.uniform(0.5, 1.5, v.shape)
        else:
            out[k] = rng.normal(0, 0.5, v.shape)
    return out


def inputs(desc, tmp, rng):
    args, values = [], {}
    for t in desc["inputs"]:
        if t["dtype"] in ("i64", "i32"):
            v = rng.integers(0, VOCAB, t["shape"]).astype(
                np.int64 if t["dtype"] == "i64" else np.int32)
        else:
            v = rng.standard_normal(t["shape"]).astype(np.float32)
        path = os.path.join(tmp, t["name"] + ".npy")
        np.save(path, v)
        args += ["--input", f'{t["name"]}={path}']
        values[t["name"]] = v.astype(np.float64) if v.dtype.kind == "f" else v
    return args, values


def main():
    exe, src, model, tmp = sys.argv[1:5]
    rng = np.random.default_rng(2024)
    w0 = os.path.join(tmp, model + ".safetensors")
    w1 = os.path.join(tmp, model + "_rand.safetensors")
    kiln(exe, "build", src, "--model", model, "--emit=weights", "-o", w0)
    save_safetensors(w1, randomize(load_safetensors(w0), rng))
    prog = os.path.join(tmp, model)
    kiln(exe, "build", src, "--model", model, "--weights", w1, "-o", prog)
    desc = json.loads(kiln(prog, "--describe"))
    args, x = inputs(desc, tmp, rng)
    paths = {}
    for t in desc["outputs"]:
        paths[t["name"]] = os.path.join(tmp, model + "_" + t["name"] + ".npy")
        args += ["--output", f'{t["name"]}={paths[t["name"]]}']
    kiln(prog, *args)
    W = {k: v.astype(np.float64) for k, v in load_safetensors(w1).items()}
    if model == "vae":
        ir = kiln(exe, "ir", src)
        want = ref_vae(W, x, seeds_of(ir))
    else:
        want = REFERENCES[model](W, x)
    bad = False
    for name, path in paths.items():
        got = np.load(path)
        ref = want[name]
        if got.shape != ref.shape:
            print(f"{name}: shape {list(got.shape)}, expected "
                  f"{list(ref.shape)} NOT OK")
            bad = True
            continue
        d = np.abs(got - ref).max() if got.size else 0.0
        tol = 1e-5 * max(1.0, np.abs(ref).max())
        print(f"{name}: {list(got.shape)} max abs diff {d:.3g} "
              f"{'OK' if d <= tol else 'NOT OK'}")
        if not d <= tol:
            for i in range(min(got.size, 5)):
                print(f"  {i}: kiln {got.flat[i]:.8f} reference "
                      f"{ref.flat[i]:.8f}")
            bad = True
    print("MISMATCH" if bad else "MATCH")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
