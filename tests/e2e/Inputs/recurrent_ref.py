"""recurrent_ref.py: an independent NumPy reference for the sequence layers
(simple_rnn, lstm, gru, bidirectional, multihead_attention,
transformer_encoder), written from the formulas in docs/language.md with
explicit loops over time, batch and heads, in float64.  Used by
tests/e2e/recurrent.test on the model in Inputs/recurrent.kiln.

  recurrent_ref.py inputs DIR            random inputs DIR/<input>.npy
  recurrent_ref.py check WEIGHTS DIR     compares DIR/<output>.npy
  recurrent_ref.py forget WEIGHTS NAME   NAME.b is 1 in the forget gate only
"""
import math
import sys

import numpy as np

from reference import load_safetensors

INPUTS = {"x": (2, 5, 3), "q": (2, 4, 3), "kv": (2, 5, 6), "mask": (2, 4, 5),
          "xl": (1, 40, 3), "tri": (5, 5)}


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def relu(z):
    return np.maximum(z, 0)


def softmax(z):
    e = np.exp(z - z.max())
    return e / e.sum()


def run(cell, W, p, x, reverse, **kw):
    """One direction; returns the states h[t] after reading x[:, t]."""
    n, t_len, _ = x.shape
    u = W[p + ".u"].shape[0]
    h, c = np.zeros((n, u)), np.zeros((n, u))
    hs = [None] * t_len
    order = range(t_len - 1, -1, -1) if reverse else range(t_len)
    for t in order:
        h, c = cell(W, p, x[:, t], h, c, **kw)
        hs[t] = h
    return hs


def simple_cell(W, p, x, h, c, act=np.tanh):
    b = W.get(p + ".b", 0)
    return act(x @ W[p + ".w"] + h @ W[p + ".u"] + b), c


def lstm_cell(W, p, x, h, c):
    u = h.shape[1]
    z = x @ W[p + ".w"] + h @ W[p + ".u"] + W.get(p + ".b", 0)
    i = sigmoid(z[:, :u])
    f = sigmoid(z[:, u:2 * u])
    g = np.tanh(z[:, 2 * u:3 * u])
    o = sigmoid(z[:, 3 * u:])
    c = f * c + i * g
    return o * np.tanh(c), c


def gru_cell(W, p, x, h, c):
    """Keras GRU, reset_after=True: bias[0] input, bias[1] recurrent."""
    u = h.shape[1]
    b = W.get(p + ".b", np.zeros((2, 3 * u)))
    a = x @ W[p + ".w"] + b[0]
    q = h @ W[p + ".u"] + b[1]
    z = sigmoid(a[:, :u] + q[:, :u])
    r = sigmoid(a[:, u:2 * u] + q[:, u:2 * u])
    hh = np.tanh(a[:, 2 * u:] + r * q[:, 2 * u:])
    return z * h + (1 - z) * hh, c


def rnn(cell, W, p, x, seq=False, bi=False, **kw):
    if not bi:
        hs = run(cell, W, p, x, False, **kw)
        return np.stack(hs, axis=1) if seq else hs[-1]
    fw = run(cell, W, p + ".fw", x, False, **kw)
    bw = run(cell, W, p + ".bw", x, True, **kw)
    if seq:
        return np.concatenate([np.stack(fw, 1), np.stack(bw, 1)], axis=2)
    return np.concatenate([fw[-1], bw[0]], axis=1)


def attention(W, p, q, k, v, heads, d, mask=None):
    def proj(x, s):
        return x @ W[p + ".w" + s] + W.get(p + ".b" + s, 0)
    Q, K, V = proj(q, "q"), proj(k, "k"), proj(v, "v")
    n, tq, _ = q.shape
    ctx = np.zeros((n, tq, heads * d))
    for b in range(n):
        for h in range(heads):
            cols = slice(h * d, (h + 1) * d)
            for i in range(tq):
                s = K[b, :, cols] @ Q[b, i, cols] / np.sqrt(d)
                if mask is not None:
                    m = mask[i] if mask.ndim == 2 else mask[b, i]
                    s = s + (m - 1) * 1e9
                ctx[b, i, cols] = softmax(s) @ V[b, :, cols]
    return ctx @ W[p + ".wo"] + W.get(p + ".bo", 0)


def layernorm(W, p, x, eps):
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * W[p + ".gamma"] + W[p + ".beta"]


