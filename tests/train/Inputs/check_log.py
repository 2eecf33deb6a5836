"""check_log.py LOG.jsonl MIN_ACC [PROBS.npy LABELS.npy]
check_log.py --loss-only LOG.jsonl
check_log.py --fell LOG.jsonl [KEY]

Checks a trainer's --log: the training loss falls every epoch and the
last test accuracy is at least MIN_ACC.  With PROBS and LABELS (an
inference executable's output on the test split), its accuracy must be
the trainer's last test accuracy.  With --loss-only (a trainer without
labels), the training loss falls every epoch and every epoch has a
test_loss but no accuracy.  With --fell, the last epoch's training loss
(or KEY) is below the first's.  Prints what it found and "OK".
"""
import json
import sys

import numpy as np


def falls(rows):
    losses = [r["loss"] for r in rows]
    print("losses", " ".join("%.4f" % v for v in losses))
    return all(b < a for a, b in zip(losses, losses[1:]))


def loss_only(rows):
    keys = sorted(set().union(*rows))
    print("keys", " ".join(keys))
    ok = falls(rows)
    ok &= all("test_loss" in r for r in rows)
    return ok and not any("accuracy" in k for k in keys)


def main(argv):
    if argv[1] == "--fell":
        key = argv[3] if len(argv) > 3 else "loss"
        v = [json.loads(line)[key] for line in open(argv[2])]
        print(key, " ".join("%.4f" % x for x in v))
        ok = len(v) > 1 and v[-1] < v[0]
        print("OK" if ok else "BAD")
        return 0 if ok else 1
    if argv[1] == "--loss-only":
        ok = loss_only([json.loads(line) for line in open(argv[2])])
        print("OK" if ok else "BAD")
        return 0 if ok else 1
    rows = [json.loads(line) for line in open(argv[1])]
    ok = falls(rows)
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
