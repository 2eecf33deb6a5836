"""losses_ref.py: the train pass's losses against a numpy reference.

  losses_ref.py KILN TMPDIR CASE

Builds a linear model z = x @ w + b (x [4, 3], or [2, 3, 3] for the rank-3
cases) with the loss of CASE (the table below) and sgd(lr=1), and kiln's
training step (kiln ir --train) returning the loss and the new w and b;
runs it once on fixed data and compares the loss and the gradients
(w - w_new) with a float64 reference written from the losses' formulas
(docs/training.md; PyTorch's CrossEntropyLoss for the weighted and
probability forms), its gradients by central differences.  Writes the
model to TMPDIR/m.kir, prints "CASE: loss ... grad ..." and "OK", or
"MISMATCH" and exits 1.
"""
import os
import re
import subprocess
import sys

import numpy as np

C = 5                           # classes (outputs of the linear layer)
RNG = np.random.default_rng(7)
X2 = RNG.normal(size=(4, 3)).astype(np.float32)
X3 = RNG.normal(size=(2, 3, 3)).astype(np.float32)
W0 = (RNG.normal(size=(3, C)) * 0.8).astype(np.float32)
B0 = (RNG.normal(size=C) * 0.3).astype(np.float32)
WEIGHTS = [1.0, 2.0, 0.5, 0.25, 3.0]
T2 = RNG.normal(size=(4, C)).astype(np.float32)        # regression targets
I2 = np.array([0, 3, 1, 4], np.int64)
I3 = np.array([[2, 0, 4], [1, 1, 3]], np.int64)
P2 = RNG.dirichlet(np.ones(C), size=4).astype(np.float32)
P3 = RNG.dirichlet(np.ones(C), size=(2, 3)).astype(np.float32)

# case: (loss call, rank 3, target, softmax output, class weights, dtype)
CASES = {
    "huber": ("huber(%p, %y, delta=0.5)", False, T2, False, False, "f32"),
    "regularized": ("huber(%p, %y, delta=0.5)", False, T2, False, False,
                    "f32"),
    "plain": ("cross_entropy(%p, %y, from_logits=true, label_smoothing=0.1)",
              False, I2, False, False, "i64"),
    "weighted": ("cross_entropy(%p, %y, from_logits=true)", False, I2,
                 False, True, "i64"),
    "weighted_ls": ("cross_entropy(%p, %y, from_logits=true, "
                    "label_smoothing=0.2)", False, I2, False, True, "i64"),
    "weighted_probs": ("sparse_cross_entropy(%s, %y)", False, I2, True, True,
                       "u8"),
    "soft": ("cross_entropy(%p, %y, from_logits=true)", False, P2, False,
             False, "f32"),
    "soft_probs_ls": ("cross_entropy(%s, %y, label_smoothing=0.1)", False,
                      P2, True, False, "f32"),
    "soft_weighted": ("cross_entropy(%p, %y, from_logits=true, "
                      "label_smoothing=0.3)", False, P2, False, True, "f32"),
    "rank3": ("cross_entropy(%s, %y, label_smoothing=0.1)", True, I3, True,
              False, "i32"),
    "rank3_weighted": ("cross_entropy(%p, %y, from_logits=true)", True, I3,
                       False, True, "i64"),
    "rank3_soft": ("cross_entropy(%p, %y, from_logits=true)", True, P3,
                   False, True, "f32"),
}


def data(a):
    return "[" + ", ".join(repr(float(v)) for v in np.ravel(a)) + "]"


def ty(dtype, shape):
    return "%s[%s]" % (dtype, ",".join(str(d) for d in shape))


def kir(case):
    loss, rank3, target, soft, weighted, dtype = CASES[case]
    x = X3 if rank3 else X2
    zs = ty("f32", x.shape[:-1] + (C,))
    lines = ["graph @m(%%x: %s) {" % ty("f32", x.shape),
             "  param $w: f32[3,%d] = %s" % (C, data(W0)),
             "  param $b: f32[%d] = %s" % (C, data(B0)),
             "  %%z = matmul %%x, $w : %s" % zs,
             "  %%p = add %%z, $b : %s" % zs]
    if soft:
        lines.append("  %%s = softmax %%p : %s" % zs)
    lines += ["  return %s" % ("%s" if soft else "%p"), "}", "",
              "train @m {",
              "  label %%y: %s" % ty(dtype, target.shape),
              "  loss = " + loss]
    if weighted:
        lines.append("  class_weights = %s" % data(WEIGHTS))
    if case == "regularized":   # as a layer's kernel/bias_regularizer
        lines += ["  regularize = l2($w, 0.3)", "  regularize = l1($b, 0.2)"]
    lines += ["  optimizer = sgd(lr=1)", "}", ""]
    return "\n".join(lines)


