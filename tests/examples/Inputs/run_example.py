"""run_example.py: the end-to-end check of one example model.

  run_example.py KILN EXAMPLE.kiln MODEL TMPDIR

Prints the IR and checks it round-trips byte for byte; saves the model's
weights, replaces them with random values and rebuilds with --weights;
runs the executable on random inputs (shaped from --describe); checks
every output's shape, and, where this file has a NumPy reference for the
model (REFERENCES below, independent of kiln), its values within 1e-5.
"""
import json
import os
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..",
                                "e2e", "Inputs"))
from reference import (conv2d_same, load_safetensors, maxpool2,  # noqa: E402
                       relu, save_safetensors, softmax)
from recurrent_ref import lstm_cell, rnn  # noqa: E402

# Integer inputs are drawn from [0, INT_RANGE[model][input]).
INT_RANGE = {}


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def dense(W, name, x, bias=True):
    y = x @ W[name + ".w"]
    return y + W[name + ".b"] if bias else y


def ref_gcn(W, x):
    h = relu(dense(W, "h.dense", x["adj"] @ x["features"], bias=False))
    h = dense(W, "h_2.dense", x["adj"] @ h, bias=False)
    return {"classes": softmax(h)}


def ref_multitask(W, x):
    h = relu(dense(W, "shared.h", x["x"]))
    s = relu(dense(W, "shared.dense", h))
    return {"class_probs": softmax(dense(W, "logits", s)),
            "value": dense(W, "value", s)}


def ref_multi_input(W, x):
    def branch(name, t):
        c = relu(conv2d_same(t, W[name + ".c.w"], W[name + ".c.b"]))
        return maxpool2(c)
    a, b = branch("a", x["rgb"]), branch("b", x["depth"])
    cat = np.concatenate([a, b], axis=1)
    s = a + b
    n = a.shape[0]
    f = np.concatenate([cat.reshape(n, -1), s.reshape(n, -1)], axis=1)
    h = relu(dense(W, "h", f))
    return {"probs": softmax(dense(W, "probs.dense", h))}


def ref_gan(W, x):
    h = relu(dense(W, "generator.h", x["z"]))
    img = np.tanh(dense(W, "generator.image", h))
    h = relu(dense(W, "discriminator.h", img))
    return {"real": sigmoid(dense(W, "discriminator.real", h))}


def ref_timeseries(W, x):
    return {"next": dense(W, "next", rnn(lstm_cell, W, "h", x["window"]))}


REFERENCES = {"timeseries": ref_timeseries, "gcn": ref_gcn, "multitask": ref_multitask,
              "multi_input": ref_multi_input, "gan": ref_gan}


def kiln(exe, *args):
    return subprocess.run([exe, *args], check=True, capture_output=True,
                          text=True).stdout


def roundtrip(exe, src, tmp):
    a = kiln(exe, "ir", src)
    path = os.path.join(tmp, "a.kir")
    with open(path, "w") as f:
        f.write(a)
    if kiln(exe, "ir", path) != a:
        sys.exit("kiln ir output does not round-trip")


def make_inputs(desc, model, tmp, rng):
    args, values = [], {}
    for t in desc["inputs"]:
        shape = t["shape"]
        if t["dtype"] in ("i64", "i32"):
            hi = INT_RANGE.get(model, {}).get(t["name"], 2)
            v = rng.integers(0, hi, shape).astype(np.dtype(
                "int64" if t["dtype"] == "i64" else "int32"))
        else:
            v = rng.standard_normal(shape).astype(np.float32)
        path = os.path.join(tmp, t["name"] + ".npy")
        np.save(path, v)
        args += ["--input", f'{t["name"]}={path}']
        values[t["name"]] = v.astype(np.float64) if v.dtype.kind == "f" else v
    return args, values


def main():
    exe, src, model, tmp = sys.argv[1:5]
    rng = np.random.default_rng(1234)
    roundtrip(exe, src, tmp)
    w0, w1 = os.path.join(tmp, "w0.safetensors"), os.path.join(tmp, "w1.st")
    kiln(exe, "build", src, "--model", model, "--emit=weights", "-o", w0)
    W = {k: rng.normal(0, 0.3, v.shape) for k, v in
         load_safetensors(w0).items()}
    save_safetensors(w1, W)
    prog = os.path.join(tmp, model)
    kiln(exe, "build", src, "--model", model, "--weights", w1, "-o", prog)
    desc = json.loads(kiln(prog, "--describe"))
    args, x = make_inputs(desc, model, tmp, rng)
    outs = {}
    for t in desc["outputs"]:
        path = os.path.join(tmp, "out_" + t["name"] + ".npy")
        args += ["--output", f'{t["name"]}={path}']
        outs[t["name"]] = path
    kiln(prog, *args)
    got = {k: np.load(p) for k, p in outs.items()}
    for t in desc["outputs"]:
        if list(got[t["name"]].shape) != t["shape"]:
            sys.exit(f'output {t["name"]}: shape {got[t["name"]].shape}, '
                     f'described {t["shape"]}')
        print(f'{t["name"]}: {t["dtype"]}{t["shape"]}')
    ref = REFERENCES.get(model)
    if not ref:
        print("SHAPES OK (no value reference for this model)")
        return
    want = ref({k: v.astype(np.float64) for k, v in load_safetensors(w1).items()}, x)
    for k, v in want.items():
        d = np.abs(got[k] - v).max()
        print(f"{k}: max abs diff {d:.3g}")
        if not d <= 1e-5 * max(1, np.abs(v).max()):
            sys.exit(f"{k}: MISMATCH")
    print("MATCH")


if __name__ == "__main__":
    main()
