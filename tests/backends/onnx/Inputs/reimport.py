"""reimport.py: kiln export of imported ONNX models gives the same IR.

  reimport.py KILN TMPDIR MODEL.onnx...

For each model kiln imports: `kiln ir` of the model and of its export
must be equal once the loc(...) suffixes are dropped (they name the file).
Every export is also checked with onnx.checker (full_check).  Prints
"SAME name" or "DIFFERENT name" per model, then the counts; models kiln
cannot import are skipped (counted as such).  With --all-same, exits 1
when any model differs.
"""
import os
import re
import subprocess
import sys

import onnx

LOC = re.compile(r" loc\(.*\)$", re.M)


def ir(kiln, path):
    r = subprocess.run([kiln, "ir", path], capture_output=True, text=True)
    return LOC.sub("", r.stdout) if r.returncode == 0 else None


def main():
    kiln, tmp = sys.argv[1:3]
    models = [a for a in sys.argv[3:] if not a.startswith("--")]
    counts = {"SAME": 0, "DIFFERENT": 0, "SKIPPED": 0}
    for path in models:
        name = os.path.basename(os.path.dirname(path)) or path
        a = ir(kiln, path)
        if a is None:
            counts["SKIPPED"] += 1
            continue
        out = os.path.join(tmp, name + ".onnx")
        subprocess.run([kiln, "export", path, "-o", out], check=True)
        onnx.checker.check_model(onnx.load(out), full_check=True)
        verdict = "SAME" if ir(kiln, out) == a else "DIFFERENT"
        counts[verdict] += 1
        print(verdict, name)
    print(" ".join(f"{k}={v}" for k, v in counts.items()))
    if "--all-same" in sys.argv and counts["DIFFERENT"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
