"""resize_ref.py: ONNX's own Resize reference for tests/e2e/resize.test.

  resize_ref.py EXE

EXE is the executable kiln built from the graph in resize.test.  Makes
seeded random inputs x and v, runs EXE with every output written next to
it as EXE_NAME.npy, and compares each output with interpolate_nd from
onnx/backend/test/case/node/resize.py (the code that made ONNX's own
Resize test data: edge padding, nearest neighbours, nested per-dim
interpolation in float64), called with the attributes the graph gives
each resize.  Prints "NAME: MATCH" per output (or the worst element) and
exits 1 on any mismatch; floats must agree within 1e-5 relative to
max(|reference|, 1).
"""
import json
import subprocess
import sys

import numpy as np
from onnx.backend.test.case.node.resize import (cubic_coeffs, interpolate_nd,
                                                linear_coeffs, nearest_coeffs)

TOL = 1e-5


def resize(x, mode="nearest", sizes=None, scales=None, nearest="round_prefer_floor",
           a=-0.75, **kw):
    coeffs = {"nearest": lambda r: nearest_coeffs(r, mode=nearest),
              "linear": linear_coeffs,
              "cubic": lambda r: cubic_coeffs(r, A=a)}[mode]
    return interpolate_nd(x, coeffs, output_size=sizes,
                          scale_factors=None if scales is None else
                          np.array(scales), **kw)


def reference(x, v):
    roi1 = np.array([0, 0, 0.4, 0.6, 1, 1, 1.2, 1.7])
    roi2 = np.array([0, 0.2, 0.1, -0.1, 1, 0.9, 0.8, 1.1])
    c1 = resize(x, "cubic", scales=[1, 1, 0.75, 0.8])
    return {
        "c1": c1,
        "c2": resize(x, "cubic", [2, 3, 7, 9], a=-0.5, exclude_outside=True,
                     coordinate_transformation_mode="align_corners"),
        "c3": resize(x, "cubic", scales=[1, 1, 2.5, 1.5],
                     coordinate_transformation_mode="asymmetric"),
        "l1": resize(x, "linear", [3, 5, 2, 7]),
        "l2": resize(x, "linear", scales=[1, 1, 0.6, 0.6],
                     coordinate_transformation_mode="align_corners"),
        "t1": resize(x, "linear", [2, 3, 3, 3], roi=roi1,
                     extrapolation_value=10,
                     coordinate_transformation_mode="tf_crop_and_resize"),
        "t2": resize(x, "cubic", [2, 4, 5, 6], roi=roi2,
                     extrapolation_value=-3.5,
                     coordinate_transformation_mode="tf_crop_and_resize"),
        # ONNX 1.12's reference predates tf_half_pixel_for_nn: with
        # x_original = (o + 0.5) / scale it is asymmetric on o + 0.5
        "n1": tf_half_pixel_for_nn(x, [2, 3, 3, 2]),
        "n2": resize(v, "nearest", scales=[0.7], nearest="round_prefer_ceil",
                     coordinate_transformation_mode="pytorch_half_pixel"),
        "u": resize(c1.astype(np.float32), "linear", [2, 3, 6, 8]),
    }


def tf_half_pixel_for_nn(x, sizes):
    """Nearest (round_prefer_floor) at (o + 0.5) * n / m, per dim."""
    idx = []
    for n, m in zip(x.shape, sizes):
        c = (np.arange(m) + 0.5) * n / m
        f = np.floor(c)
        i = np.where(c - f > 0.5, f + 1, f).astype(int)
        idx.append(np.clip(i, 0, n - 1))
    return x[np.ix_(*idx)]


def compare(name, got, ref):
    if got.shape != ref.shape:
        print(f"{name}: MISMATCH shape {got.shape}, want {ref.shape}")
        return False
    err = np.abs(got - ref) / np.maximum(np.abs(ref), 1)
    if np.all(err <= TOL):
        print(f"{name}: MATCH")
        return True
    k = np.unravel_index(np.argmax(err), err.shape)
    print(f"{name}: MISMATCH at {k}: got {got[k]!r}, want {ref[k]!r}")
    return False


def main():
    exe = sys.argv[1]
    rng = np.random.default_rng(7)
    desc = json.loads(subprocess.run([exe, "--describe"], check=True,
                                     capture_output=True, text=True).stdout)
    ins = {t["name"]: rng.uniform(-2, 2, t["shape"]).astype(np.float32)
           for t in desc["inputs"]}
    args = [exe]
    for name, a in ins.items():
        np.save(f"{exe}_{name}.npy", a)
        args += ["--input", f"{name}={exe}_{name}.npy"]
    outs = [t["name"] for t in desc["outputs"]]
    for name in outs:
        args += ["--output", f"{name}={exe}_{name}.npy"]
    subprocess.run(args, check=True)
    ref = reference(ins["x"].astype(np.float64), ins["v"].astype(np.float64))
    ok = all([compare(n, np.load(f"{exe}_{n}.npy"), ref[n]) for n in outs])
    print(f"all {len(outs)} outputs match" if ok else "MISMATCH")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
