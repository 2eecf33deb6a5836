#!/bin/sh
# bench/build_time.sh [ROUNDS]: how long `kiln build` takes, import to
# executable, for torchvision's ResNet-18 (ONNX, 11.7 M parameters) with
# each backend: the C backend (kiln writes C, cc compiles and links it)
# and the LLVM backend (kiln builds and optimizes an LLVM module, writes
# an object, cc only links it).  Issue 7's target: under 3 s with LLVM.
#
# The builds alternate, C then LLVM, ROUNDS times (default 5), so a drift
# in the machine's speed hits both; it prints each time, the medians and
# their ratio.  The model comes from scripts/gen-real-models.py (PyTorch
# and torchvision, Debian's python3-torch and python3-torchvision) into
# ${OUT:-bench-out}/models; kiln is ${BUILD:-build}/tools/kiln, built with
# LLVM.  The runtime library is built once by ninja and not timed.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
kiln=${BUILD:-$root/build}/tools/kiln
out=${OUT:-bench-out}
rounds=${1:-5}
model=$out/models/resnet18/model.onnx
mkdir -p "$out"
if [ ! -f "$model" ]; then
	/usr/bin/python3 "$root/scripts/gen-real-models.py" "$out/models" \
	    resnet18 >/dev/null
fi

# seconds CMD...: runs CMD, prints its wall time in seconds
seconds() {
	t0=$(date +%s.%N)
	"$@"
	t1=$(date +%s.%N)
	echo "$t0 $t1" | awk '{printf "%.3f\n", $2 - $1}'
}

median() {
	sort -n | awk '{v[NR] = $1}
	    END {print NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}

: >"$out/build_c.txt"
: >"$out/build_llvm.txt"
i=1
while [ "$i" -le "$rounds" ]; do
	c=$(seconds "$kiln" build "$model" --backend=c -o "$out/resnet18_c")
	l=$(seconds "$kiln" build "$model" --backend=llvm -o "$out/resnet18_llvm")
	echo "round $i: C backend $c s, LLVM backend $l s"
	echo "$c" >>"$out/build_c.txt"
	echo "$l" >>"$out/build_llvm.txt"
	i=$((i + 1))
done
mc=$(median <"$out/build_c.txt")
ml=$(median <"$out/build_llvm.txt")
echo "ResNet-18 build, median of $rounds: C backend $mc s, LLVM backend $ml s"
echo "$mc $ml" | awk '{printf "LLVM/C: %.2f; target under 3 s with LLVM: %s\n", $2 / $1, $2 < 3 ? "met" : "NOT met"}'
