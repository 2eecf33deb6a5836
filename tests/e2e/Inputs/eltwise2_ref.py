"""eltwise2_ref.py: the NumPy reference for tests/e2e/eltwise2.test.

  eltwise2_ref.py EXE

EXE is the executable kiln built from Inputs/eltwise2.kir.  Makes seeded
inputs (edge values included: INT32_MIN, divisors 0 and -1, exact halves
for round, a base whose power overflows), runs EXE with every output
written next to it as EXE_NAME.npy, and compares each with the reference
below.  The reference shares no code with kiln: integers are computed
exactly in int64 (or Python ints) and wrapped by NumPy's astype, division
truncates by sign and magnitude, casts from float saturate as kiln
documents, and f32 math is computed in float64.  Integers and bools must
be equal; floats agree within 1e-5 relative to max(|reference|, 1), NaN
and infinities exactly.  Prints "all N outputs match" or what differs.
"""
import json
import math
import subprocess
import sys

import numpy as np

NP = {"f32": np.float32, "f64": np.float64, "i64": np.int64,
      "i32": np.int32, "i8": np.int8, "u8": np.uint8, "bool": np.bool_}
TOL = 1e-5


def make_inputs(rng):
    i = rng.integers(-2**31, 2**31, (2, 3, 4)).astype(np.int32)
    i.flat[:4] = [7, -2**31, -7, 0]       # against j: 0, -1, 3, -7
    y = rng.uniform(0.5, 2, (3, 1)) * rng.choice([-1, 1], (3, 1))
    d = rng.uniform(0.1, 2, (3, 4))
    d[0, 0] = 200.0                       # 200^400 overflows to inf
    e = rng.integers(-128, 128, (3, 4)).astype(np.int8)
    e.flat[:3] = [-128, 0, -1]
    x = rng.integers(-16, 17, (2, 3, 4)) / 4
    x.flat[:4] = [0, 2.5, -2.5, 0.5]      # 1/0, halves to even
    return {
        "x": x.astype(np.float32),
        "y": y.astype(np.float32),
        "i": i,
        "j": np.array([0, -1, 3, -7], np.int32),
        "u": rng.integers(0, 256, (3, 4)).astype(np.uint8),
        "v": np.array([0, 1, 7, 200], np.uint8),
        "k": rng.integers(-3 * 10**9, 3 * 10**9, (2, 1, 4)),
        "m": rng.integers(0, 2, (3, 4)).astype(np.bool_),
        "d": d,
        "e": e,
    }


