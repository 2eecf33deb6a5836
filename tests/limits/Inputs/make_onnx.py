"""Writes ONNX models that break one of kiln's limits each, for
tests/limits/onnx.test.

usage: make_onnx.py DIR KIND...
writes DIR/KIND.onnx for each KIND, one function below (built with
onnx.helper, so the tests need Debian's python3-onnx).  The models are written without onnx.checker,
since most of them are invalid on purpose.
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

F = TensorProto.FLOAT


def vi(name, dims, t=F):
    return helper.make_tensor_value_info(name, t, dims)


def save(out, nodes, inputs, outputs, inits=(), opset=13):
    g = helper.make_graph(nodes, 'g', inputs, outputs, list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid('', opset)])
    onnx.save(m, out)


def empty_init(name, dims):
    """An initializer with dims and no data at all: the reader must refuse
    its shape before it looks for data."""
    t = TensorProto(name=name, data_type=F)
    t.dims.extend(dims)
    return t


def relu(out, x_dims, y_dims=None):
    save(out, [helper.make_node('Relu', ['x'], ['y'], name='relu_1')],
         [vi('x', x_dims)], [vi('y', y_dims or x_dims)])


# ---- shapes ----

def input_rank9(out):
    relu(out, [1] * 9)


def input_huge(out):
    """2^31 x 2^31 = 2^62 elements: 2^64 bytes as f32 (overflows int64)."""
    relu(out, [1, 2 ** 31, 2 ** 31])


def input_huge_product(out):
    """Each dim fits int32; the product of the four overflows int64."""
    relu(out, [65536, 65536, 65536, 65536])


def input_zero(out):
    relu(out, [1, 0, 3])


def input_negative(out):
    relu(out, [1, -1, 3])


def init_rank9(out):
    w = numpy_helper.from_array(np.zeros([1] * 9, np.float32), 'w')
    save(out, [helper.make_node('Add', ['x', 'w'], ['y'], name='add_1')],
         [vi('x', [1] * 8)], [vi('y', [1] * 9)], [w])


def init_huge(out):
    save(out, [helper.make_node('Add', ['x', 'w'], ['y'], name='add_1')],
         [vi('x', [2])], [vi('y', [2])], [empty_init('w', [2 ** 31, 2 ** 31])])


def init_negative(out):
    save(out, [helper.make_node('Add', ['x', 'w'], ['y'], name='add_1')],
         [vi('x', [2])], [vi('y', [2])], [empty_init('w', [2, -1])])


def constant_of_shape(out, shape):
    s = numpy_helper.from_array(np.array(shape, np.int64), 's')
    nodes = [helper.make_node('ConstantOfShape', ['s'], ['c'], name='fill_1'),
             helper.make_node('Add', ['x', 'c'], ['y'], name='add_1')]
    save(out, nodes, [vi('x', [1])], [vi('y', None)], [s])


def fill_overflow(out):
    constant_of_shape(out, [2 ** 31, 2 ** 31, 4])


def fill_huge(out):
    """2^36 floats (256 GiB): no overflow, but far too large to fold."""
    constant_of_shape(out, [2 ** 18, 2 ** 18])


def fill_broadcast(out):
    """Two small folded constants whose sum would broadcast to 2^40
    elements: the Add is not folded but left to the kernels."""
    a = numpy_helper.from_array(np.array([2 ** 20, 1], np.int64), 'sa')
    b = numpy_helper.from_array(np.array([1, 2 ** 20], np.int64), 'sb')
    nodes = [helper.make_node('ConstantOfShape', ['sa'], ['a'], name='fill_a'),
             helper.make_node('ConstantOfShape', ['sb'], ['b'], name='fill_b'),
             helper.make_node('Add', ['a', 'b'], ['c'], name='add_ab'),
             helper.make_node('Add', ['x', 'c'], ['y'], name='add_1')]
    save(out, nodes, [vi('x', [1])], [vi('y', None)], [a, b])


def lstm_long(out):
    """10001 time steps: each would be unrolled into nodes of its own."""
    w = numpy_helper.from_array(np.ones([1, 4, 1], np.float32), 'w')
    r = numpy_helper.from_array(np.ones([1, 4, 1], np.float32), 'r')
    save(out, [helper.make_node('LSTM', ['x', 'w', 'r'], ['y'], name='lstm_1',
                                hidden_size=1)],
         [vi('x', [10001, 1, 1])], [vi('y', None)], [w, r])


def onehot_depth(out):
    """A depth of 2^31 - 1: 0..depth-1 would be a 16 GiB constant."""
    d = numpy_helper.from_array(np.array(2 ** 31 - 1, np.int64), 'depth')
    v = numpy_helper.from_array(np.array([0, 1], np.float32), 'values')
    save(out, [helper.make_node('OneHot', ['x', 'depth', 'values'], ['y'],
                                name='onehot_1')],
         [vi('x', [2], TensorProto.INT64)], [vi('y', None)], [d, v])


def nested(out, depth=100000):
    """A TypeProto nested depth levels deep (sequence of sequence of ...),
    written by hand: protobuf-c's decoder recurses once per level."""
    def varint(n):
        b = bytearray()
        while True:
            b.append(n & 0x7f | (0x80 if n >> 7 else 0))
            n >>= 7
            if not n:
                return bytes(b)

    def field(num, payload):
        return varint(num << 3 | 2) + varint(len(payload)) + payload

    parts = []      # the type's opening bytes, from the outside in
    inner = field(1, b'\x08\x01')     # TypeProto{tensor_type{elem_type: 1}}
    # each level is TypeProto{sequence_type (4): Sequence{elem_type (1): T}};
    # the lengths are computed from the inside out
    size = len(inner)
    heads = []
    for _ in range(depth):
        h1 = varint(1 << 3 | 2) + varint(size)
        size += len(h1)
        h4 = varint(4 << 3 | 2) + varint(size)
        size += len(h4)
        heads.append(h4 + h1)
    t = b''.join(reversed(heads)) + inner
    vinfo = field(1, b'x') + field(2, t)
    with open(out, 'wb') as f:
        f.write(b'\x08\x07' + field(7, field(11, vinfo)))


