#!/usr/bin/python3
"""Runs the ONNX backend test data (libonnx-testdata) through `kiln run`.

    onnx-conformance.py --kiln PATH [--data DIR] [--expectations FILE]
                        [--report FILE] [-j N] [--filter REGEX] [--update]
                        [--cache DIR] [--timeout SECONDS] [--flags FLAGS]

Every test case directory under node/, simple/, pytorch-converted/ and
pytorch-operator/ holds model.onnx and test_data_set_*/ with input_K.pb and
output_K.pb.  Each data set becomes one command,

    kiln run model.onnx --input input_0.pb ... --expect output_0.pb ...
             --rtol R --atol A

(with --flags' words added, such as --backend=c), and a test passes when
all of its data sets do.  The expectations file
lists what kiln does not support yet, so the suite stays green while it
grows (docs/testing.md gives the file's syntax).  A listed test that fails
is skipped; an unlisted failure or a listed pass is a failure.  The last
line printed is `N passed, M failed, K skipped`; the exit status is 1 when
M > 0.  Python 3 standard library only.
"""
import argparse
import concurrent.futures
import os
import re
import subprocess
import sys
import tempfile
import time

SUITES = ['node', 'simple', 'pytorch-converted', 'pytorch-operator']
DEFAULT_DATA = '/usr/share/libonnx-testdata/data'
DEFAULT_RTOL, DEFAULT_ATOL = 1e-3, 1e-5
HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_EXPECTATIONS = os.path.join(HERE, '..', 'tests', 'onnx',
                                    'expectations.txt')


class Expectations:
    """The expectations file: header comments, failures and tolerances.

    Lines are `<suite>/<test>  <reason>` (an expected failure) or
    `<suite>/<test>  tolerance rtol=R atol=A  <reason>` (a test that
    passes with its own tolerances; either bound may be left out).
    """

    def __init__(self):
        self.header = []      # leading comment lines, kept by --update
        self.fail = {}        # test -> reason
        self.tol = {}         # test -> (rtol, atol, line as written)


def parse_tolerance(words, where):
    tol = {'rtol': DEFAULT_RTOL, 'atol': DEFAULT_ATOL}
    k = 1
    while k < len(words) and '=' in words[k]:
        key, _, val = words[k].partition('=')
        if key not in tol:
            sys.exit('%s: unknown tolerance %r (rtol or atol)' % (where, key))
        try:
            tol[key] = float(val)
        except ValueError:
            sys.exit('%s: %s needs a number, got %r' % (where, key, val))
        if not tol[key] >= 0:
            sys.exit('%s: %s must be >= 0' % (where, key))
        k += 1
    if k == 1:
        sys.exit('%s: tolerance needs rtol=R and/or atol=A' % where)
    return tol['rtol'], tol['atol'], ' '.join(words[k:])


def read_expectations(path):
    e = Expectations()
    if not os.path.exists(path):
        return e
    in_header = True
    with open(path, encoding='utf-8') as f:
        for num, line in enumerate(f, 1):
            line = line.rstrip('\n')
            where = '%s:%d' % (path, num)
            if line.startswith('#') or not line.strip():
                if in_header:
                    e.header.append(line)
                continue
            in_header = False
            words = line.split()
            test, rest = words[0], words[1:]
            if test.count('/') != 1 or test.split('/')[0] not in SUITES:
                sys.exit('%s: %r is not <suite>/<test> with a suite of %s'
                         % (where, test, ', '.join(SUITES)))
            # A test may have a tolerance line and a failure line.
            if rest and rest[0] == 'tolerance':
                rtol, atol, reason = parse_tolerance(rest, where)
                if not reason:
                    sys.exit('%s: a tolerance needs a reason after it' % where)
                if test in e.tol:
                    sys.exit('%s: %s has two tolerances' % (where, test))
                e.tol[test] = (rtol, atol, line)
            elif not rest:
                sys.exit('%s: %s needs a reason' % (where, test))
            elif test in e.fail:
                sys.exit('%s: %s is listed twice' % (where, test))
            else:
                e.fail[test] = ' '.join(rest)
    return e


