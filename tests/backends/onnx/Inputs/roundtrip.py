"""roundtrip.py: kiln export checked end to end on one model file.

  roundtrip.py KILN MODEL_FILE TMPDIR [--model NAME]... [--export-only]

For every model in MODEL_FILE (or each NAME): gives its parameters random
values (a safetensors file), exports it with --weights twice (the two
files must be byte-identical), validates the export with
onnx.checker.check_model(full_check=True), builds both the source and the
exported .onnx into executables, runs both on the same random inputs and
compares every output within rtol 1e-5.  Prints "NAME: MATCH" per model;
with --export-only (a model the importer cannot read back), stops after
the checker and prints "NAME: EXPORTED".
"""
import json
import os
import re
import sys

import numpy as np
import onnx

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "examples", "Inputs"))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "e2e", "Inputs"))
from reference import load_safetensors, save_safetensors  # noqa: E402
from layers_ref import kiln  # noqa: E402
from run_example import INT_RANGE, scale  # noqa: E402

NP = {"f32": np.float32, "f64": np.float64, "i64": np.int64, "i32": np.int32,
      "i8": np.int8, "u8": np.uint8, "bool": np.bool_}


def make_inputs(desc, model, tmp, rng):
    """Random inputs of each dtype: normal floats, integers in [0, 2) (or
    INT_RANGE's), random booleans."""
    args = []
    for t in desc["inputs"]:
        dt, shape = NP[t["dtype"]], t["shape"]
        if t["dtype"] in ("f32", "f64"):
            v = rng.standard_normal(shape).astype(dt)
        elif t["dtype"] == "bool":
            v = rng.integers(0, 2, shape).astype(dt)
        else:
            hi = INT_RANGE.get(model, {}).get(t["name"], 2)
            v = rng.integers(0, hi, shape).astype(dt)
        path = os.path.join(tmp, t["name"] + ".npy")
        np.save(path, v)
        args += ["--input", f'{t["name"]}={path}']
    return args


def random_weights(exe, src, model, tmp, rng):
    w0 = os.path.join(tmp, model + ".w0.safetensors")
    w1 = os.path.join(tmp, model + ".w1.safetensors")
    kiln(exe, "build", src, "--model", model, "--emit=weights", "-o", w0)
    W = {k: rng.normal(0, scale(v.shape), v.shape)
         for k, v in load_safetensors(w0).items()}
    for k in W:     # batchnorm's running variances must be positive
        if k.endswith(".var"):
            W[k] = np.abs(W[k]) + 0.5
    save_safetensors(w1, W)
    return w1


def export(exe, src, model, tmp, w):
    out = os.path.join(tmp, model + ".onnx")
    again = os.path.join(tmp, model + ".again.onnx")
    for path in (out, again):
        kiln(exe, "export", src, "--model", model, "--weights", w, "-o", path)
    with open(out, "rb") as f, open(again, "rb") as g:
        if f.read() != g.read():
            sys.exit(f"{model}: two exports differ")
    m = onnx.load(out)
    onnx.checker.check_model(m, full_check=True)
    if m.opset_import[0].version != 17 or m.ir_version != 8:
        sys.exit(f"{model}: opset {m.opset_import[0].version}, "
                 f"ir_version {m.ir_version}")
    return out


def run(prog, desc, args, tmp, tag):
    outs = {}
    for t in desc["outputs"]:
        path = os.path.join(tmp, f"{tag}_{t['name']}.npy")
        args = args + ["--output", f"{t['name']}={path}"]
        outs[t["name"]] = path
    kiln(prog, *args)
    return {k: np.load(p) for k, p in outs.items()}


def random_normal(path):
    """Whether the model draws random numbers: kiln does not import
    RandomNormal (ONNX leaves its numbers to the runtime, so they could
    not be compared anyway)."""
    import onnx
    return any(n.op_type == "RandomNormal" for n in onnx.load(path).graph.node)


def check(exe, src, model, tmp, rng, export_only):
    w = random_weights(exe, src, model, tmp, rng)
    onnx_path = export(exe, src, model, tmp, w)
    if export_only or random_normal(onnx_path):
        print(f"{model}: EXPORTED")
        return
    a, b = os.path.join(tmp, model + ".a"), os.path.join(tmp, model + ".b")
    kiln(exe, "build", src, "--model", model, "--weights", w, "-o", a)
    kiln(exe, "build", onnx_path, "-o", b)
    desc = json.loads(kiln(a, "--describe"))
    if json.loads(kiln(b, "--describe")) != desc:
        sys.exit(f"{model}: the executables' inputs and outputs differ")
    args = make_inputs(desc, model, tmp, rng)
    want = run(a, desc, args, tmp, "kiln")
    got = run(b, desc, args, tmp, "onnx")
    for k, v in want.items():
        if got[k].dtype != v.dtype or got[k].shape != v.shape:
            sys.exit(f"{model}: output {k} is {got[k].dtype}{got[k].shape}, "
                     f"want {v.dtype}{v.shape}")
        a, b = got[k].astype(np.float64), v.astype(np.float64)
        same_nan = np.isnan(a) == np.isnan(b)
        d = np.nan_to_num(np.abs(a - b), nan=0.0).max() if a.size else 0.0
        if not same_nan.all() or not d <= 1e-5 * max(1, np.abs(b[~np.isnan(b)]).max(initial=0)):
            sys.exit(f"{model}: output {k} MISMATCH (max abs diff {d:.3g})")
    print(f"{model}: MATCH")


def main():
    exe, src, tmp = sys.argv[1:4]
    models = [sys.argv[i + 1] for i in range(4, len(sys.argv))
              if sys.argv[i] == "--model"]
    if not models:
        models = re.findall(r"^graph @(\S+)\(", kiln(exe, "ir", src), re.M)
    rng = np.random.default_rng(1234)
    for model in models:
        check(exe, src, model, tmp, rng, "--export-only" in sys.argv)


if __name__ == "__main__":
    main()