def log_softmax(z):
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def ref_loss(case, w, b):
    """The loss in float64, from the formulas."""
    loss, rank3, target, soft, weighted, dtype = CASES[case]
    z = (X3 if rank3 else X2).astype(np.float64) @ w + b
    ls = float(re.search(r"label_smoothing=([\d.]+)", loss).group(1)) \
        if "label_smoothing" in loss else 0.0
    if case in ("huber", "regularized"):
        d = z - target
        a = np.abs(d)
        h = np.mean(np.where(a <= 0.5, 0.5 * d * d, 0.5 * (a - 0.25)))
        if case == "regularized":
            h += 0.3 * np.sum(w * w) + 0.2 * np.sum(np.abs(b))
        return h
    lsm = log_softmax(z).reshape(-1, C)
    wc = np.array(WEIGHTS) if weighted else np.ones(C)
    if target.dtype == np.float32:      # probabilities
        q = target.reshape(-1, C).astype(np.float64) * (1 - ls) + ls / C
        return -(q * wc * lsm).sum() / lsm.shape[0]
    y = target.reshape(-1)
    picked = lsm[np.arange(len(y)), y]
    nll = -(wc[y] * picked).sum() / wc[y].sum()
    smooth = -(lsm * wc).sum() / wc[y].sum()
    return (1 - ls) * nll + ls / C * smooth


def ref_grad(case, w, b, h=1e-6):
    out = []
    for p in (w, b):
        g = np.zeros_like(p)
        for i in np.ndindex(p.shape):
            keep = p[i]
            p[i] = keep + h
            hi = ref_loss(case, w, b)
            p[i] = keep - h
            lo = ref_loss(case, w, b)
            p[i] = keep
            g[i] = (hi - lo) / (2 * h)
        out.append(g)
    return out


def main(argv):
    kiln, tmp, case = argv[1], argv[2], argv[3]
    os.makedirs(tmp, exist_ok=True)
    src = os.path.join(tmp, "m.kir")
    with open(src, "w") as f:
        f.write(kir(case))
    text = subprocess.run([kiln, "ir", src, "--train", "--print-constants"],
                          check=True, capture_output=True, text=True).stdout
    step = text[text.index("graph @m.step"):]
    step = step[:step.index("\n}\n") + 3]
    upd = dict(re.findall(r"^  update \$(\S+) = %(\S+)$", step, re.M))
    loss = re.search(r"^  return %(\S+?),", step, re.M).group(1)
    step = re.sub(r"^  update .*\n", "", step, flags=re.M)
    step = re.sub(r"^  return .*$", "  return %%%s, %%%s, %%%s" % (
        loss, upd["w"], upd["b"]), step, flags=re.M)
    with open(os.path.join(tmp, "step.kir"), "w") as f:
        f.write(step)
    _, rank3, target, _, _, dtype = CASES[case]
    np.save(os.path.join(tmp, "x.npy"), X3 if rank3 else X2)
    np.save(os.path.join(tmp, "y.npy"), target.astype(
        {"f32": np.float32, "i64": np.int64, "i32": np.int32,
         "u8": np.uint8}[dtype]))
    np.save(os.path.join(tmp, "lr.npy"), np.float32(1))
    np.save(os.path.join(tmp, "t.npy"), np.int64(1))
    exe = os.path.join(tmp, "step")
    subprocess.run([kiln, "build", os.path.join(tmp, "step.kir"), "-o", exe],
                   check=True)
    out = {k: os.path.join(tmp, k + ".out.npy") for k in ("loss", "w", "b")}
    subprocess.run([exe] + [a for k in ("x", "y") for a in (
        "--input", "%s=%s" % (k, os.path.join(tmp, k + ".npy")))] +
        ["--input", "train.lr=" + os.path.join(tmp, "lr.npy"),
         "--input", "train.step=" + os.path.join(tmp, "t.npy"),
         "--output", "%s=%s" % (loss, out["loss"]),
         "--output", "%s=%s" % (upd["w"], out["w"]),
         "--output", "%s=%s" % (upd["b"], out["b"])], check=True)
    w, b = W0.astype(np.float64), B0.astype(np.float64)
    want_loss = ref_loss(case, w, b)
    gw, gb = ref_grad(case, w, b)
    got_loss = float(np.load(out["loss"]))
    got_gw = W0 - np.load(out["w"]).astype(np.float64)
    got_gb = B0 - np.load(out["b"]).astype(np.float64)
    el = abs(got_loss - want_loss) / abs(want_loss)
    eg = max(np.abs(got_gw - gw).max() / np.abs(gw).max(),
             np.abs(got_gb - gb).max() / np.abs(gb).max())
    print("%s: loss %.6g (reference %.6g), rel error %.2g; gradient rel "
          "error %.2g" % (case, got_loss, want_loss, el, eg))
    bad = not (el < 1e-5 and eg < 1e-4)
    print("MISMATCH" if bad else "OK")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
