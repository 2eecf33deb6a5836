#!/bin/sh
# run_ops.sh EXE X.npy DIR: runs an executable built from scalar_ops.kir
# or scalar_fused.kir on X, writing each output to DIR/NAME.npy.
set -e
exe=$1 x=$2 dir=$3
mkdir -p "$dir"
set --
for o in sign softplus softsign celu thresholded_relu shrink gelu; do
	set -- "$@" --output "$o=$dir/$o.npy"
done
exec "$exe" --input "x=$x" "$@"
