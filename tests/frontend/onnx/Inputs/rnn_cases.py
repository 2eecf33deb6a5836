"""ONNX LSTM, GRU and RNN through kiln, against independent references.

  rnn_cases.py data KILN DIR       the ONNX backend node tests of these ops
                                   (Debian's libonnx-testdata), by kiln run
  rnn_cases.py reference KILN DIR  models made here (both directions,
                                   initial states, layout 1, clip, ...)
                                   against the NumPy reference below
  rnn_cases.py tiny OUT.onnx       a small LSTM for the IR FileCheck test
  rnn_cases.py bad KIND OUT.onnx   an LSTM kiln must reject (see BAD)

Prints PASS/FAIL per case and a summary; exits 1 on any failure.  kiln
run compares with rtol 1e-3, atol 1e-5.
"""
import os
import subprocess
import sys

import numpy as np
import onnx
from onnx import helper, numpy_helper, TensorProto

DATA = '/usr/share/libonnx-testdata/data/node'
DATA_TESTS = ['test_gru_batchwise', 'test_gru_defaults',
              'test_gru_seq_length', 'test_gru_with_initial_bias',
              'test_lstm_batchwise', 'test_lstm_defaults',
              'test_lstm_with_initial_bias', 'test_lstm_with_peepholes',
              'test_rnn_seq_length', 'test_simple_rnn_batchwise',
              'test_simple_rnn_defaults', 'test_simple_rnn_with_initial_bias']


def run_kiln(kiln, model, inputs, expects):
    """kiln run; returns an error text or None."""
    cmd = [kiln, 'run', model]
    for i in inputs:
        cmd += ['--input', i]
    for e in expects:
        cmd += ['--expect', e]
    p = subprocess.run(cmd, capture_output=True, text=True)
    out = p.stdout + p.stderr
    if p.returncode != 0:
        return out.strip().splitlines()[-1] if out.strip() else 'failed'
    if out.count(': ok') != len(expects):
        return 'not every output compared: ' + out.strip()
    return None


def report(results):
    for name, err in results:
        print('PASS ' + name if err is None else 'FAIL %s: %s' % (name, err))
    bad = sum(err is not None for _, err in results)
    print('%d passed, %d failed' % (len(results) - bad, bad))
    sys.exit(1 if bad else 0)


def data_cases(kiln, tmp):
    """A node test's inputs that the model needs at build time
    (sequence_lens) become initializers: kiln's shapes are static."""
    if not os.path.isdir(DATA):
        print('SKIP: %s not found (install Debian libonnx-testdata)' % DATA)
        return
    results = []
    for t in DATA_TESTS:
        d = os.path.join(DATA, t)
        m = onnx.load(os.path.join(d, 'model.onnx'))
        sd = os.path.join(d, 'test_data_set_0')
        inputs, expects = [], []
        for f in sorted(os.listdir(sd)):
            path = os.path.join(sd, f)
            if f.startswith('output_'):
                expects.append(path)
                continue
            tp = onnx.TensorProto()
            with open(path, 'rb') as fh:
                tp.ParseFromString(fh.read())
            if tp.name == 'sequence_lens':
                m.graph.initializer.append(tp)
                keep = [i for i in m.graph.input if i.name != tp.name]
                del m.graph.input[:]
                m.graph.input.extend(keep)
            else:
                inputs.append(path)
        model = os.path.join(d, 'model.onnx')
        if len(m.graph.initializer):
            model = os.path.join(tmp, t + '.onnx')
            onnx.save(m, model)
        results.append((t, run_kiln(kiln, model, inputs, expects)))
    report(results)


# ---- the NumPy reference: the ONNX docs' equations, step by step ----

def act(name, x, alpha, beta):
    if name == 'Sigmoid':
        return 1 / (1 + np.exp(-x))
    if name == 'Tanh':
        return np.tanh(x)
    if name == 'Relu':
        return np.maximum(x, 0)
    if name == 'LeakyRelu':
        return np.where(x >= 0, x, alpha * x)
    if name == 'HardSigmoid':
        return np.clip(alpha * x + beta, 0, 1)
    raise ValueError(name)


