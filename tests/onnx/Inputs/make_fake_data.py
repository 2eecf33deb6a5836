"""A tiny stand-in for libonnx-testdata, for runner.test.

    make_fake_data.py DIR

makes DIR/<suite>/<test>/model.onnx (holding a word for fake_kiln.py)
and test_data_set_0/ with input_K.pb and output_K.pb files (empty: the
fake kiln never reads them).
"""
import os
import sys

TESTS = {
    'node/test_pass': 'pass',
    'node/test_fail': 'mismatch',
    'node/test_listed_fail': 'error',
    'node/test_listed_pass': 'pass',
    'simple/test_tol': 'tol:0.01',
    'pytorch-operator/test_crash': 'crash',
    'pytorch-converted/test_new_error': 'error',
    'real/test_not_a_suite': 'mismatch',
}


def main():
    root = sys.argv[1]
    for test, what in TESTS.items():
        d = os.path.join(root, test, 'test_data_set_0')
        os.makedirs(d)
        with open(os.path.join(root, test, 'model.onnx'), 'w') as f:
            f.write(what + '\n')
        # input_10 sorts after input_2: the runner must order by number.
        names = ['input_0', 'input_1', 'input_2', 'input_10', 'output_0']
        for n in names if test == 'node/test_pass' else names[:1] + names[4:]:
            open(os.path.join(d, n + '.pb'), 'w').close()
    os.makedirs(os.path.join(root, 'node', 'test_nodata'))
    open(os.path.join(root, 'node', 'test_nodata', 'model.onnx'), 'w').close()


main()
