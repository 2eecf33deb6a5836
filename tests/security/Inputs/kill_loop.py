"""Kills a trainer with SIGKILL at random times, again and again, each run
resuming from the checkpoint the runs before it left, and checks after
every kill that the checkpoint is whole.

usage: kill_loop.py SEED ROUNDS MAX_SECONDS CHECKPOINT CMD [ARG ...]

Each round runs CMD --checkpoint CHECKPOINT (plus --resume CHECKPOINT once
the file exists; CMD should give --checkpoint-every), waits a random time
of up to MAX_SECONDS (random.Random(SEED)) and sends SIGKILL.  After the
kill, CHECKPOINT is absent (no run got as far as its first one) or a kiln
checkpoint whose data has the CRC-32 its header names.  The next round
resumes from it, and a round whose run exits by itself (a refused
checkpoint makes it) fails; a run killed before it said "resuming from"
left the file as it was, for the round after it, so every checkpoint a
kill leaves is resumed, by a later round or by the run after the loop.  The
checkpoint's directory must hold nothing else but at most one temporary
file, CHECKPOINT.kiln-tmp, which a kill while it was being written leaves
and the next checkpoint replaces: strays must not pile up.  Prints one
line per failure and exits 1, or "ROUNDS kills: checkpoint whole after
each" and exits 0; how many kills left a temporary file and how many
runs resumed go to stderr.
"""
import json
import os
import random
import signal
import struct
import subprocess
import sys
import time
import zlib


def check_checkpoint(path):
    """Why the file at path is not a whole checkpoint, or None."""
    raw = open(path, 'rb').read()
    if len(raw) < 8:
        return 'shorter than its header length'
    (n,) = struct.unpack('<Q', raw[:8])
    try:
        header = json.loads(raw[8:8 + n])
    except ValueError as e:
        return 'its header is not JSON: %s' % e
    meta = header.get('__metadata__', {})
    if meta.get('format') != 'kiln-checkpoint':
        return 'its format is %r' % meta.get('format')
    data = raw[8 + n:]
    end = max(e['data_offsets'][1] for k, e in header.items()
              if k != '__metadata__')
    if end != len(data):
        return 'its tensors hold %d bytes of data, the file %d' % (
            end, len(data))
    crc = '%08x' % zlib.crc32(data)
    if crc != meta.get('crc32'):
        return 'the CRC-32 of its data is %s, its header says %s' % (
            crc, meta.get('crc32'))
    return None


def main():
    seed, rounds, most = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    ckpt, cmd = sys.argv[4], sys.argv[5:]
    folder = os.path.dirname(os.path.abspath(ckpt))
    tmp = os.path.basename(ckpt) + '.kiln-tmp'
    rng = random.Random(seed)
    strays = resumed = 0
    for r in range(rounds):
        args = cmd + ['--checkpoint', ckpt]
        if os.path.exists(ckpt):
            args += ['--resume', ckpt]
        p = subprocess.Popen(args, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
        time.sleep(rng.uniform(0, most))
        p.send_signal(signal.SIGKILL)
        err = p.communicate()[1].decode()
        if p.returncode != -signal.SIGKILL:
            sys.exit('round %d: the run ended by itself (exit %d) before '
                     'the kill: %s' % (r, p.returncode, err.strip()))
        if os.path.exists(ckpt):
            why = check_checkpoint(ckpt)
            if why:
                sys.exit('round %d: %s: %s' % (r, ckpt, why))
        others = sorted(set(os.listdir(folder)) -
                        {os.path.basename(ckpt)})
        if others not in ([], [tmp]):
            sys.exit('round %d: stray files next to the checkpoint: %s' %
                     (r, ' '.join(others)))
        strays += others == [tmp]
        resumed += 'resuming from' in err
    sys.stderr.write('%d of %d kills left %s; %d runs resumed\n' %
                     (strays, rounds, tmp, resumed))
    print('%d kills: checkpoint whole after each' % rounds)


main()