def find_tests(data, pattern):
    tests = []
    for suite in SUITES:
        d = os.path.join(data, suite)
        if not os.path.isdir(d):
            continue
        for name in sorted(os.listdir(d)):
            test = suite + '/' + name
            if os.path.isdir(os.path.join(d, name)) and \
                    (not pattern or pattern.search(test)):
                tests.append(test)
    return tests


def numbered(files, prefix):
    """prefix_K.pb files in the order of K (input_10 after input_9)."""
    keyed = []
    for f in files:
        m = re.fullmatch(re.escape(prefix) + r'_(\d+)\.pb', f)
        if m:
            keyed.append((int(m.group(1)), f))
    return [f for _, f in sorted(keyed)]


def first_error(text):
    """The line that best says why a run failed, with the note that
    follows it, if any (kiln names an unsupported op in a note)."""
    lines = [l.strip() for l in text.splitlines() if l.strip()]
    for pat in ('error:', 'MISMATCH', 'missing'):
        for i, l in enumerate(lines):
            if pat not in l:
                continue
            if i + 1 < len(lines) and 'note:' in lines[i + 1]:
                l += '; ' + lines[i + 1].split('note:', 1)[1].strip()
            return l
    return lines[0] if lines else 'failed with no output'


def run_case(args, test, tol):
    """Runs every data set of one test; returns (ok, seconds, error)."""
    d = os.path.join(args.data, test)
    model = os.path.join(d, 'model.onnx')
    sets = sorted(s for s in os.listdir(d) if s.startswith('test_data_set_'))
    t0 = time.monotonic()
    if not os.path.exists(model) or not sets:
        return False, 0.0, 'no model.onnx or no test_data_set_*'
    env = dict(os.environ, KILN_CACHE=args.cache)
    for s in sets:
        files = os.listdir(os.path.join(d, s))
        cmd = [args.kiln, 'run', model]
        for f in numbered(files, 'input'):
            cmd += ['--input', os.path.join(d, s, f)]
        for f in numbered(files, 'output'):
            cmd += ['--expect', os.path.join(d, s, f)]
        cmd += ['--rtol', repr(tol[0]), '--atol', repr(tol[1])]
        cmd += args.flags.split()
        try:
            p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True,
                               errors='replace', timeout=args.timeout)
        except subprocess.TimeoutExpired:
            return False, time.monotonic() - t0, \
                '%s: timed out after %g s' % (s, args.timeout)
        if p.returncode != 0:
            err = first_error(p.stdout).replace(d + '/', '')
            if p.returncode < 0:
                err = 'killed by signal %d: %s' % (-p.returncode, err)
            return False, time.monotonic() - t0, err
    return True, time.monotonic() - t0, ''


def classify(test, ok, exp):
    listed = test in exp.fail
    if ok:
        return 'unexpected-pass' if listed else 'pass'
    return 'expected-fail' if listed else 'unexpected-fail'


def write_atomic(path, text):
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=d, prefix='.tmp-')
    with os.fdopen(fd, 'w', encoding='utf-8') as f:
        f.write(text)
    os.replace(tmp, path)


def write_report(path, results):
    lines = ['%s\t%s\t%.2f\t%s\n' % (t, st, sec, err)
             for t, (st, sec, err) in sorted(results.items())]
    write_atomic(path, ''.join(lines))


