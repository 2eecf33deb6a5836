"""to_csv.py NPYDIR OUTDIR: train_x/y.npy and test_x/y.npy as train.csv and
test.csv (a header line, the features then the label per line, printed
with 9 significant digits so that f32 values read back exactly), and
broken CSV files in OUTDIR/bad-*."""
import os
import sys

import numpy as np


def write(path, x, y, header=True):
    with open(path, "w") as f:
        if header:
            f.write(",".join(["f%d" % i for i in range(x.shape[1])] + ["label"]) + "\n")
        for row, label in zip(x, y):
            f.write(",".join("%.9g" % v for v in row) + ",%d\n" % label)


def main(src, out):
    os.makedirs(out, exist_ok=True)
    for split in ("train", "test"):
        x = np.load(os.path.join(src, split + "_x.npy"))
        y = np.load(os.path.join(src, split + "_y.npy"))
        write(os.path.join(out, split + ".csv"), x, y, split == "train")
    x = np.load(os.path.join(src, "train_x.npy"))[:40]
    y = np.load(os.path.join(src, "train_y.npy"))[:40]
    write(os.path.join(out, "good.csv"), x, y, False)
    with open(os.path.join(out, "good.csv")) as f:
        lines = f.read().split("\n")

    def broken(name, k, line):
        d = os.path.join(out, "bad-" + name)
        os.makedirs(d, exist_ok=True)
        ls = list(lines)
        ls[k] = line
        with open(os.path.join(d, "train.csv"), "w") as f:
            f.write("\n".join(ls))

    fields = lines[5].split(",")
    broken("word", 5, ",".join(fields[:3] + ["abc"] + fields[4:]))
    broken("short", 6, ",".join(fields[:-2]))
    broken("long", 7, lines[7] + ",1")
    broken("frac", 8, ",".join(fields[:-1] + ["1.5"]))
    broken("range", 9, ",".join(fields[:-1] + ["7"]))


main(sys.argv[1], sys.argv[2])
