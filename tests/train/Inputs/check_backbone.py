"""check_backbone.py MODEL.onnx WEIGHTS.safetensors PREFIX same|changed:
whether the trained weights PREFIX.NAME equal the ONNX model's
initializers NAME (a frozen backbone) or every one of them changed
(fine-tuned), BatchNorm's running statistics apart ("changed" skips
them: they move with the batches, not by gradient).  Prints OK."""
import json
import struct
import sys

import numpy as np
import onnx
from onnx import numpy_helper


def main(onnx_path, st_path, prefix, want):
    init = {t.name: numpy_helper.to_array(t)
            for t in onnx.load(onnx_path).graph.initializer}
    raw = open(st_path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    seen = 0
    for k, v in header.items():
        if not k.startswith(prefix + "."):
            continue
        b, e = v["data_offsets"]
        a = np.frombuffer(raw[8 + n + b:8 + n + e], np.float32).reshape(v["shape"])
        ref = init[k[len(prefix) + 1:]]
        same = np.array_equal(a, ref)
        seen += 1
        if want == "same" and not same:
            sys.exit("%s changed" % k)
        if want == "changed" and same and "mean" not in k and "var" not in k:
            sys.exit("%s did not change" % k)
    if seen == 0:
        sys.exit("no tensor %s.*" % prefix)
    print("%d tensors: OK" % seen)


main(*sys.argv[1:])
