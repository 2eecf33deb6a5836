"""Writes small ONNX models for the importer's tests.

usage: make_model.py KIND OUT.onnx
Each KIND is one function below; the models are built with onnx.helper,
so the tests need Debian's python3-onnx.
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def vi(name, dims, t=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, t, dims)


def model(nodes, inputs, outputs, inits=(), opset=13):
    g = helper.make_graph(nodes, 'g', inputs, outputs, list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid('', opset)])


def unsupported(out):
    nodes = [helper.make_node('Foo', ['x'], ['a'], name='foo_1'),
             helper.make_node('Relu', ['a'], ['b'], name='relu_1'),
             helper.make_node('Foo', ['b'], ['c'], name='foo_2'),
             helper.make_node('Bar', ['c'], ['d'], name='bar_1'),
             helper.make_node('Fused', ['d'], ['y'], name='fused_1',
                              domain='com.example')]
    m = model(nodes, [vi('x', [2, 3])], [vi('y', [2, 3])])
    m.opset_import.append(helper.make_opsetid('com.example', 1))
    onnx.save(m, out)


def extdata(out, location):
    """An initializer stored in an external file at location."""
    w = np.arange(6, dtype=np.float32).reshape(2, 3)
    t = numpy_helper.from_array(w, 'w')
    t.data_location = TensorProto.EXTERNAL
    t.ClearField('raw_data')
    for k, v in [('location', location), ('offset', '0'), ('length', '24')]:
        e = t.external_data.add()
        e.key, e.value = k, v
    d = os.path.dirname(os.path.abspath(out))
    path = location if os.path.isabs(location) else os.path.join(d, location)
    if os.path.isdir(os.path.dirname(path)):
        with open(path, 'wb') as f:
            f.write(w.tobytes())
    m = model([helper.make_node('Add', ['x', 'w'], ['y'], name='add_1')],
              [vi('x', [2, 3])], [vi('y', [2, 3])], [t])
    onnx.save(m, out)


def symbolic(out):
    nodes = [helper.make_node('Relu', ['x'], ['y']),
             helper.make_node('Relu', ['z'], ['u'])]
    m = model(nodes, [vi('x', ['N', 3]), vi('z', [2, 'M'])],
              [vi('y', ['N', 3]), vi('u', [2, 'M'])])
    onnx.save(m, out)


def shapefold(out):
    """x -> Reshape(x, concat(unsqueeze(shape(x)[0]), [-1]))"""
    nodes = [
        helper.make_node('Shape', ['x'], ['s'], name='shape_1'),
        helper.make_node('Constant', [], ['zero'], name='const_0',
                         value=numpy_helper.from_array(np.array(0, np.int64))),
        helper.make_node('Gather', ['s', 'zero'], ['n'], name='gather_1'),
        helper.make_node('Unsqueeze', ['n', 'axes'], ['n1'], name='unsq_1'),
        helper.make_node('Concat', ['n1', 'minus1'], ['shape'], axis=0,
                         name='concat_1'),
        helper.make_node('Reshape', ['x', 'shape'], ['r'], name='reshape_1'),
        helper.make_node('Relu', ['r'], ['y'], name='relu_1'),
    ]
    inits = [numpy_helper.from_array(np.array([0], np.int64), 'axes'),
             numpy_helper.from_array(np.array([-1], np.int64), 'minus1')]
    m = model(nodes, [vi('x', [2, 3, 4])], [vi('y', [2, 12])], inits)
    onnx.save(m, out)


def conv(out):
    """A named Conv + Relu with weights: weights become parameters."""
    rng = np.random.default_rng(1)
    w = numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3))
                                .astype(np.float32), 'w')
    b = numpy_helper.from_array(np.zeros(4, np.float32), 'b')
    nodes = [helper.make_node('Conv', ['x', 'w', 'b'], ['c'], name='conv_1',
                              pads=[1, 1, 1, 1]),
             helper.make_node('Relu', ['c'], ['y'], name='relu_1')]
    m = model(nodes, [vi('x', [1, 3, 8, 8])], [vi('y', [1, 4, 8, 8])], [w, b])
    onnx.save(m, out)


if __name__ == '__main__':
    kind, out = sys.argv[1], sys.argv[2]
    if kind.startswith('extdata:'):
        extdata(out, kind.split(':', 1)[1])
    else:
        globals()[kind](out)
