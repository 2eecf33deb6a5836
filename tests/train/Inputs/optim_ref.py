"""optim_ref.py: kiln's optimizers against a numpy reference, step by step.

  optim_ref.py KILN TMPDIR 'OPTIMIZER' ['EXTRA TRAIN ENTRY' ...]

Trains a 3->2 linear layer on a fixed batch with an mse loss: kiln's
training pass builds @m.step; this script returns the step's new values
of every param and slot (instead of writing them back), builds it with
the current values as weights, runs it for three steps, and after each
compares all of them with its own implementation of the optimizer's
update (written from docs/training.md's formulas, sharing no code with
kiln).  Prints "step T: NAME max rel error E" and "OK", or "MISMATCH" and
exits 1.
"""
import os
import re
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "e2e",
                                "Inputs"))
from reference import load_safetensors, save_safetensors  # noqa: E402

X = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.5], [-2.0, 1.0, 0.75],
              [0.1, 0.2, 0.3]], np.float32)
Y = np.array([[1.0, -1.0], [0.5, 2.0], [-1.5, 0.0], [0.3, 0.7]], np.float32)
W0 = np.array([[0.2, -0.4], [0.7, 0.1], [-0.3, 0.5]], np.float32)
B0 = np.array([0.05, -0.1], np.float32)
LR = 0.05


def kir(opt, extra):
    def data(a):
        return "[" + ", ".join(repr(float(v)) for v in a.ravel()) + "]"
    return f"""graph @m(%x: f32[4,3]) {{
  param $w: f32[3,2] = {data(W0)}
  param $b: f32[2] = {data(B0)}
  %p = gemm %x, $w, $b : f32[4,2]
  return %p
}}

train @m {{
  label %y: f32[4,2]
  loss = mse(%p, %y)
  optimizer = {opt}
{"".join("  " + e + chr(10) for e in extra)}}}
"""


def args(opt):
    m = re.match(r"(\w+)\((.*)\)$", opt)
    kw = {}
    for part in filter(None, (p.strip() for p in m.group(2).split(","))):
        k, v = part.split("=")
        kw[k] = v == "true" or (v != "false" and float(v))
    return m.group(1), kw


class Ref:
    """The optimizer's update in float64, from the documented formulas."""

    def __init__(self, opt, extra):
        self.name, self.kw = args(opt)
        self.extra = dict(e.split(" = ") for e in extra)
        self.p = {"w": W0.astype(np.float64), "b": B0.astype(np.float64)}
        self.s = {}

    def slot(self, key):
        return self.s.setdefault(key, np.zeros_like(self.p[key.split(".")[0]]))

    def step(self, t):
        p = X.astype(np.float64) @ self.p["w"] + self.p["b"]
        d = 2 * (p - Y) / p.size
        g = {"w": X.T @ d, "b": d.sum(0)}
        if "clip_value" in self.extra:
            c = float(self.extra["clip_value"])
            g = {k: np.clip(v, -c, c) for k, v in g.items()}
        if "clip_norm" in self.extra:
            c = float(self.extra["clip_norm"])
            n = np.sqrt(sum((v * v).sum() for v in g.values()))
            g = {k: v * min(1.0, c / (n + 1e-6)) for k, v in g.items()}
        kw = self.kw
        for k in ("w", "b"):
            w, gr = self.p[k], g[k]
            if self.name == "sgd":
                gr = gr + kw.get("weight_decay", 0) * w
                mu = kw.get("momentum", 0)
                st = gr
                if mu:
                    v = self.s[k + ".momentum"] = mu * self.slot(
                        k + ".momentum") + gr
                    st = gr + mu * v if kw.get("nesterov") else v
            elif self.name in ("adam", "adamw"):
                b1, b2 = kw.get("beta1", 0.9), kw.get("beta2", 0.999)
                eps = kw.get("eps", 1e-7)
                m = self.s[k + ".m"] = b1 * self.slot(k + ".m") + (1 - b1) * gr
                v = self.s[k + ".v"] = (b2 * self.slot(k + ".v") +
                                        (1 - b2) * gr * gr)
                c = np.sqrt(1 - b2 ** t) / (1 - b1 ** t)
                st = m / (np.sqrt(v) + eps) * c
                if self.name == "adamw":
                    st = st + kw.get("weight_decay", 0.004) * w
            elif self.name == "rmsprop":
                rho, eps = kw.get("rho", 0.9), kw.get("eps", 1e-7)
                s = self.s[k + ".ms"] = (rho * self.slot(k + ".ms") +
                                         (1 - rho) * gr * gr)
                st = gr / (np.sqrt(s) + eps)
                if kw.get("momentum", 0):
                    st = self.s[k + ".momentum"] = (
                        kw["momentum"] * self.slot(k + ".momentum") + st)
            elif self.name == "adagrad":
                s = self.s[k + ".sum"] = self.slot(k + ".sum") + gr * gr
                st = gr / (np.sqrt(s) + kw.get("eps", 1e-7))
            self.p[k] = w - LR * st

    def values(self):
        return {**self.p, **self.s}


def main(argv):
    kiln, tmp, opt, extra = argv[1], argv[2], argv[3], argv[4:]
    os.makedirs(tmp, exist_ok=True)
    src = os.path.join(tmp, "m.kir")
    with open(src, "w") as f:
        f.write(kir(opt, extra))
    text = subprocess.run([kiln, "ir", src, "--train", "--print-constants"],
                          check=True, capture_output=True, text=True).stdout
    step = text[text.index("graph @m.step"):]
    step = step[:step.index("\n}\n") + 3]
    upd = re.findall(r"^  update \$(\S+) = %(\S+)$", step, re.M)
    step = re.sub(r"^  update .*\n", "", step, flags=re.M)
    step = re.sub(r"^  return .*$", "  return " + ", ".join(
        "%" + v for _, v in upd), step, flags=re.M)
    with open(os.path.join(tmp, "step.kir"), "w") as f:
        f.write(step)
    for name, a in (("x", X), ("y", Y), ("lr", np.float32(LR))):
        np.save(os.path.join(tmp, name + ".npy"), a)
    ref = Ref(opt, extra)
    cur = {"w": W0, "b": B0}
    bad = False
    for t in (1, 2, 3):
        w = {k: cur.get(k, np.zeros_like(W0 if k.startswith("w") else B0))
             for k, _ in upd}
        save_safetensors(os.path.join(tmp, "w.safetensors"), w)
        exe = os.path.join(tmp, "step")
        subprocess.run([kiln, "build", os.path.join(tmp, "step.kir"),
                        "--weights", os.path.join(tmp, "w.safetensors"),
                        "-o", exe], check=True)
        np.save(os.path.join(tmp, "t.npy"), np.int64(t))
        cmd = [exe, "--input", "x=" + os.path.join(tmp, "x.npy"),
               "--input", "y=" + os.path.join(tmp, "y.npy"),
               "--input", "train.lr=" + os.path.join(tmp, "lr.npy"),
               "--input", "train.step=" + os.path.join(tmp, "t.npy")]
        for k, v in upd:
            cmd += ["--output", "%s=%s" % (v, os.path.join(tmp, k + ".npy"))]
        subprocess.run(cmd, check=True)
        ref.step(t)
        want = ref.values()
        for k, _ in upd:
            got = np.load(os.path.join(tmp, k + ".npy"))
            err = np.max(np.abs(got - want[k]) / (np.abs(want[k]) + 1e-3))
            print("step %d: %s max rel error %.2g" % (t, k, err))
            bad |= not err < 1e-4
            cur[k] = got
    print("MISMATCH" if bad else "OK")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
