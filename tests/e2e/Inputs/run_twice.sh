#!/bin/sh
# run_twice.sh OUT1 OUT2 CMD...: runs CMD twice at once, the outputs to
# OUT1 and OUT2 (for run_cache.test: concurrent kiln runs).
out1=$1 out2=$2
shift 2
"$@" > "$out1" 2>&1 &
"$@" > "$out2" 2>&1 &
wait
