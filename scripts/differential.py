#!/usr/bin/python3
"""Checks that two builds of each model give the same results.

    differential.py --kiln PATH [--base FLAGS] [--other FLAGS]
                    [--examples DIR] [--onnx-data DIR]
                    [--expectations FILE] [--sample N] [--filter REGEX]
                    [--rtol R] [--atol A] [--cache DIR] [-j N]

Each model runs twice through `kiln run` on the same inputs: with the
--base flags (default -O0) and --save DIR, which writes its outputs as
.npy, then with the --other flags (default -O2) and --expect for each of
them, so every output must agree within rtol (default 1e-5) and atol
(default 1e-6, for values near zero).  The defaults compare optimization
levels; --base=--backend=c --other=--backend=llvm compares the backends.

--examples DIR: every DIR/*.kiln, each model of a file in turn (--model),
on random inputs shaped from `kiln ir --format=json`: normal floats,
integers in [0, 2) (valid indices for any embedding or gather), random
booleans; the seed is fixed.

--onnx-data DIR: the ONNX backend test cases (DIR/node, simple,
pytorch-converted, pytorch-operator) that kiln passes, that is, those
tests/onnx/expectations.txt does not list as failures, on their own
inputs.  --sample N takes every Nth case of node/ (in sorted order) to
bound the run time: node/ holds one-op models, where the passes have
least to do; the whole-model suites always run in full.

Prints one line per failing model and the last line `N passed, M failed`;
exits 1 when M > 0.  Python 3 with NumPy.
"""
import argparse
import concurrent.futures
import glob
import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def conformance_module():
    """scripts/onnx-conformance.py, for its test list and expectations."""
    path = os.path.join(HERE, 'onnx-conformance.py')
    spec = importlib.util.spec_from_file_location('onnx_conformance', path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def run(args, cmd):
    env = dict(os.environ, KILN_CACHE=args.cache)
    p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, errors='replace',
                       timeout=600)
    return p.returncode, p.stdout


def compare(args, name, model, inputs, extra, tmp):
    """Runs model with the base flags (saving its outputs) and with the
    other flags (expecting them); returns None or what went wrong."""
    saved = os.path.join(tmp, 'base')
    base = [args.kiln, 'run', model] + extra
    for f in inputs:
        base += ['--input', f]
    rc, out = run(args, base + args.base.split() + ['--save', saved])
    if rc != 0:
        return '%s: %s run failed:\n%s' % (name, args.base, out)
    outs = sorted(glob.glob(os.path.join(saved, 'output_*.npy')),
                  key=lambda f: int(re.search(r'_(\d+)\.npy$', f).group(1)))
    if not outs:
        return '%s: %s saved no outputs' % (name, args.base)
    cmd = base + args.other.split() + ['--rtol', repr(args.rtol),
                                       '--atol', repr(args.atol)]
    for f in outs:
        cmd += ['--expect', f]
    rc, out = run(args, cmd)
    if rc != 0:
        return '%s: %s differs from %s:\n%s' % (name, args.other,
                                                 args.base, out)
    return None


def random_inputs(graph, tmp, rng):
    files = []
    types = {v['name']: v for v in graph['values']}
    for name in graph['inputs']:
        v = types[name]
        shape, dt = v['shape'], v['dtype']
        if dt in ('f32', 'f64'):
            x = rng.standard_normal(shape).astype(np.float32 if dt == 'f32'
                                                  else np.float64)
        elif dt == 'bool':
            x = rng.integers(0, 2, shape).astype(bool)
        else:
            x = rng.integers(0, 2, shape).astype(
                {'i64': np.int64, 'i32': np.int32, 'i8': np.int8,
                 'u8': np.uint8}[dt])
        path = os.path.join(tmp, 'in_%d.npy' % len(files))
        np.save(path, x)
        files.append('%s=%s' % (name, path))
    return files


def example_cases(args):
    """(name, function) per model of each example file."""
    cases = []
    for path in sorted(glob.glob(os.path.join(args.examples, '*.kiln'))):
        p = subprocess.run([args.kiln, 'ir', path, '--format=json'],
                           stdout=subprocess.PIPE, text=True, check=True)
        graphs = json.loads(p.stdout)['graphs']
        for g in graphs:
            extra = ['--model', g['name']] if len(graphs) > 1 else []
            name = os.path.basename(path) + ('@' + g['name'] if extra else '')
            cases.append((name, path, g, extra))
    return cases


def check_example(args, case):
    name, path, graph, extra = case
    with tempfile.TemporaryDirectory() as tmp:
        rng = np.random.default_rng(0)
        return compare(args, name, path, random_inputs(graph, tmp, rng),
                       extra, tmp)


def check_onnx(args, conf, test):
    d = os.path.join(args.onnx_data, test)
    for s in sorted(x for x in os.listdir(d)
                    if x.startswith('test_data_set_')):
        files = os.listdir(os.path.join(d, s))
        inputs = [os.path.join(d, s, f) for f in conf.numbered(files, 'input')]
        with tempfile.TemporaryDirectory() as tmp:
            err = compare(args, test + '/' + s,
                          os.path.join(d, 'model.onnx'), inputs, [], tmp)
        if err:
            return err
    return None


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--kiln', required=True)
    ap.add_argument('--base', default='-O0')
    ap.add_argument('--other', default='-O2')
    ap.add_argument('--examples')
    ap.add_argument('--onnx-data')
    ap.add_argument('--expectations',
                    default=os.path.join(HERE, '..', 'tests', 'onnx',
                                         'expectations.txt'))
    ap.add_argument('--sample', type=int, default=1)
    ap.add_argument('--filter')
    ap.add_argument('--rtol', type=float, default=1e-5)
    ap.add_argument('--atol', type=float, default=1e-6)
    ap.add_argument('--cache')
    ap.add_argument('-j', type=int, default=os.cpu_count() or 1)
    args = ap.parse_args()
    if not args.examples and not args.onnx_data:
        ap.error('give --examples DIR, --onnx-data DIR or both')
    if args.sample < 1:
        ap.error('--sample needs a positive integer')
    return args


def main():
    args = parse_args()
    own_cache = None
    if not args.cache:
        own_cache = tempfile.TemporaryDirectory()
        args.cache = own_cache.name
    jobs = []
    if args.examples:
        jobs += [(check_example, (args, c)) for c in example_cases(args)]
    if args.onnx_data:
        conf = conformance_module()
        exp = conf.read_expectations(args.expectations)
        pattern = re.compile(args.filter) if args.filter else None
        tests = [t for t in conf.find_tests(args.onnx_data, pattern)
                 if t not in exp.fail]
        node = [t for t in tests if t.startswith('node/')]
        tests = node[::args.sample] + [t for t in tests if t not in node]
        jobs += [(check_onnx, (args, conf, t)) for t in tests]
    failed = 0
    with concurrent.futures.ThreadPoolExecutor(args.j) as pool:
        for err in pool.map(lambda job: job[0](*job[1]), jobs):
            if err:
                failed += 1
                print('FAIL: ' + err.rstrip())
    print('%d passed, %d failed' % (len(jobs) - failed, failed))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