def update_expectations(path, exp, results):
    """Failures of this run become entries (old reasons kept); entries of
    tests this run did not cover stay as they were."""
    fail = {t: r for t, r in exp.fail.items() if t not in results}
    for t, (st, _, err) in results.items():
        if st in ('expected-fail', 'unexpected-fail'):
            fail[t] = exp.fail.get(t) or err.replace('kiln: error: ', '')
    body = [exp.tol[t][2] for t in sorted(exp.tol)]
    width = max([len(t) for t in fail] + [0]) + 2
    body += ['%-*s%s' % (width, t, ' '.join(fail[t].split()))
             for t in sorted(fail)]
    write_atomic(path, '\n'.join(exp.header + body) + '\n')


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--kiln', required=True, help='the kiln driver')
    ap.add_argument('--data', default=DEFAULT_DATA,
                    help='the test data root (default %(default)s)')
    ap.add_argument('--expectations', default=DEFAULT_EXPECTATIONS,
                    help='tests expected to fail (default '
                    'tests/onnx/expectations.txt)')
    ap.add_argument('--report', help='write one line per test here')
    ap.add_argument('-j', type=int, default=2, dest='jobs',
                    help='tests run at once (default %(default)s)')
    ap.add_argument('--filter', help='only tests whose suite/name matches')
    ap.add_argument('--update', action='store_true',
                    help='rewrite the expectations file from the results')
    ap.add_argument('--cache', help='KILN_CACHE for the runs (default: a '
                    'temporary directory)')
    ap.add_argument('--flags', default='',
                    help='more kiln run flags, e.g. --flags=--backend=c')
    ap.add_argument('--timeout', type=float, default=600,
                    help='seconds per kiln run (default %(default)s)')
    args = ap.parse_args()
    if args.jobs < 1:
        ap.error('-j needs a positive count')
    args.kiln = os.path.abspath(args.kiln)
    args.data = os.path.abspath(args.data)
    return args


def run_all(args, tests, exp):
    results = {}
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        futures = {}
        for t in tests:
            tol = exp.tol.get(t, (DEFAULT_RTOL, DEFAULT_ATOL))
            futures[pool.submit(run_case, args, t, tol)] = t
        for f in concurrent.futures.as_completed(futures):
            t = futures[f]
            ok, sec, err = f.result()
            st = classify(t, ok, exp)
            results[t] = (st, sec, err)
            if st == 'unexpected-fail':
                print('FAIL %s: %s' % (t, err), flush=True)
            elif st == 'unexpected-pass':
                print('UNEXPECTED PASS %s: remove it from the expectations '
                      'file' % t, flush=True)
    return results


def main():
    args = parse_args()
    exp = read_expectations(args.expectations)
    if not any(os.path.isdir(os.path.join(args.data, s)) for s in SUITES):
        print('ONNX test data not found in %s (install Debian\'s '
              'libonnx-testdata); no conformance tests run' % args.data)
        print('0 passed, 0 failed, 0 skipped')
        return 0
    if not os.access(args.kiln, os.X_OK):
        sys.exit('error: --kiln %s is not an executable' % args.kiln)
    pattern = re.compile(args.filter) if args.filter else None
    tests = find_tests(args.data, pattern)
    for t in sorted(set(exp.fail) | set(exp.tol)):
        if not os.path.isdir(os.path.join(args.data, t)):
            print('warning: %s: listed in %s but not in %s'
                  % (t, args.expectations, args.data), file=sys.stderr)
    if args.cache:
        os.makedirs(args.cache, exist_ok=True)
        results = run_all(args, tests, exp)
    else:
        with tempfile.TemporaryDirectory(prefix='kiln-conformance-') as c:
            args.cache = c
            results = run_all(args, tests, exp)
    if args.report:
        write_report(args.report, results)
    if args.update:
        update_expectations(args.expectations, exp, results)
    count = {s: 0 for s in ('pass', 'expected-fail', 'unexpected-fail',
                            'unexpected-pass')}
    for st, _, _ in results.values():
        count[st] += 1
    failed = count['unexpected-fail'] + count['unexpected-pass']
    print('%d passed, %d failed, %d skipped'
          % (count['pass'], failed, count['expected-fail']))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