def range_long(out):
    """Range(0, 2 * 10^8, 1): 2 * 10^8 elements to compute at build time."""
    c = [numpy_helper.from_array(np.array(v, np.int64), n)
         for n, v in [('start', 0), ('limit', 2 * 10 ** 8), ('delta', 1)]]
    save(out, [helper.make_node('Range', ['start', 'limit', 'delta'], ['r'],
                                name='range_1'),
               helper.make_node('Add', ['x', 'r'], ['y'], name='add_1')],
         [vi('x', [1], TensorProto.INT64)], [vi('y', None)], c)


def window_long(out):
    n = numpy_helper.from_array(np.array(2 * 10 ** 8, np.int64), 'n')
    save(out, [helper.make_node('HannWindow', ['n'], ['w'], name='hann_1'),
               helper.make_node('Add', ['x', 'w'], ['y'], name='add_1')],
         [vi('x', [1])], [vi('y', None)], [n], opset=17)


def dropout_mask(out):
    """Dropout's mask output is a constant (all ones, at inference) made at
    build time: for an input of 10^8 + 10^4 elements, too large."""
    save(out, [helper.make_node('Dropout', ['x'], ['y', 'mask'],
                                name='dropout_1')],
         [vi('x', [1, 10000, 10001])], [vi('y', None), vi('mask', None)])


# ---- the graph ----

def cycle(out):
    """t1 = x + t2; t2 = relu(t1): no order computes either first."""
    nodes = [helper.make_node('Add', ['x', 't2'], ['t1'], name='add_1'),
             helper.make_node('Relu', ['t1'], ['t2'], name='relu_1')]
    save(out, nodes, [vi('x', [2])], [vi('t2', [2])])


