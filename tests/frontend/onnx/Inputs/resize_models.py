"""Writes the small Resize and Upsample models of resize.test.

usage: resize_models.py KIND OUT.onnx
Each KIND is one entry of MODELS; built with onnx.helper.
"""
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def resize(attrs, roi=None, scales=None, sizes=None, op="Resize", opset=13,
           shape=(1, 2, 4, 5)):
    inits, names = [], ["x"]
    for name, v, dt in (("roi", roi, np.float32), ("scales", scales, np.float32),
                        ("sizes", sizes, np.int64)):
        if op == "Upsample" and name != "scales":
            continue
        if v is None:
            names.append("")
            continue
        inits.append(numpy_helper.from_array(np.array(v, dt), name))
        names.append(name)
    while names[-1] == "":
        names.pop()
    node = helper.make_node(op, names, ["y"], name="resize_1", **attrs)
    g = helper.make_graph([node], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                         shape)],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT,
                                                         None)], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


MODELS = {
    "cubic": lambda: resize({"mode": "cubic", "cubic_coeff_a": -0.5,
                             "exclude_outside": 1},
                            scales=[1, 1, 0.8, 0.6]),
    "crop": lambda: resize({"mode": "linear", "extrapolation_value": 10.0,
                            "coordinate_transformation_mode":
                            "tf_crop_and_resize"},
                           roi=[0, 0, 0.5, 0.25, 1, 1, 1.5, 0.75],
                           sizes=[1, 2, 3, 3]),
    "tfnn": lambda: resize({"coordinate_transformation_mode":
                            "tf_half_pixel_for_nn"}, sizes=[2, 3, 3, 2]),
    "upsample7": lambda: resize({"mode": "nearest", "scales": [1.0, 1, 2, 1.5]},
                                op="Upsample", opset=7),
    "crop_noroi": lambda: resize({"coordinate_transformation_mode":
                                  "tf_crop_and_resize"}, sizes=[1, 2, 3, 3]),
    "tinyscale": lambda: resize({}, scales=[1, 1, 0.2, 1]),
}

if __name__ == "__main__":
    onnx.save(MODELS[sys.argv[1]](), sys.argv[2])
