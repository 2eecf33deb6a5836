"""Constant folding against NumPy.

make OUT.onnx: writes a model whose constant parts the ONNX importer leaves
as ops: attention's 1/sqrt(d) from Shape -> Gather -> Cast -> Sqrt, and
ops on Constant nodes (Tanh, Pow, Transpose, Tile, ReduceSum, Floor, a
Cast to int32 and integer arithmetic).
check FILE.kir: reads the constants of the folded IR (printed with
--print-constants) and compares each folded one with NumPy's value.
"""
import re
import sys

import numpy as np

C = np.array([0.1, -0.7, 1.3, 2.9, -3.2, 0.05, 5.5, -1.0], np.float32)
M = np.arange(8, dtype=np.float32).reshape(2, 4) * 0.37 - 1.1


def expected():
    r = np.sqrt(np.float32(8))
    p = np.power(np.tanh(C), np.float32(2))
    mt = M.T.copy()
    tl = np.tile(C[:2], 3)
    rs = M.sum(axis=1, keepdims=True)
    fl = np.floor(C * np.float32(3))
    ci = (C * np.float32(10)).astype(np.int32)
    ia = ci * np.int32(3) - np.int32(7)
    return {'r': r, 'p': p, 'mt': mt, 'tl': tl, 'rs': rs, 'fl': fl,
            'ia': ia}


def make(path):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    def const(name, arr):
        return helper.make_node('Constant', [], [name],
                                value=numpy_helper.from_array(arr, name))

    nodes = [
        helper.make_node('Shape', ['x'], ['s']),
        const('k2', np.array(2, np.int64)),
        helper.make_node('Gather', ['s', 'k2'], ['d']),
        helper.make_node('Cast', ['d'], ['df'], to=TensorProto.FLOAT),
        helper.make_node('Sqrt', ['df'], ['r']),
        helper.make_node('Div', ['x', 'r'], ['y1']),
        const('c', C),
        const('two', np.array(2, np.float32)),
        helper.make_node('Tanh', ['c'], ['t']),
        helper.make_node('Pow', ['t', 'two'], ['p']),
        helper.make_node('Add', ['y1', 'p'], ['y']),
        const('m', M),
        helper.make_node('Transpose', ['m'], ['mt'], perm=[1, 0]),
        const('c2', C[:2].copy()),
        const('reps', np.array([3], np.int64)),
        helper.make_node('Tile', ['c2', 'reps'], ['tl']),
        const('ax', np.array([1], np.int64)),
        helper.make_node('ReduceSum', ['m', 'ax'], ['rs'], keepdims=1),
        const('three', np.array(3, np.float32)),
        helper.make_node('Mul', ['c', 'three'], ['c3']),
        helper.make_node('Floor', ['c3'], ['fl']),
        const('ten', np.array(10, np.float32)),
        helper.make_node('Mul', ['c', 'ten'], ['c10']),
        helper.make_node('Cast', ['c10'], ['ci'], to=TensorProto.INT32),
        const('i3', np.array(3, np.int32)),
        const('i7', np.array(7, np.int32)),
        helper.make_node('Mul', ['ci', 'i3'], ['ci3']),
        helper.make_node('Sub', ['ci3', 'i7'], ['ia']),
    ]
    outs = [('y', TensorProto.FLOAT, [2, 3, 8]),
            ('mt', TensorProto.FLOAT, [4, 2]),
            ('tl', TensorProto.FLOAT, [6]),
            ('rs', TensorProto.FLOAT, [2, 1]),
            ('fl', TensorProto.FLOAT, [8]),
            ('ia', TensorProto.INT32, [8])]
    graph = helper.make_graph(
        nodes, 'fold',
        [helper.make_tensor_value_info('x', TensorProto.FLOAT, [2, 3, 8])],
        [helper.make_tensor_value_info(n, t, s) for n, t, s in outs])
    model = helper.make_model(graph,
                              opset_imports=[helper.make_opsetid('', 17)])
    onnx.save(model, path)


def check(path):
    text = open(path).read()
    consts = {}
    for m in re.finditer(r'^\s*const \$(\S+): (\w+)\[([\d,]*)\] = \[(.*?)\]',
                         text, re.M):
        name, dt, dims, data = m.groups()
        shape = [int(d) for d in dims.split(',')] if dims else []
        vals = [float(v) for v in data.split(',')]
        consts[name] = (dt, np.array(vals).reshape(shape))
    bad = 0
    for name, want in expected().items():
        if name not in consts:
            print(f'{name}: NOT FOLDED')
            bad += 1
            continue
        dt, got = consts[name]
        got = got.astype(np.asarray(want).dtype)
        # tanh and the f32 sum may differ from NumPy's in the last bits
        rtol = 1e-6 if name in ('p', 'rs') else 0
        same = got.shape == np.shape(want) and np.allclose(
            got, want, rtol=rtol, atol=0)
        print(f'{name}: {dt}{list(got.shape)} {"OK" if same else "NOT OK"}')
        if not same:
            print('  got ', got.ravel()[:8])
            print('  want', np.ravel(want)[:8])
            bad += 1
    sys.exit(1 if bad else 0)


if __name__ == '__main__':
    {'make': make, 'check': check}[sys.argv[1]](sys.argv[2])
