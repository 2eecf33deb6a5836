#!/bin/sh
# cross_runtime.sh TRIPLE RUNTIME_DIR WORK_DIR LIB: compiles the runtime's
# C files with TRIPLE-gcc into WORK_DIR and archives them as LIB.  Files
# that include zlib.h (a trainer's data and checkpoints) are left out: the
# cross sysroot has no zlib, and an inference executable needs neither.
set -eu
triple=$1 src=$2 work=$3 lib=$4
mkdir -p "$work"
for f in "$src"/*.c; do
	grep -q zlib.h "$f" && continue
	"$triple-gcc" -std=c11 -O2 -D_POSIX_C_SOURCE=200809L -I"$src" \
	    -c "$f" -o "$work/$(basename "$f" .c).o"
done
rm -f "$lib"
"$triple-ar" rcs "$lib" "$work"/*.o
