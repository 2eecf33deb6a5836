"""A stand-in for `kiln run`, so runner.test checks the conformance
runner's bookkeeping exactly, whatever the real kiln supports today.

    fake_kiln.py run MODEL --input F... --expect F... --rtol R --atol A

What it does is written in MODEL (one word): pass, mismatch, error,
crash (kills itself with SIGSEGV), or tol:R (passes when --rtol >= R).
Every call appends its arguments, with the data directory cut to
DATA, to $FAKE_KILN_LOG.
"""
import os
import signal
import sys


def main():
    args = sys.argv[1:]
    assert args[0] == 'run', args
    model = args[1]
    data = os.path.dirname(os.path.dirname(os.path.dirname(model)))
    with open(os.environ['FAKE_KILN_LOG'], 'a') as log:
        log.write(' '.join(a.replace(data, 'DATA') for a in args) + '\n')
    assert os.path.isdir(os.environ['KILN_CACHE']), 'no KILN_CACHE'
    what = open(model).read().split()[0]
    rtol = float(args[args.index('--rtol') + 1])
    if what == 'pass' or (what.startswith('tol:') and
                          rtol >= float(what[4:])):
        print("output 'y': f32[2]: max abs error 0, max rel error 0: ok")
        return 0
    if what == 'crash':
        os.kill(os.getpid(), signal.SIGSEGV)
    if what == 'error':
        print('kiln: error: %s: node \'n0\' (Foo): unsupported op' % model,
              file=sys.stderr)
        return 1
    print("output 'y': f32[2]: max abs error 0.5, max rel error 1: "
          "MISMATCH (1 of 2 elements differ)")
    print('  at [1]: got 1, expected 0.5')
    return 1


sys.exit(main())
