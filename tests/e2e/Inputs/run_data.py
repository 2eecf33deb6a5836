"""Inputs and expected outputs for the run_*.test tests of `kiln run`.

    run_data.py DIR

writes into DIR, for Inputs/run_model.kir (sum = a + b, pos = relu(sum),
nt = transpose(n)), computed here with NumPy:
  a.npy b.npy n.npy               the inputs
  a.pb b.pb n.pb                  the same as ONNX TensorProtos, named
  b_noname.pb                     b with no stored name
  sum.npy pos.npy nt.npy          the expected outputs
  sum.pb pos.pb nt.pb             the same as TensorProtos
  sum_off.npy                     sum with two elements off by 1e-2
  sum_close.npy                   sum with one element off by 5e-4 (within
                                  rtol 1e-3 only where |sum| > 0.5)
  nt_off.npy                      nt with one element off by one
  sum_f64.npy sum_short.npy       sum as f64, and with the wrong shape
  special_a.npy special_sum.npy   a and sum with NaN and +-inf in them
  relu.onnx                       y = Relu(x), x: f32[N,3] with N left open
  x4.npy relu4.npy                an x with N = 4 and its Relu
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def save_pb(path, x, name):
    with open(path, 'wb') as f:
        f.write(numpy_helper.from_array(x, name).SerializeToString())


def main():
    d = sys.argv[1]
    rng = np.random.default_rng(7)
    a = rng.standard_normal((2, 3)).astype(np.float32)
    b = rng.standard_normal((2, 3)).astype(np.float32)
    n = np.arange(6, dtype=np.int64).reshape(3, 2) * 1000003 - 2**40
    ref = {'sum': a + b, 'pos': np.maximum(a + b, 0), 'nt': n.T.copy()}
    for name, x in [('a', a), ('b', b), ('n', n)]:
        np.save(os.path.join(d, name + '.npy'), x)
        save_pb(os.path.join(d, name + '.pb'), x, name)
    save_pb(os.path.join(d, 'b_noname.pb'), b, '')
    for name, x in ref.items():
        np.save(os.path.join(d, name + '.npy'), x)
        save_pb(os.path.join(d, name + '.pb'), x, name)
    off = ref['sum'].copy()
    off[0, 1] += 1e-2
    off[1, 2] -= 1e-2
    np.save(os.path.join(d, 'sum_off.npy'), off)
    close = ref['sum'].copy()
    k = np.unravel_index(np.argmax(np.abs(close)), close.shape)
    close[k] += np.float32(5e-4 * abs(close[k]))
    np.save(os.path.join(d, 'sum_close.npy'), close)
    nt = ref['nt'].copy()
    nt[1, 0] += 1
    np.save(os.path.join(d, 'nt_off.npy'), nt)
    np.save(os.path.join(d, 'sum_f64.npy'), ref['sum'].astype(np.float64))
    np.save(os.path.join(d, 'sum_short.npy'), ref['sum'][:, :2].copy())
    sa = a.copy()
    sa[0, 0], sa[0, 1], sa[1, 0] = np.nan, np.inf, -np.inf
    np.save(os.path.join(d, 'special_a.npy'), sa)
    np.save(os.path.join(d, 'special_sum.npy'), sa + b)

    relu_model(os.path.join(d, 'relu.onnx'))
    x4 = rng.standard_normal((4, 3)).astype(np.float32)
    np.save(os.path.join(d, 'x4.npy'), x4)
    np.save(os.path.join(d, 'relu4.npy'), np.maximum(x4, 0))


def relu_model(path):
    x = helper.make_tensor_value_info('x', TensorProto.FLOAT, ['N', 3])
    y = helper.make_tensor_value_info('y', TensorProto.FLOAT, ['N', 3])
    g = helper.make_graph([helper.make_node('Relu', ['x'], ['y'])], 'relu',
                          [x], [y])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid('', 13)])
    m.ir_version = 8
    onnx.save(m, path)


main()
