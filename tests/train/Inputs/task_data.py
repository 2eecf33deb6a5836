"""task_data.py DIR N SPEC...: a small learnable data set for a model's
inputs and labels, as one .npy file per tensor (train_NAME.npy with N
samples, test_NAME.npy with N/4), the form a trainer reads for any
number of inputs and labels.

SPEC is ROLE:NAME:DTYPE:DIMS[:K], DIMS the sample's dims without the
batch, x-separated ("3x16x16"; empty for one value per sample):
  input:NAME:f32:DIMS      normal features
  input:NAME:i64:DIMS:K    integer tokens in [0, K)
  label:NAME:i64::K        a class in [0, K): the argmax of a fixed
                           random linear map of the inputs' values
  label:NAME:f32:DIMS      a fixed random linear map of the inputs
--batch B makes N the batch, one split only, in order (a graph model
whose samples are its nodes).  Seeded, so runs are repeatable."""
import os
import sys

import numpy as np


def parse(spec):
    f = spec.split(":")
    dims = tuple(int(d) for d in f[3].split("x")) if f[3] else ()
    return f[0], f[1], f[2], dims, int(f[4]) if len(f) > 4 else 0


def make(rng, specs, n, maps):
    out, feats = {}, []
    for role, name, dt, dims, k in specs:
        if role != "input":
            continue
        if dt == "f32":
            v = rng.normal(size=(n,) + dims).astype(np.float32)
        else:
            v = rng.integers(0, k, size=(n,) + dims).astype(np.int64)
        out[name] = v
        feats.append(v.reshape(n, -1).astype(np.float64) /
                     (1 if dt == "f32" else k))
    x = np.concatenate(feats, axis=1)
    for role, name, dt, dims, k in specs:
        if role != "label":
            continue
        width = k if dt == "i64" else int(np.prod(dims, dtype=np.int64))
        if name not in maps:
            maps[name] = np.random.default_rng(len(name)).normal(
                size=(x.shape[1], width)) / np.sqrt(x.shape[1])
        z = x @ maps[name]
        if dt == "i64":
            out[name] = z.argmax(1).astype(np.int64)
        else:
            out[name] = z.reshape((n,) + dims).astype(np.float32)
    return out


def main(argv):
    full = argv[1] == "--batch"
    if full:
        argv = argv[:1] + argv[2:]
    out, n, specs = argv[1], int(argv[2]), [parse(s) for s in argv[3:]]
    os.makedirs(out, exist_ok=True)
    rng, maps = np.random.default_rng(3), {}
    splits = (("train", n),) if full else (("train", n), ("test", n // 4))
    for split, count in splits:
        for name, v in make(rng, specs, count, maps).items():
            np.save(os.path.join(out, "%s_%s.npy" % (split, name)), v)


main(sys.argv)
