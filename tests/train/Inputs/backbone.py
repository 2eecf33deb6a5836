"""backbone.py OUT.onnx: a small "pretrained" CNN as ONNX, the backbone of
transfer.test: conv 1->4 3x3 pad 1,
BatchNormalization, Relu, MaxPool 2, Flatten (named 'features'), then a
Gemm to 10 classes (the old head, 'logits')."""
import sys
import numpy as np
import onnx
from onnx import helper, numpy_helper, TensorProto

r = np.random.default_rng(5)
def init(name, a):
    return numpy_helper.from_array(a.astype(np.float32), name)
inits = [init("conv.w", r.normal(0, 0.5, (4, 1, 3, 3))), init("conv.b", r.normal(0, 0.1, 4)),
         init("bn.scale", 1 + 0.1 * r.normal(size=4)), init("bn.bias", 0.1 * r.normal(size=4)),
         init("bn.mean", 0.1 * r.normal(size=4)), init("bn.var", 1 + 0.1 * r.random(4)),
         init("fc.w", r.normal(0, 0.05, (10, 784))), init("fc.b", np.zeros(10))]
nodes = [helper.make_node("Conv", ["image", "conv.w", "conv.b"], ["c"], pads=[1, 1, 1, 1], name="conv"),
         helper.make_node("BatchNormalization", ["c", "bn.scale", "bn.bias", "bn.mean", "bn.var"], ["bn"], name="bn"),
         helper.make_node("Relu", ["bn"], ["r"], name="relu"),
         helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2], name="pool"),
         helper.make_node("Flatten", ["p"], ["features"], name="flatten"),
         helper.make_node("Gemm", ["features", "fc.w", "fc.b"], ["logits"], transB=1, name="fc")]
g = helper.make_graph(nodes, "backbone",
                      [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 1, 28, 28])],
                      [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])], inits)
m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
onnx.checker.check_model(m)
onnx.save(m, sys.argv[1])
