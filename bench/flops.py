"""Floating-point operations of one inference of an ONNX model, for the
benchmark suite (bench/suite.py, docs/benchmarks.md).

usage: flops.py MODEL.onnx [...]     prints {"MODEL.onnx": {...}} as JSON

The rule: 2 flops per multiply-add of the ops that do nearly all the
arithmetic, and nothing for the rest (bias adds, activations, pooling,
normalization, softmax, data movement).  Shapes come from ONNX shape
inference on the model as saved (batch 1 for the suite's models).

  Conv          2 * N * Cout * Hout * Wout * (Cin / group) * kh * kw
                (any number of spatial dims: their product)
  ConvTranspose 2 * N * Cin * Hin * Win * (Cout / group) * kh * kw
  Gemm          2 * M * N * K
  MatMul        2 * M * N * K per matrix, times the broadcast batch
  LSTM          2 * dirs * T * B * 4H * (I + H)    (x W and h R per step)
  GRU           2 * dirs * T * B * 3H * (I + H)

This is the usual count (torchvision's and fvcore's tables count
multiply-adds; 2 flops each).  A model whose shapes shape inference
cannot settle gets an error for that op instead of a guess.
"""
import json
import math
import sys

import onnx
from onnx import shape_inference


def shapes_of(model):
    """name -> list of dims (ints) for every tensor with a static shape."""
    inferred = shape_inference.infer_shapes(model)
    g = inferred.graph
    out = {}
    for vi in list(g.input) + list(g.value_info) + list(g.output):
        dims = vi.type.tensor_type.shape.dim
        if all(d.HasField('dim_value') for d in dims):
            out[vi.name] = [d.dim_value for d in dims]
    for t in g.initializer:
        out[t.name] = list(t.dims)
    return out


def attr(node, name, default):
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def conv(node, s):
    y, w = s[node.output[0]], s[node.input[1]]
    # y: [N, Cout, spatial...], w: [Cout, Cin/group, k...]: each output
    # element sums Cin/group x k... products (the group is in w's shape)
    return 2 * math.prod(y) * math.prod(w[1:])


def conv_transpose(node, s):
    x, w = s[node.input[0]], s[node.input[1]]
    # x: [N, Cin, spatial...], w: [Cin, Cout/group, k...]: each input
    # element is multiplied into a Cout/group x k... window
    return 2 * math.prod(x) * math.prod(w[1:])


def gemm(node, s):
    a, b = s[node.input[0]], s[node.input[1]]
    m, k = (a[1], a[0]) if attr(node, 'transA', 0) else (a[0], a[1])
    n = b[0] if attr(node, 'transB', 0) else b[1]
    return 2 * m * n * k


def matmul(node, s):
    # each output element (the broadcast batch dims, M and N; a 1-D
    # operand's dim is dropped from it, as numpy does) sums K products
    k = s[node.input[0]][-1]
    return 2 * math.prod(s[node.output[0]]) * k


def recurrent(node, s, gates):
    x, w = s[node.input[0]], s[node.input[1]]
    # x: [T, B, I] (layout 0) or [B, T, I]; w: [dirs, gates*H, I]
    t, b = (x[1], x[0]) if attr(node, 'layout', 0) else (x[0], x[1])
    dirs, gh, i = w
    h = gh // gates
    return 2 * dirs * t * b * gates * h * (i + h)


COUNTERS = {
    'Conv': conv,
    'ConvTranspose': conv_transpose,
    'Gemm': gemm,
    'MatMul': matmul,
    'LSTM': lambda n, s: recurrent(n, s, 4),
    'GRU': lambda n, s: recurrent(n, s, 3),
}


def count(path):
    """{"flops": total, "by_op": {op: flops}, "errors": [...]} of one
    model; the graph's top level only (the suite's models have no
    subgraphs)."""
    model = onnx.load(path)
    s = shapes_of(model)
    by_op, errors = {}, []
    for node in model.graph.node:
        f = COUNTERS.get(node.op_type)
        if not f:
            continue
        try:
            n = f(node, s)
        except (KeyError, IndexError, ValueError) as e:
            errors.append(f'{node.op_type} {node.name!r}: no static shape '
                          f'for {e}')
            continue
        by_op[node.op_type] = by_op.get(node.op_type, 0) + n
    return {'flops': sum(by_op.values()), 'by_op': by_op, 'errors': errors}


def main():
    if len(sys.argv) < 2:
        print(__doc__.split('\n\n')[1], file=sys.stderr)
        return 2
    print(json.dumps({p: count(p) for p in sys.argv[1:]}, indent=1))
    return 0


if __name__ == '__main__':
    sys.exit(main())
