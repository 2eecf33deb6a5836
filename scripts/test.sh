#!/bin/sh
# test.sh: the second README command; runs every test.
#
# Two builds, each running the whole lit suite (unit tests, lit tests,
# end-to-end tests): build/ with gcc, and build-asan/ with clang under
# AddressSanitizer and UndefinedBehaviorSanitizer, which also has the
# libFuzzer targets: tests/fuzz/*.test runs each for KILN_FUZZ_SECONDS
# (30 by default).  Both treat warnings as errors.  The last line printed
# is the total: "N passed, M failed".
set -u
cd "$(dirname "$0")/.."
scripts/deps.sh test || exit 1
lit="/usr/bin/python3 /usr/lib/llvm-19/build/utils/lit/lit.py"
passed=0
failed=0

# configure DIR CC [meson options...]
configure() {
	dir=$1 compiler=$2
	shift 2
	if [ ! -f "$dir/build.ninja" ]; then
		CC=$compiler meson setup "$dir" -Dwerror=true "$@" >"$dir.log" 2>&1 ||
			{ cat "$dir.log"; return 1; }
	fi
	ninja -C "$dir" >"$dir.log" 2>&1 || { cat "$dir.log"; return 1; }
}

# suite DIR: runs lit in DIR, shows failures and the summary, and adds
# its counts to the totals.
suite() {
	out=$($lit -sv "$1/tests" 2>&1)
	echo "$out" | awk '/^\*+ TEST .* FAILED \*+$/ {show = 1} show {print} /^\*+$/ {show = 0}'
	echo "$out" | sed -n '/^Total Discovered Tests/,$p'
	p=$(echo "$out" | sed -n 's/^ *\(Passed\|Expectedly Failed\) *: *\([0-9]*\).*/\2/p' |
		awk '{s+=$1} END {print s+0}')
	f=$(echo "$out" | sed -n 's/^ *\(Failed\|Unexpectedly Passed\|Unresolved\|Timed Out\) *: *\([0-9]*\).*/\2/p' |
		awk '{s+=$1} END {print s+0}')
	[ "$p" -gt 0 ] || [ "$f" -gt 0 ] || f=1    # lit itself failed
	passed=$((passed + p))
	failed=$((failed + f))
}

for b in "build gcc" "build-asan clang -Db_sanitize=address,undefined -Db_lundef=false -Dfuzz=true"; do
	set -- $b
	echo "== $1 ($2)"
	if configure "$@"; then
		suite "$1"
	else
		echo "build of $1 failed"
		failed=$((failed + 1))
	fi
done
# Size is a feature: lines of C per folder.
echo "== lines of C"
for d in util ir frontend passes backends runtime tools; do
	printf '%-10s %6d\n' "$d" "$(find "$d" -name '*.[ch]' -exec cat {} + | wc -l)"
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
