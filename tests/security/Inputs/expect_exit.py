"""Runs a command and checks its exit status.

usage: expect_exit.py STATUS [--fsize BYTES] CMD [ARG ...]

Passes the command's standard output and error through (both to standard
output, for FileCheck) and exits 0 if the command exited with STATUS, else
says what it did and exits 1.  With --fsize the command runs with a file
size limit of BYTES (RLIMIT_FSIZE, as `ulimit -f` sets it) and SIGXFSZ
ignored, so a write past the limit fails with EFBIG ("File too large")
instead of killing it: a full disk, for the writer, without root or a
small file system.  The limit is the command's only; standard output is
a pipe, which it does not apply to."""
import resource
import signal
import subprocess
import sys

want, cmd = int(sys.argv[1]), sys.argv[2:]
fsize = None
if cmd[0] == '--fsize':
    fsize = int(cmd[1])
    cmd = cmd[2:]


def limit():
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # kept across exec
    resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))


sys.stdout.flush()
p = subprocess.run(cmd, stdout=sys.stdout, stderr=subprocess.STDOUT,
                   preexec_fn=limit if fsize is not None else None)
if p.returncode != want:
    print('expect_exit.py: expected exit %d, got %d' % (want, p.returncode))
    sys.exit(1)
