"""Runs a trainer and stops it with a signal once it has written its
first checkpoint: the resume tests' way to interrupt a run mid-way.

usage: interrupt.py KILL|INT|TERM CHECKPOINT|SECONDS CMD [ARG ...]

Polls for CHECKPOINT (or waits SECONDS) (which CMD must be told to write, with
--checkpoint-every so that it comes mid-epoch), sends the signal as soon
as it appears, and prints how the run ended: "killed by SIGKILL", or
"exit N" with its stderr.  Fails when the run ended before the signal
(the test would then prove nothing) or no checkpoint came in 120 s."""
import os
import signal
import subprocess
import sys
import time

sig = getattr(signal, "SIG" + sys.argv[1])
ckpt = sys.argv[2]
try:
    wait = float(ckpt)
except ValueError:
    wait = None
    if os.path.exists(ckpt):
        os.remove(ckpt)
p = subprocess.Popen(sys.argv[3:], stdout=subprocess.DEVNULL,
                     stderr=subprocess.PIPE)
end = time.time() + 120
if wait is not None:
    time.sleep(wait)
while wait is None and not os.path.exists(ckpt):
    if p.poll() is not None:
        sys.exit("the run ended (exit %d) before its first checkpoint" %
                 p.returncode)
    if time.time() > end:
        p.kill()
        sys.exit("no checkpoint after 120 s")
    time.sleep(0.002)
if p.poll() is not None:
    sys.exit("the run ended before the signal: make it longer")
p.send_signal(sig)
err = p.communicate()[1].decode()
if p.returncode < 0:
    print("killed by %s" % signal.Signals(-p.returncode).name)
else:
    print("exit %d" % p.returncode)
sys.stdout.write(err)
