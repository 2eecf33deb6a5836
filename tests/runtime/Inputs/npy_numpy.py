"""Cross-checks runtime/npy.c against NumPy (used by npy_numpy.test).

  npy_numpy.py check DIR   loads the files `test_runtime npy-write DIR` made
                           with numpy.load and checks header, dtype, values
  npy_numpy.py make DIR    writes np_*.npy with NumPy, good ones for
                           `test_runtime npy-read` and ones it must reject

Values follow one pattern per dtype, the same as pattern() in
test_runtime.c.
"""
import os
import sys

import numpy as np

DTYPES = {"f32": np.float32, "f64": np.float64, "i64": np.int64,
          "i32": np.int32, "i8": np.int8, "u8": np.uint8, "bool": np.bool_}


def pattern(name, shape):
    i = np.arange(int(np.prod(shape)), dtype=np.int64)
    if name in ("f32", "f64"):
        v = i * 0.5 - 1
    elif name == "i64":
        v = i * 3000000007 - 5
    elif name == "i32":
        v = i * 100003 - 7000000
    elif name == "i8":
        v = i * 37 % 256 - 128
    elif name == "u8":
        v = i * 37 % 256
    else:
        v = i % 3 == 0
    return v.astype(DTYPES[name]).reshape(shape)


def expect(path, name, shape):
    with open(path, "rb") as f:
        version = np.lib.format.read_magic(f)
        assert version == (1, 0), (path, version)
        hdr = np.lib.format.read_array_header_1_0(f)
        assert f.tell() % 64 == 0, (path, "data not 64-aligned", f.tell())
    assert hdr == (tuple(shape), False, np.dtype(DTYPES[name])), (path, hdr)
    a = np.load(path)
    want = pattern(name, shape)
    assert a.dtype == want.dtype and a.shape == want.shape, (path, a.dtype)
    assert np.array_equal(a, want), (path, a, want)


def check(d):
    n = 0
    for name in DTYPES:
        expect(os.path.join(d, name + ".npy"), name, (3, 50))
        n += 1
    expect(os.path.join(d, "scalar.npy"), "f32", ())
    expect(os.path.join(d, "empty.npy"), "f32", (0, 3))
    expect(os.path.join(d, "rank8.npy"), "f64", (1, 2, 1, 3, 1, 1, 2, 1))
    print("checked %d files" % (n + 3))


def write_version(path, a, version):
    with open(path, "wb") as f:
        np.lib.format.write_array(f, a, version=version)


def make(d):
    def p(name):
        return os.path.join(d, name)

    for name in DTYPES:
        np.save(p("np_%s.npy" % name), pattern(name, (3, 50)))
    np.save(p("np_scalar.npy"), pattern("f32", ()))
    np.save(p("np_empty.npy"), pattern("f32", (0, 3)))
    np.save(p("np_rank8.npy"), pattern("f64", (1, 2, 1, 3, 1, 1, 2, 1)))
    write_version(p("np_v2.npy"), pattern("f32", (3, 50)), (2, 0))
    write_version(p("np_v3.npy"), pattern("f64", (3, 50)), (3, 0))
    # files kiln must reject
    np.save(p("np_fortran.npy"), np.asfortranarray(pattern("f32", (3, 50))))
    np.save(p("np_be.npy"), pattern("f32", (3, 50)).astype(">f4"))
    np.save(p("np_c8.npy"), np.zeros((3, 50), np.complex64))
    np.save(p("np_f2.npy"), np.zeros((3, 50), np.float16))
    np.save(p("np_struct.npy"), np.zeros((3, 50), [("a", "<f4")]))
    np.save(p("np_u16.npy"), np.zeros((3, 50), np.uint16))


if __name__ == "__main__":
    {"check": check, "make": make}[sys.argv[1]](sys.argv[2])
