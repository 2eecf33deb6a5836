"""stats_all.py KILN DIR OUT LIMIT [FLAGS...]: builds every model of every
DIR/*.kiln with `kiln build --stats --emit=c` (one build per model for a
file that holds several) into OUT, and checks each model's memory plan
with stats_ok.py: arena within LIMIT times the lower bound."""
import glob
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stats_ok  # noqa: E402


def build(kiln, src, out, flags, model=None):
    cmd = [kiln, "build", src, "--stats", "--emit=c", "-o", out] + flags
    if model:
        cmd += ["--model", model]
    return subprocess.run(cmd, capture_output=True, text=True)


def main():
    kiln, src_dir, out_dir, limit = sys.argv[1:5]
    flags = sys.argv[5:]
    bad, n = [], 0
    os.makedirs(out_dir, exist_ok=True)
    for src in sorted(glob.glob(os.path.join(src_dir, "*.kiln"))):
        stem = os.path.join(out_dir, os.path.basename(src)[:-5])
        r = build(kiln, src, stem, flags)
        runs = [r]
        many = re.search(r"has \d+ models; choose one with --model NAME: (.*)",
                         r.stderr)
        if r.returncode and many:
            runs = [build(kiln, src, stem + "_" + m, flags, m)
                    for m in many.group(1).split()]
        for r in runs:
            if r.returncode:
                bad.append("%s: %s" % (src, r.stderr.strip()))
                continue
            n += r.stdout.count("\nmodel ") + r.stdout.startswith("model ")
            bad += stats_ok.check(r.stdout, float(limit))
    print("%d models checked" % n)
    sys.exit("\n".join(bad) if bad else 0)


if __name__ == "__main__":
    main()