def self_loop(out):
    save(out, [helper.make_node('Add', ['x', 'y'], ['y'], name='add_1')],
         [vi('x', [2])], [vi('y', [2])])


def dangling(out):
    nodes = [helper.make_node('Add', ['x', 'nowhere'], ['y'], name='add_1')]
    save(out, nodes, [vi('x', [2])], [vi('y', [2])])


def dangling_output(out):
    save(out, [helper.make_node('Relu', ['x'], ['y'], name='relu_1')],
         [vi('x', [2])], [vi('z', [2])])


def dup_init(out):
    w1 = numpy_helper.from_array(np.ones(2, np.float32), 'w')
    w2 = numpy_helper.from_array(np.zeros(2, np.float32), 'w')
    save(out, [helper.make_node('Add', ['x', 'w'], ['y'], name='add_1')],
         [vi('x', [2])], [vi('y', [2])], [w1, w2])


def dup_input(out):
    save(out, [helper.make_node('Add', ['x', 'x'], ['y'], name='add_1')],
         [vi('x', [2]), vi('x', [3])], [vi('y', [2])])


def dup_output(out):
    nodes = [helper.make_node('Relu', ['x'], ['t'], name='relu_1'),
             helper.make_node('Neg', ['x'], ['t'], name='neg_1'),
             helper.make_node('Add', ['t', 't'], ['y'], name='add_1')]
    save(out, nodes, [vi('x', [2])], [vi('y', [2])])


def output_is_input(out):
    nodes = [helper.make_node('Relu', ['x'], ['x'], name='relu_1'),
             helper.make_node('Neg', ['x'], ['y'], name='neg_1')]
    save(out, nodes, [vi('x', [2])], [vi('y', [2])])


def output_is_init(out):
    w = numpy_helper.from_array(np.ones(2, np.float32), 'w')
    nodes = [helper.make_node('Relu', ['x'], ['w'], name='relu_1'),
             helper.make_node('Add', ['x', 'w'], ['y'], name='add_1')]
    save(out, nodes, [vi('x', [2])], [vi('y', [2])], [w])


# ---- attributes ----

def conv(out, x_dims, w_dims, **attrs):
    w = numpy_helper.from_array(np.ones(w_dims, np.float32), 'w')
    save(out, [helper.make_node('Conv', ['x', 'w'], ['y'], name='conv_1',
                                **attrs)],
         [vi('x', x_dims)], [vi('y', None)], [w])


def conv_kernel_big(out):
    conv(out, [1, 1, 4, 4], [1, 1, 5, 5])


def conv_stride0(out):
    conv(out, [1, 1, 4, 4], [1, 1, 3, 3], strides=[1, 0])


def conv_dilation0(out):
    conv(out, [1, 1, 4, 4], [1, 1, 3, 3], dilations=[0, 1])


def conv_group(out):
    conv(out, [1, 3, 4, 4], [4, 1, 3, 3], group=2)


def conv_group0(out):
    conv(out, [1, 3, 4, 4], [4, 3, 3, 3], group=0)


def pool(out, op, **attrs):
    save(out, [helper.make_node(op, ['x'], ['y'], name='pool_1', **attrs)],
         [vi('x', [1, 1, 4, 4])], [vi('y', None)])


def maxpool_big(out):
    pool(out, 'MaxPool', kernel_shape=[5, 5])


def avgpool_big(out):
    pool(out, 'AveragePool', kernel_shape=[3, 5], pads=[0, 0, 0, 0])


def maxpool_stride0(out):
    pool(out, 'MaxPool', kernel_shape=[2, 2], strides=[0, 2])


def maxpool_dilation0(out):
    pool(out, 'MaxPool', kernel_shape=[2, 2], dilations=[1, 0])


def maxpool_kernel0(out):
    pool(out, 'MaxPool', kernel_shape=[0, 2])


if __name__ == '__main__':
    for kind in sys.argv[2:]:
        globals()[kind](os.path.join(sys.argv[1], kind + '.onnx'))
