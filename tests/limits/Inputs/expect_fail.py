"""Runs a command that must fail cleanly, for tests/limits.

usage: expect_fail.py STATUS DIR CMD [ARG...]
Prints CMD's stderr and stdout (for FileCheck), and exits 0 only when
  - CMD exited with exactly STATUS (not killed by a signal), and
  - its output shows no sanitizer report and no kiln internal error, and
  - DIR holds exactly the files it held before, with the same contents
    (a failed run creates, changes and removes nothing there).
Otherwise it says why on stdout and exits 1.
"""
import os
import subprocess
import sys


def snapshot(d):
    files = {}
    for root, _, names in os.walk(d):
        for n in names:
            p = os.path.join(root, n)
            with open(p, 'rb') as f:
                files[os.path.relpath(p, d)] = f.read()
    return files


def main():
    status, d, cmd = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
    before = snapshot(d)
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=60)
    out = r.stdout.decode('utf-8', 'replace')
    sys.stdout.write(out)
    bad = []
    if r.returncode != status:
        bad.append('exit status %d, expected %d' % (r.returncode, status))
    for word in ['Sanitizer', 'runtime error:', 'internal error']:
        if word in out:
            bad.append('the output shows %r' % word)
    after = snapshot(d)
    for name in sorted(set(before) | set(after)):
        if name not in after:
            bad.append('%s was removed' % name)
        elif name not in before:
            bad.append('%s was created' % name)
        elif before[name] != after[name]:
            bad.append('%s was changed' % name)
    for b in bad:
        print('expect_fail: ' + b)
    sys.exit(1 if bad else 0)


main()
