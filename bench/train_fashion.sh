#!/bin/sh
# bench/train_fashion.sh [MODEL ...]: the training figures README.md quotes.
#
# Builds each example's trainer (default: mlp and fashion_cnn) with the
# build in ${BUILD:-build}, trains it for 5 epochs on Debian's
# dataset-fashion-mnist and prints the per-epoch lines and the final test
# accuracy; logs go to ${OUT:-bench-out}/MODEL.jsonl.  Slow: fashion_cnn
# takes about 10 minutes an epoch on 2 cores with the reference kernels.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$root/build}
out=${OUT:-bench-out}
data=/usr/share/datasets/fashion-mnist
if [ ! -d "$data" ]; then
	echo "train_fashion.sh: $data is missing (apt-get install dataset-fashion-mnist)" >&2
	exit 1
fi
mkdir -p "$out"
for m in ${@:-mlp fashion_cnn}; do
	"$build/tools/kiln" build "$root/examples/$m.kiln" --train -o "$out/$m-trainer"
	echo "== $m"
	"$out/$m-trainer" --data "$data" --epochs 5 --quiet \
	    --log "$out/$m.jsonl" --save "$out/$m.safetensors"
done
