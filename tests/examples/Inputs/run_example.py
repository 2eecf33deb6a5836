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
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..",
                                "e2e", "Inputs"))
from reference import (conv2d_same, load_safetensors, maxpool2,  # noqa: E402
                       relu, save_safetensors, softmax)
from recurrent_ref import attention, gru_cell, lstm_cell, rnn  # noqa: E402
from layers_ref import (batchnorm, conv2d, kiln, layernorm,  # noqa: E402
                        random_normal, same_pads, seeds_of, transpose_same)
import math  # noqa: E402

gelu_erf = np.vectorize(lambda v: 0.5 * v * (1 + math.erf(v / math.sqrt(2))))

# Integer inputs are drawn from [0, INT_RANGE[model][input]).
INT_RANGE = {"text_classifier": {"tokens": 1000}}


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
    def disc(img):
        h = relu(dense(W, "discriminator.h", img))
        return sigmoid(dense(W, "discriminator.real", h))
    n = x["real"].shape[0]
    z = random_normal((n, 16), 0, 1, seeds_of(IR[0])["z"])
    h = relu(dense(W, "generator.h", z))
    fake = np.tanh(dense(W, "generator.image", h))
    return {"p_real": disc(x["real"]), "fake_score": disc(fake)}


def ref_timeseries(W, x):
    return {"next": dense(W, "next", rnn(lstm_cell, W, "h", x["window"]))}


def ref_mlp_reg(W, x):
    h = relu(dense(W, "h", x["x"]))          # dropout: identity
    h = relu(dense(W, "h_3", h))
    return {"probs": softmax(dense(W, "logits", h))}


def ref_fashion_cnn(W, x):
    def block(name, t):
        c = conv2d_same(t, W[name + ".c.w"], np.zeros(W[name + ".c.w"].shape[0]))
        c = relu(batchnorm(c, W, name + ".c_2.batchnorm", 1, 1e-3))
        return maxpool2(c)
    h = block("b2", block("b1", x["image"]))
    h = relu(dense(W, "h", h.reshape(h.shape[0], -1)))
    return {"probs": softmax(dense(W, "logits", h))}


def ref_vgg(W, x):
    t = x["image"]
    for name in ["x_2", "x_3", "x_4"]:
        t = relu(conv2d_same(t, W[name + ".x_2.w"], W[name + ".x_2.b"]))
        t = relu(conv2d_same(t, W[name + ".x_3.w"], W[name + ".x_3.b"]))
        t = maxpool2(t)
    h = relu(dense(W, "h", t.reshape(t.shape[0], -1)))
    return {"probs": softmax(dense(W, "probs.dense", h))}


def ref_text_classifier(W, x):
    e = W["e.table"][x["tokens"]]
    seq = rnn(lstm_cell, W, "seq", e, seq=True, bi=True)
    last = rnn(gru_cell, W, "last", seq)
    h = relu(dense(W, "h", last))
    return {"topics": softmax(dense(W, "topics.dense", h))}


def ref_transformer(W, x):
    h = x["x"]
    for p in ["h", "h_2"]:
        att = attention(W, p + ".a.multihead_attention", h, h, h, 4, 8)
        a = layernorm(h + att, W, p + ".a", 2, 1e-5)
        f = dense(W, p + ".f", gelu_erf(dense(W, p + ".f.dense", a)))
        h = layernorm(a + f, W, p + ".layernorm", 2, 1e-5)
    return {"probs": softmax(dense(W, "probs.dense", h.mean(axis=1)))}


def sigmoid_(x):
    return 1 / (1 + np.exp(-x))


def conv_same(t, W, name, stride):
    k = W[name + ".w"].shape[2]
    p0, p1 = same_pads(t.shape[2], k, stride, 1)
    q0, q1 = same_pads(t.shape[3], k, stride, 1)
    return conv2d(t, W[name + ".w"], W.get(name + ".b"), (stride, stride),
                  (p0, q0, p1, q1))