def reference(op, X, W, R, B, h0, c0, P, a):
    """Y, Y_h, Y_c of op with attributes a (layout 0 shapes inside)."""
    if a.get('layout', 0):
        X = X.transpose(1, 0, 2)
        h0, c0 = [None if s is None else s.transpose(1, 0, 2)
                  for s in (h0, c0)]
    T, N, _ = X.shape
    D, H = W.shape[0], a['hidden_size']
    G = {'RNN': 1, 'GRU': 3, 'LSTM': 4}[op]
    acts = a['acts']            # [(name, alpha, beta)] * per direction
    na = len(acts) // D
    cl = a.get('clip')
    clip = (lambda v: np.clip(v, -cl, cl)) if cl else (lambda v: v)
    Y = np.zeros((T, D, N, H), np.float32)
    Yh = np.zeros((D, N, H), np.float32)
    Yc = np.zeros((D, N, H), np.float32)
    for d in range(D):
        fs = [lambda v, s=s: act(s[0], v, s[1], s[2])
              for s in acts[d * na:(d + 1) * na]]
        f = lambda v: fs[0](clip(v))
        g = lambda v: fs[1](clip(v))
        b = B[d] if B is not None else np.zeros(2 * G * H, np.float32)
        wb, rb = np.split(b[:G * H], G), np.split(b[G * H:], G)
        w, r = np.split(W[d], G), np.split(R[d], G)
        h = h0[d] if h0 is not None else np.zeros((N, H), np.float32)
        c = c0[d] if c0 is not None else np.zeros((N, H), np.float32)
        rev = a.get('direction') == 'reverse' or d == 1
        for t in (reversed(range(T)) if rev else range(T)):
            x = X[t]
            lin = lambda k, hh=None: (x @ w[k].T + (h if hh is None else hh)
                                      @ r[k].T + wb[k] + rb[k])
            if op == 'RNN':
                h = f(lin(0))
            elif op == 'GRU':
                z, rr = f(lin(0)), f(lin(1))
                if a.get('linear_before_reset'):
                    hh = g(x @ w[2].T + rr * (h @ r[2].T + rb[2]) + wb[2])
                else:
                    hh = g(lin(2, rr * h))
                h = (1 - z) * hh + z * h
            else:
                p = np.split(P[d], 3) if P is not None else [0, 0, 0]
                i = f(lin(0) + p[0] * c)
                fg = f(lin(2) + p[2] * c)
                c = fg * c + i * g(lin(3))
                o = f(lin(1) + p[1] * c)
                h = o * fs[2](c)
            Y[t, d] = h
        Yh[d], Yc[d] = h, c
    if a.get('layout', 0):
        return Y.transpose(2, 0, 1, 3), Yh.transpose(1, 0, 2), \
            Yc.transpose(1, 0, 2)
    return Y, Yh, Yc


CASES = [
    # name, op, T, N, F, H, attributes, optional inputs given
    ('lstm_bidirectional', 'LSTM', 4, 2, 3, 5,
     {'direction': 'bidirectional'}, 'B h0 c0 P'),
    ('lstm_reverse', 'LSTM', 3, 2, 3, 4, {'direction': 'reverse'}, 'B c0'),
    ('lstm_layout1_states', 'LSTM', 3, 2, 4, 3, {'layout': 1}, 'B h0 c0 P'),
    ('lstm_clip', 'LSTM', 5, 1, 2, 3, {'clip': 0.5}, 'B'),
    ('lstm_activations', 'LSTM', 3, 2, 2, 3,
     {'acts': [('HardSigmoid', 0.3, 0.4), ('LeakyRelu', 0.2, None),
               ('Relu', None, None)]}, 'B'),
    ('lstm_40_steps', 'LSTM', 40, 1, 2, 2, {}, ''),
    ('gru_bidirectional_lbr', 'GRU', 4, 3, 3, 4,
     {'direction': 'bidirectional', 'linear_before_reset': 1}, 'B h0'),
    ('gru_reverse_layout1', 'GRU', 3, 2, 2, 3,
     {'direction': 'reverse', 'layout': 1}, 'B h0'),
    ('gru_clip_relu', 'GRU', 3, 2, 3, 3,
     {'clip': 0.8, 'acts': [('Sigmoid', None, None), ('Relu', None, None)]},
     'B'),
    ('rnn_bidirectional', 'RNN', 5, 2, 3, 4,
     {'direction': 'bidirectional',
      'acts': [('Tanh', None, None), ('Relu', None, None)]}, 'B h0'),
    ('rnn_layout1', 'RNN', 3, 2, 3, 2, {'layout': 1}, 'h0'),
]


def make_case(name, op, T, N, F, H, a, opt, rng):
    """The model (weights as initializers), X and the expected outputs."""
    D = 2 if a.get('direction') == 'bidirectional' else 1
    G = {'RNN': 1, 'GRU': 3, 'LSTM': 4}[op]
    defaults = {'RNN': ['Tanh'], 'GRU': ['Sigmoid', 'Tanh'],
                'LSTM': ['Sigmoid', 'Tanh', 'Tanh']}[op]
    a = dict(a, hidden_size=H)
    if 'acts' not in a:
        a['acts'] = [(n, None, None) for n in defaults]
    if len(a['acts']) < len(defaults) * D:
        a['acts'] = a['acts'] * D
    bf = a.get('layout', 0)
    rnd = lambda *s: rng.uniform(-1, 1, s).astype(np.float32)
    X = rnd(N, T, F) if bf else rnd(T, N, F)
    sdim = (N, D, H) if bf else (D, N, H)
    v = {'W': rnd(D, G * H, F), 'R': rnd(D, G * H, H),
         'B': rnd(D, 2 * G * H) if 'B' in opt.split() else None,
         'initial_h': rnd(*sdim) if 'h0' in opt.split() else None,
         'initial_c': rnd(*sdim) if 'c0' in opt.split() else None,
         'P': rnd(D, 3 * H) if 'P' in opt.split() else None}
    names = ['W', 'R', 'B', '', 'initial_h', 'initial_c', 'P']
    ins = ['X'] + [n if n and v[n] is not None else '' for n in names]
    while ins[-1] == '':
        ins.pop()
    attrs = {k: a[k] for k in ('hidden_size', 'direction', 'layout', 'clip',
                               'linear_before_reset') if k in a}
    attrs['activations'] = [n for n, _, _ in a['acts']]
    al = [x for _, x, _ in a['acts'] if x is not None]
    be = [x for _, _, x in a['acts'] if x is not None]
    if al:
        attrs['activation_alpha'] = al
    if be:
        attrs['activation_beta'] = be
    outs = ['Y', 'Y_h'] + (['Y_c'] if op == 'LSTM' else [])
    node = helper.make_node(op, ins, outs, **attrs)
    Y, Yh, Yc = reference(op, X, v['W'], v['R'], v['B'], v['initial_h'],
                          v['initial_c'], v['P'], a)
    exp = [Y, Yh, Yc][:len(outs)]
    graph = helper.make_graph(
        [node], name,
        [helper.make_tensor_value_info('X', TensorProto.FLOAT, X.shape)],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, e.shape)
         for o, e in zip(outs, exp)],
        [numpy_helper.from_array(x, n) for n, x in v.items()
         if x is not None])
    model = helper.make_model(graph, opset_imports=[
        helper.make_opsetid('', 14)])
    onnx.checker.check_model(model)
    return model, X, dict(zip(outs, exp))


