"""A tiny ONNX test data set in libonnx-testdata's layout, made with
onnx.helper and NumPy, for kiln_fake_data.test and gen_support.test.

    make_onnx_data.py DIR

DIR/<suite>/<test>/model.onnx and test_data_set_0/{input,output}_K.pb:
  node/test_relu_ok            Relu (opset 13), right outputs
  node/test_relu_wrong         Relu, one output element off by 1
  node/test_relu_listed_wrong  the same, for the expectations file
  node/test_relu_tol           Relu, outputs off by 2% (passes at rtol 0.1)
  node/test_add_listed_ok      Add then Relu (opset 14), right outputs
  simple/test_frobnicate       an op of a domain kiln does not know
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def model(nodes, inputs, opset, domain=None):
    vi = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [2, 3])
          for n in inputs]
    out = helper.make_tensor_value_info('y', TensorProto.FLOAT, [2, 3])
    g = helper.make_graph(nodes, 'g', vi, [out])
    ops = [helper.make_opsetid('', opset)]
    if domain:
        ops.append(helper.make_opsetid(domain, 1))
    m = helper.make_model(g, opset_imports=ops)
    m.ir_version = 8
    return m


def write(root, test, m, inputs, output):
    d = os.path.join(root, test, 'test_data_set_0')
    os.makedirs(d)
    onnx.save(m, os.path.join(root, test, 'model.onnx'))
    for k, (name, x) in enumerate(inputs):
        onnx.save_tensor(numpy_helper.from_array(x, name),
                         os.path.join(d, 'input_%d.pb' % k))
    onnx.save_tensor(numpy_helper.from_array(output, 'y'),
                     os.path.join(d, 'output_0.pb'))


def main():
    root = sys.argv[1]
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3)).astype(np.float32)
    b = rng.standard_normal((2, 3)).astype(np.float32)
    relu = model([helper.make_node('Relu', ['x'], ['y'])], ['x'], 13)
    y = np.maximum(x, 0)
    wrong = y.copy()
    wrong[1, 2] += 1
    write(root, 'node/test_relu_ok', relu, [('x', x)], y)
    write(root, 'node/test_relu_wrong', relu, [('x', x)], wrong)
    write(root, 'node/test_relu_listed_wrong', relu, [('x', x)], wrong)
    x2 = np.abs(x) + 1
    write(root, 'node/test_relu_tol', relu, [('x', x2)], x2 * 1.02)
    add = model([helper.make_node('Add', ['x', 'b'], ['s']),
                 helper.make_node('Relu', ['s'], ['y'])], ['x', 'b'], 14)
    write(root, 'node/test_add_listed_ok', add, [('x', x), ('b', b)],
          np.maximum(x + b, 0))
    frob = model([helper.make_node('Frobnicate', ['x'], ['y'],
                                   domain='com.example')], ['x'], 13,
                 'com.example')
    write(root, 'simple/test_frobnicate', frob, [('x', x)], x)


main()