def ref_autoencoder(W, x):
    h = relu(conv_same(x["image"], W, "reconstruction.z.h", 2))
    z = relu(conv_same(h, W, "reconstruction.z.conv2d", 2))
    p = "reconstruction.h"
    h = relu(transpose_same(z, W[p + ".w"], W[p + ".b"], (2, 2)))
    p = "reconstruction.conv2d_transpose"
    y = transpose_same(h, W[p + ".w"], W[p + ".b"], (2, 2))
    return {"reconstruction": sigmoid_(y)}


def ref_vae(W, x):
    h = relu(dense(W, "h", x["x"]))
    mu, lv = dense(W, "mu", h), dense(W, "logvar", h)
    eps = random_normal(mu.shape, 0, 1, seeds_of(IR[0])["z.eps"])
    d = relu(dense(W, "d", mu + np.exp(0.5 * lv) * eps))
    return {"reconstruction": sigmoid_(dense(W, "reconstruction", d))}


def ref_resnet(W, x):
    def cb(p, t, stride=1):
        c = conv_same(t, W, p + ".batchnorm.conv2d", stride)
        return batchnorm(c, W, p + ".batchnorm", 1, 1e-3)

    def basic(p, t):
        h = relu(cb(p + ".h.conv_bn", t))
        return relu(cb(p + ".conv_bn", h) + t)

    def proj(p, t):
        h = relu(cb(p + ".h.conv_bn", t, 2))
        return relu(cb(p + ".conv_bn", h) + cb(p + ".conv_bn_2", t, 2))
    t = relu(cb("x.conv_bn", x["image"]))
    t = basic("x_2", t)
    t = basic("x_4", proj("x_3", t))
    t = basic("x_6", proj("x_5", t))
    h = relu(cb("x_7.h.conv_bn", t))
    h = relu(cb("x_7.h_2.conv_bn", h))
    t = relu(cb("x_7.h_3", h) + cb("x_7.conv_bn", t))
    return {"probs": softmax(dense(W, "probs.dense", t.mean(axis=(2, 3))))}


REFERENCES = {"timeseries": ref_timeseries, "resnet": ref_resnet, "autoencoder": ref_autoencoder,
              "denoising": ref_autoencoder, "vae": ref_vae, "mlp_reg": ref_mlp_reg,
              "fashion_cnn": ref_fashion_cnn, "vgg": ref_vgg,
              "text_classifier": ref_text_classifier,
              "transformer": ref_transformer, "gcn": ref_gcn, "multitask": ref_multitask,
              "multi_input": ref_multi_input, "gan": ref_gan}


def scale(shape):
    """Random weights of unit gain, so that activations neither vanish nor
    saturate and the comparison means something."""
    if len(shape) < 2:
        return 0.3
    fan = shape[0] if len(shape) == 2 else int(np.prod(shape[1:]))
    return 1 / np.sqrt(fan)


IR = [""]       # the printed IR, for the seeds random_normal nodes got


def roundtrip(exe, src, tmp):
    a = kiln(exe, "ir", src)
    IR[0] = a
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
    W = {k: rng.normal(0, scale(v.shape), v.shape) for k, v in
         load_safetensors(w0).items()}
    for k in W:     # batchnorm's running variances must be positive
        if k.endswith(".var"):
            W[k] = np.abs(W[k]) + 0.5
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
        # The layers these models introduce are checked against NumPy in
        # tests/e2e/layers.test; here the whole model is checked for shape.
        print("MATCH (shapes only)")
        return
    want = ref({k: v.astype(np.float64) for k, v in load_safetensors(w1).items()}, x)
    for k, v in want.items():
        d = np.abs(got[k] - v).max()
        print(f"{k}: max abs diff {d:.3g}, values in [{v.min():.3g}, "
              f"{v.max():.3g}]")
        if not d <= 1e-5 * max(1, np.abs(v).max()):
            sys.exit(f"{k}: MISMATCH")
    print("MATCH")


if __name__ == "__main__":
    main()