def reference_cases(kiln, tmp):
    rng = np.random.default_rng(7)
    results = []
    for case in CASES:
        name = case[0]
        model, X, exp = make_case(*case, rng)
        mpath = os.path.join(tmp, name + '.onnx')
        onnx.save(model, mpath)
        np.save(os.path.join(tmp, name + '.X.npy'), X)
        expects = []
        for o, e in exp.items():
            np.save(os.path.join(tmp, '%s.%s.npy' % (name, o)), e)
            expects.append('%s=%s' % (o, os.path.join(tmp, '%s.%s.npy' %
                                                      (name, o))))
        results.append((name, run_kiln(kiln, mpath, ['X=' + os.path.join(
            tmp, name + '.X.npy')], expects)))
    report(results)


def tiny(out):
    """LSTM, T=2, N=1, F=2, H=1, forward, weights as initializers."""
    rng = np.random.default_rng(1)
    w = numpy_helper.from_array(rng.standard_normal((1, 4, 2)).astype(
        np.float32), 'W')
    r = numpy_helper.from_array(rng.standard_normal((1, 4, 1)).astype(
        np.float32), 'R')
    node = helper.make_node('LSTM', ['X', 'W', 'R'], ['Y', 'Y_h'],
                            name='lstm_1', hidden_size=1)
    graph = helper.make_graph(
        [node], 'g',
        [helper.make_tensor_value_info('X', TensorProto.FLOAT, [2, 1, 2])],
        [helper.make_tensor_value_info('Y', TensorProto.FLOAT, [2, 1, 1, 1]),
         helper.make_tensor_value_info('Y_h', TensorProto.FLOAT, [1, 1, 1])],
        [w, r])
    onnx.save(helper.make_model(graph, opset_imports=[
        helper.make_opsetid('', 14)]), out)


# Models kiln must reject, as changes to an LSTM with T=3, N=2, F=2, H=1.
BAD = {
    'short_sequence': dict(lens=[3, 2]),
    'lens_input': dict(lens_input=True),
    'activation': dict(attrs={'activations': ['Sigmoid', 'ScaledTanh',
                                              'Tanh']}),
    'input_forget': dict(attrs={'input_forget': 1}),
    'w_shape': dict(w_rows=3),
    'direction': dict(attrs={'direction': 'sideways'}),
}


def bad(kind, out):
    b = BAD[kind]
    ins = [helper.make_tensor_value_info('X', TensorProto.FLOAT, [3, 2, 2])]
    inits = [numpy_helper.from_array(np.ones((1, b.get('w_rows', 4), 2),
                                             np.float32), 'W'),
             numpy_helper.from_array(np.ones((1, 4, 1), np.float32), 'R')]
    if 'lens' in b:
        inits.append(numpy_helper.from_array(np.array(b['lens'], np.int32),
                                             'sequence_lens'))
    if b.get('lens_input'):
        ins.append(helper.make_tensor_value_info('sequence_lens',
                                                 TensorProto.INT32, [2]))
    lens = 'lens' in b or b.get('lens_input')
    node = helper.make_node(
        'LSTM', ['X', 'W', 'R', '', 'sequence_lens' if lens else ''],
        ['', 'Y_h'], name='lstm_1', hidden_size=1, **b.get('attrs', {}))
    graph = helper.make_graph(
        [node], 'g', ins,
        [helper.make_tensor_value_info('Y_h', TensorProto.FLOAT, [1, 2, 1])],
        inits)
    onnx.save(helper.make_model(graph, opset_imports=[
        helper.make_opsetid('', 14)]), out)


if __name__ == '__main__':
    if sys.argv[1] == 'data':
        data_cases(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == 'reference':
        reference_cases(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == 'bad':
        bad(sys.argv[2], sys.argv[3])
    else:
        tiny(sys.argv[2])