def tdiv(a, b):
    """Integer division truncating toward zero; x / 0 = 0 (int64)."""
    a, b = np.broadcast_arrays(np.int64(a), np.int64(b))
    safe = np.where(b == 0, 1, b)
    q = np.sign(a) * np.sign(safe) * (np.abs(a) // np.abs(safe))
    return np.where(b == 0, 0, q)


def imod(a, b, fmod):
    """a mod b with the sign of b (fmod 0) or of a (fmod 1); x mod 0 = 0."""
    a, b = np.broadcast_arrays(np.int64(a), np.int64(b))
    r = a - tdiv(a, b) * b                # the sign of a
    if not fmod:
        r = np.where((r != 0) & ((r < 0) != (b < 0)), r + b, r)
    return np.where(b == 0, 0, r)


def cast_sat(x, dt):
    """Float to integer: truncate, saturate at the range, NaN gives 0."""
    info = np.iinfo(dt)
    t = np.trunc(np.nan_to_num(x, nan=0.0))
    return np.clip(t, info.min, info.max).astype(dt)


def reference(x, y, i, j, u, v, k, m, d, e):
    X = x.astype(np.float64)
    I, J, E = np.int64(i), np.int64(j), np.int64(e)
    erf = np.vectorize(math.erf)
    ss = X / (1 + np.abs(X))
    lt = X < y
    eq_i = I == J
    mod_e = imod(E, E, 0).astype(np.int8)
    ge_u = u >= v
    with np.errstate(all="ignore"):
        pow_d = d ** (2 * d)
        recip = 1 / X
        acosh_x = np.arccosh(X)
        return {
            "add_i": (I + J).astype(np.int32),
            "sub_u": (np.int64(u) - v).astype(np.uint8),
            "mul_k": k * k,
            "div_i": tdiv(I, J).astype(np.int32),
            "div_u": tdiv(u, v).astype(np.uint8),
            "div_e": tdiv(E, E).astype(np.int8),
            "mod_i": imod(I, J, 0).astype(np.int32),
            "fmod_i": imod(I, J, 1).astype(np.int32),
            "fmod_x": np.fmod(X, y),
            "mod_e": mod_e,
            "pow_d": pow_d,
            "pow_x": X ** 0.5,
            "max_x": np.maximum(X, y),
            "min_u": np.minimum(u, v),
            "max_k": np.maximum(k, k * k),
            "lt": lt,
            "eq_i": eq_i,
            "le_d": d <= pow_d,
            "gt_e": e > mod_e,
            "eq_b": m == ge_u,
            "and": lt & m,
            "xor": m ^ eq_i,
            "or": ~m | lt,
            "where_x": np.where(m, X, y),
            "where_i": np.where(lt, i, j),
            "where_b": np.where(ge_u, m, ~m),
            "cast_xi": cast_sat(X, np.int32),
            "cast_xu": cast_sat(X, np.uint8),
            "cast_ib": i != 0,
            "cast_bf": m.astype(np.float32),
            "cast_kd": k.astype(np.float64),
            "cast_i8": i.astype(np.int8),
            "cast_df": d.astype(np.float32),
            "neg_i": (-I).astype(np.int32),
            "abs_k": np.abs(k),
            "abs_e": np.abs(E).astype(np.int8),
            "sin": np.sin(X), "cos": np.cos(X), "tan": np.tan(X),
            "asin": np.arcsin(ss), "acos": np.arccos(ss),
            "atan": np.arctan(X), "sinh": np.sinh(X),
            "asinh": np.arcsinh(X), "acosh": np.abs(X),
            "atanh": np.arctanh(ss),
            "ceil": np.ceil(X), "floor": np.floor(X),
            "round": np.round(X), "sign": np.sign(X), "erf": erf(X),
            "softplus": np.log1p(np.exp(X)),
            "celu": np.maximum(0, X) + np.minimum(0, 0.5 * np.expm1(X / 0.5)),
            "thresholded_relu": np.where(X > 0.5, X, 0),
            "shrink": np.where(X < -1, X + 0.25, np.where(X > 1, X - 0.25, 0)),
            "isnan": np.isnan(acosh_x),
            "isinf": np.isposinf(recip),
            "isinf_d": np.isinf(pow_d),
        }


def compare(name, got, want, dtype):
    """Prints and returns whether got matches want (of kiln dtype dtype)."""
    want = np.asarray(want)
    if got.dtype != NP[dtype] or got.shape != want.shape:
        print(f"{name}: got {got.dtype}{list(got.shape)}, want "
              f"{dtype}{list(want.shape)}")
        return False
    if got.dtype.kind in "iub":
        bad = got != want.astype(got.dtype)
    else:
        g, w = got.astype(np.float64), want.astype(np.float64)
        same = (np.isnan(g) & np.isnan(w)) | (g == w)
        with np.errstate(invalid="ignore"):
            near = np.abs(g - w) <= TOL * np.maximum(np.abs(w), 1)
        bad = ~(same | (near & np.isfinite(w)))
    if bad.any():
        k = np.argwhere(bad)[0]
        print(f"{name}: differs at {tuple(k)}: got {got[tuple(k)]!r} "
              f"want {want[tuple(k)]!r}")
        return False
    return True


def main():
    exe = sys.argv[1]
    desc = json.loads(subprocess.run([exe, "--describe"], check=True,
                                     capture_output=True, text=True).stdout)
    ins = make_inputs(np.random.default_rng(20240613))
    args = [exe]
    for t in desc["inputs"]:
        name = t["name"]
        assert ins[name].dtype == NP[t["dtype"]], name
        np.save(f"{exe}_{name}.npy", ins[name])
        args += ["--input", f"{name}={exe}_{name}.npy"]
    for t in desc["outputs"]:
        args += ["--output", f"{t['name']}={exe}_{t['name']}.npy"]
    run = subprocess.run(args, capture_output=True, text=True)
    if run.returncode:
        sys.exit(f"{exe} failed: {run.stderr}")
    ref = reference(**ins)
    ok = [compare(t["name"], np.load(f"{exe}_{t['name']}.npy"),
                  ref[t["name"]], t["dtype"]) for t in desc["outputs"]]
    if all(ok):
        print(f"all {len(ok)} outputs match")
    return 0 if all(ok) else 1


if __name__ == "__main__":
    sys.exit(main())
