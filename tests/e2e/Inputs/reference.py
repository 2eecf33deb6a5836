"""reference.py: an independent NumPy reference for kiln's end-to-end tests.

It shares no code with kiln: it reads safetensors with struct and json,
and computes the example models in float64 with NumPy (convolution as a
sum of shifted slices, pooling by reshaping).

  reference.py input SHAPE SEED OUT.npy        random f32 input, e.g. 1,1,28,28
  reference.py randomize IN OUT SEED           same tensors, random values
  reference.py check MODEL WEIGHTS IN OUT [TOL]
      MODEL is cnn or mlp; compares OUT.npy (kiln's output) with the
      reference on IN.npy, and checks each probability row sums to 1.
  reference.py same A.npy B.raw               A's data equals the raw bytes B
"""
import json
import struct
import sys

import numpy as np

DTYPES = {"F32": np.float32, "F64": np.float64, "I64": np.int64,
          "I32": np.int32, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_}


def load_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        b, e = t["data_offsets"]
        a = np.frombuffer(data[base + b:base + e], dtype=DTYPES[t["dtype"]])
        out[name] = a.reshape(t["shape"])
    return out


def save_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name], dtype=np.float32)
        header[name] = {"dtype": "F32", "shape": list(a.shape),
                        "data_offsets": [off, off + a.nbytes]}
        blobs.append(a.tobytes())
        off += a.nbytes
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def conv2d_same(x, w, b):
    """Stride 1, 'same' padding (extra on the bottom/right), NCHW/OIHW."""
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    pt, pl = (kh - 1) // 2, (kw - 1) // 2
    xp = np.pad(x, ((0, 0), (0, 0), (pt, kh - 1 - pt), (pl, kw - 1 - pl)))
    y = np.zeros((n, o, h, wd))
    for u in range(kh):
        for v in range(kw):
            patch = xp[:, :, u:u + h, v:v + wd]
            y += np.einsum("nchw,oc->nohw", patch, w[:, :, u, v])
    return y + b[None, :, None, None]


def maxpool2(x):
    n, c, h, w = x.shape
    x = x[:, :, :h // 2 * 2, :w // 2 * 2]
    return x.reshape(n, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))


def relu(x):
    return np.maximum(x, 0)


def softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def dense(W, name, x):
    return x @ W[name + ".w"].astype(np.float64) + W[name + ".b"]


def cnn(W, x):
    h = maxpool2(relu(conv2d_same(x, W["b1.c.w"], W["b1.c.b"])))
    h = maxpool2(relu(conv2d_same(h, W["b2.c.w"], W["b2.c.b"])))
    h = relu(dense(W, "h", h.reshape(h.shape[0], -1)))
    return softmax(dense(W, "logits", h))


def mlp(W, x):
    h = relu(dense(W, "h1", x))
    h = relu(dense(W, "h2", h))
    return softmax(dense(W, "logits", h))


def check(model, weights, inp, out, tol):
    W = {k: v.astype(np.float64) for k, v in load_safetensors(weights).items()}
    x = np.load(inp).astype(np.float64)
    got = np.load(out)
    want = {"cnn": cnn, "mlp": mlp}[model](W, x)
    if got.shape != want.shape or got.dtype != np.float32:
        sys.exit(f"output {got.dtype}{list(got.shape)}, expected "
                 f"float32{list(want.shape)}")
    diff = np.abs(got - want)
    for i in range(min(got.size, 10)):
        ok = "OK" if diff.flat[i] <= tol else "NOT OK"
        print(f"{i}: kiln {got.flat[i]:.8f} reference {want.flat[i]:.8f} {ok}")
    sums = got.sum(axis=-1)
    print(f"max abs diff {diff.max():.3g}, row sums {sums}")
    if diff.max() > tol or np.abs(sums - 1).max() > tol:
        sys.exit("MISMATCH")
    print("MATCH")


def main(argv):
    cmd = argv[1]
    if cmd == "input":
        shape = [int(d) for d in argv[2].split(",")]
        rng = np.random.default_rng(int(argv[3]))
        np.save(argv[4], rng.random(shape, dtype=np.float32))
    elif cmd == "randomize":
        rng = np.random.default_rng(int(argv[4]))
        W = load_safetensors(argv[2])
        save_safetensors(argv[3], {k: rng.normal(0, 0.2, v.shape)
                                   for k, v in W.items()})
    elif cmd == "check":
        tol = float(argv[6]) if len(argv) > 6 else 1e-5
        check(argv[2], argv[3], argv[4], argv[5], tol)
    elif cmd == "same":
        a = np.load(argv[2])
        with open(argv[3], "rb") as f:
            if a.tobytes() != f.read():
                sys.exit("DIFFERENT")
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main(sys.argv)