def gelu(x):
    return 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))


def encoder(W, p, x, heads, d, act, mask=None, eps=1e-5):
    """Post-norm: y = norm1(x + attention(x)), norm2(y + ff2(act(ff1(y))))."""
    y = layernorm(W, p + ".norm1", x + attention(W, p + ".attn", x, x, x,
                                                 heads, d, mask), eps)
    f = act(y @ W[p + ".ff1.w"] + W[p + ".ff1.b"])
    return layernorm(W, p + ".norm2", y + f @ W[p + ".ff2.w"] +
                     W[p + ".ff2.b"], eps)


def outputs(W, I):
    x, q, kv = I["x"], I["q"], I["kv"]
    s1 = rnn(lstm_cell, W, "s1", x, seq=True)
    s2 = rnn(gru_cell, W, "s2", s1)
    return {
        "rnn": rnn(simple_cell, W, "rnn", x),
        "rnn_relu": rnn(simple_cell, W, "rnn_relu", x, seq=True, act=relu),
        "lstm": rnn(lstm_cell, W, "lstm", x),
        "lstm_seq": rnn(lstm_cell, W, "lstm_seq", x, seq=True),
        "gru": rnn(gru_cell, W, "gru", x, seq=True),
        "gru_nobias": rnn(gru_cell, W, "gru_nobias", x),
        "bilstm": rnn(lstm_cell, W, "bilstm", x, seq=True, bi=True),
        "bigru": rnn(gru_cell, W, "bigru", x, bi=True),
        "birnn": rnn(simple_cell, W, "birnn", x, seq=True, bi=True),
        "attn": attention(W, "attn", x, x, x, 2, 4),
        "cross": attention(W, "cross", q, kv, kv, 2, 3, I["mask"]),
        "cross_nobias": attention(W, "cross_nobias", q, kv, kv * 2, 3, 2),
        "causal": attention(W, "causal", x, x, x, 1, 2, I["tri"]),
        "enc": encoder(W, "enc", x, 2, 2, gelu),
        "enc_relu": encoder(W, "enc_relu", x, 1, 3, relu, I["tri"], 1e-3),
        "long_rnn": rnn(simple_cell, W, "long_rnn", I["xl"], seq=True),
        "stacked": s2 @ W["stacked.w"] + W["stacked.b"],
    }


def check(weights, d, tol=1e-5):
    W = {k: v.astype(np.float64) for k, v in load_safetensors(weights).items()}
    I = {k: np.load(f"{d}/{k}.npy").astype(np.float64) for k in INPUTS}
    bad = 0
    for name, want in outputs(W, I).items():
        got = np.load(f"{d}/{name}.npy")
        if got.shape != want.shape or got.dtype != np.float32:
            sys.exit(f"{name}: output {got.dtype}{list(got.shape)}, expected "
                     f"float32{list(want.shape)}")
        diff = np.abs(got - want)
        ok = diff.max() <= tol
        print(f"{name}: max abs diff {diff.max():.3g} {'OK' if ok else 'NOT OK'}")
        if not ok:
            bad += 1
            for i in range(min(got.size, 10)):
                print(f"  {i}: kiln {got.flat[i]:.8f} reference "
                      f"{want.flat[i]:.8f}")
    if bad:
        sys.exit("MISMATCH")
    print("MATCH")


def main(argv):
    if argv[1] == "inputs":
        rng = np.random.default_rng(5)
        for name, shape in INPUTS.items():
            a = rng.uniform(-1, 1, shape)
            if name == "mask":      # 0 or 1, with a 1 in every row
                a = (a > 0).astype(np.float64)
                a[..., 0] = 1
            if name == "tri":       # causal: query i sees keys 0..i
                a = np.tril(np.ones(shape))
            np.save(f"{argv[2]}/{name}.npy", a.astype(np.float32))
    elif argv[1] == "check":
        check(argv[2], argv[3])
    elif argv[1] == "forget":
        b = load_safetensors(argv[2])[argv[3] + ".b"]
        u = b.shape[0] // 4
        want = np.zeros(4 * u)
        want[u:2 * u] = 1
        if not np.array_equal(b, want):
            sys.exit(f"{argv[3]}.b is {b}, expected {want}")
        print("FORGET BIAS OK")
    else:
        sys.exit("unknown command " + argv[1])


if __name__ == "__main__":
    main(sys.argv)
