"""check_log.py LOG.jsonl MIN_ACC [PROBS.npy LABELS.npy]

Checks a trainer's --log: the training loss falls every epoch and the
last test accuracy is at least MIN_ACC.  With PROBS and LABELS (an
inference executable's output on the test split), its accuracy must be
the trainer's last test accuracy.  Prints what it found and "OK".
"""
import json
import sys

import numpy as np


def main(argv):
    rows = [json.loads(line) for line in open(argv[1])]
    losses = [r["loss"] for r in rows]
    print("losses", " ".join("%.4f" % v for v in losses))
    ok = all(b < a for a, b in zip(losses, losses[1:]))
    acc = rows[-1]["test_accuracy"]
    print("test accuracy %.4f" % acc)
    ok &= acc >= float(argv[2])
    if len(argv) > 3:
        p = np.load(argv[3])
        y = np.load(argv[4])
        mine = float((p.argmax(-1) == y).mean())
        print("inference accuracy %.4f" % mine)
        ok &= abs(mine - acc) < 1e-6
    print("OK" if ok else "BAD")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
