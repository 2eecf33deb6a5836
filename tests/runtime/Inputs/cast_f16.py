"""cast_f16.py: checks kiln_cast's f16 and bf16 conversions bit for bit.

  cast_f16.py TEST_DTYPES DIR

Writes inputs as .npy into DIR, runs `TEST_DTYPES cast IN DT OUT` on each
and compares the result with NumPy's float16 (f16) or with a reference
written with integer arithmetic on the float32 bits (bf16, which NumPy
lacks; kiln stores it as '<u2' bit patterns).  NaNs compare as NaN of
either sign and payload.  Prints one line per direction.
"""
import subprocess
import sys

import numpy as np

TOOL, DIR = sys.argv[1], sys.argv[2]


def run(x, dt, name):
    src, dst = f"{DIR}/{name}_in.npy", f"{DIR}/{name}_out.npy"
    np.save(src, x)
    subprocess.run([TOOL, "cast", src, dt, dst], check=True)
    return np.load(dst)


def same_float(got, want, what):
    bad = ~((got == want) & (np.signbit(got) == np.signbit(want)) |
            (np.isnan(got) & np.isnan(want)))
    if bad.any():
        i = np.flatnonzero(bad)[:5]
        sys.exit(f"{what}: {bad.sum()} differ, e.g. at {i}: got "
                 f"{got.flat[i]}, want {want.flat[i]}")
    print(f"{what}: {got.size} values ok")


def same_bits16(got, want, what):
    """got, want: uint16 patterns of one 16-bit float format."""
    nan = (want & 0x7FFF) > (0x7C00 if what.endswith("f16") else 0x7F80)
    gnan = (got & 0x7FFF) > (0x7C00 if what.endswith("f16") else 0x7F80)
    bad = np.where(nan, ~gnan, got != want)
    if bad.any():
        i = np.flatnonzero(bad)[:5]
        sys.exit(f"{what}: {bad.sum()} differ, e.g. at {i}: got "
                 f"{[hex(v) for v in got.flat[i]]}, want "
                 f"{[hex(v) for v in want.flat[i]]}")
    print(f"{what}: {got.size} values ok")


def narrow_inputs(dtype, bits16_to_float):
    """Every 16-bit value, the midpoints between neighbours (ties), one
    step either side of each midpoint, and random values of dtype."""
    h = np.arange(0x10000, dtype=np.uint32)
    finite = h[(h & 0x7FFF) < 0x7C00 if bits16_to_float is f16 else
               (h & 0x7FFF) < 0x7F80]
    v = bits16_to_float(finite.astype(np.uint16)).astype(dtype)
    nxt = bits16_to_float((finite + 1).astype(np.uint16)).astype(dtype)
    ok = np.isfinite(nxt) & (np.sign(v) == np.sign(nxt)) & ((finite & 0x7FFF) != 0x7FFF)
    mid = (v[ok] + (nxt[ok] - v[ok]) / 2).astype(dtype)
    up = np.nextafter(mid, dtype(np.inf))
    down = np.nextafter(mid, dtype(-np.inf))
    rng = np.random.default_rng(7)
    ib = np.int64 if dtype == np.float64 else np.int32
    raw = rng.integers(np.iinfo(ib).min, np.iinfo(ib).max, 200000, dtype=ib)
    rnd = raw.view(dtype)
    scaled = (rng.standard_normal(100000) * 1000).astype(dtype)
    big = np.array([65504, 65519, 65520, 65536, 1e6, np.inf, -np.inf, np.nan,
                    -0.0, 3.4e38, 1e-8, 5.96e-8, 2.98e-8, 2.9802322387695312e-08],
                   dtype=dtype)
    return np.concatenate([v, mid, up, down, rnd, scaled, big])


def f16(bits):
    return bits.view(np.float16).astype(np.float32)


def bf16(bits):
    return (bits.astype(np.uint32) << 16).view(np.float32)


def ref_bf16(x32):
    """float32 -> bf16 bits, round to nearest even, on the integer bits."""
    b = x32.view(np.uint32).astype(np.uint64)
    r = ((b + 0x7FFF + ((b >> 16) & 1)) >> 16).astype(np.uint16)
    return np.where(np.isnan(x32), np.uint16(0x7FC0), r)


all16 = np.arange(0x10000, dtype=np.uint32).astype(np.uint16)
same_float(run(all16.view(np.float16), "f32", "h2f"),
           all16.view(np.float16).astype(np.float32), "f16 -> f32")
same_float(run(all16.view(np.float16), "f64", "h2d"),
           all16.view(np.float16).astype(np.float64), "f16 -> f64")
x = narrow_inputs(np.float32, f16)
same_bits16(run(x, "f16", "f2h").view(np.uint16),
            x.astype(np.float16).view(np.uint16), "f32 -> f16")
x = narrow_inputs(np.float64, f16)
same_bits16(run(x, "f16", "d2h").view(np.uint16),
            x.astype(np.float16).view(np.uint16), "f64 -> f16")

# bf16 travels as '<u2' bit patterns; the fifth argument tells
# test_dtypes to read the u16 file as bf16
src, dst = f"{DIR}/bf2f_in.npy", f"{DIR}/bf2f_out.npy"
np.save(src, all16)
subprocess.run([TOOL, "cast", src, "f32", dst, "bf16"], check=True)
same_float(np.load(dst), bf16(all16), "bf16 -> f32")
x = narrow_inputs(np.float32, bf16)
same_bits16(run(x, "bf16", "f2bf").astype(np.uint16), ref_bf16(x),
            "f32 -> bf16")

# f16 -> i32: truncation toward zero, saturation, NaN -> 0 (ONNX Cast)
h = all16.view(np.float16).astype(np.float64)
want = np.where(np.isnan(h), 0, np.clip(np.trunc(np.nan_to_num(
    h, posinf=2**31, neginf=-2**31)), -2**31, 2**31 - 1)).astype(np.int32)
got = run(all16.view(np.float16), "i32", "h2i")
if (got != want).any():
    sys.exit(f"f16 -> i32: {(got != want).sum()} differ")
print(f"f16 -> i32: {got.size} values ok")
