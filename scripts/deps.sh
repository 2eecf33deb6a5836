#!/bin/sh
# deps.sh: installs the Debian 12 packages kiln needs that are missing.
# As root it runs apt-get; otherwise it prints the exact command to run.
# usage: scripts/deps.sh [build|test]
# For tests it also tries PyTorch and torchvision (the real-model tests);
# where they cannot be installed those tests are skipped, saying why.
set -eu
# protobuf-c and the system onnx.proto for the ONNX reader.
pkgs="meson ninja-build gcc libc6-dev pkg-config libprotobuf-c-dev protobuf-c-compiler libonnx-dev"
# zlib for the trainer's gzipped IDX data (runtime/dataset.c)
pkgs="$pkgs zlib1g-dev"
# the LLVM C API for the LLVM backend and `kiln run`'s JIT (backends/llvm/)
pkgs="$pkgs llvm-19-dev"
if [ "${1:-build}" = test ]; then
	# clang and its sanitizer runtime for the second build, lit and
	# FileCheck from LLVM 19, NumPy for the independent references.
	pkgs="$pkgs clang libclang-rt-14-dev llvm-19-tools python3 python3-numpy"
	# the ONNX backend test suite, and onnx for making test models
	pkgs="$pkgs libonnx-testdata python3-onnx"
	# real Fashion-MNIST IDX files for runtime/train_fashion.test
	pkgs="$pkgs dataset-fashion-mnist"
	# Graphviz's dot renders `kiln ir --format=dot` (ir/format_dot_render.test)
	pkgs="$pkgs graphviz"
	# an AArch64 cross C library and qemu-user run the LLVM backend's
	# cross-compiled objects (skipped, saying why, when missing)
	pkgs="$pkgs qemu-user gcc-aarch64-linux-gnu libc6-dev-arm64-cross"
fi
# missing PKGS...: the packages not installed
missing() {
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
			grep -q "ok installed" || printf ' %s' "$p"
	done
}
optional=""
[ "${1:-build}" = test ] && [ "$(id -u)" -eq 0 ] &&
	optional=$(missing python3-torch python3-torchvision)
if [ -n "$optional" ]; then
	echo "installing (optional):$optional" >&2
	{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y --no-install-recommends $optional; } >&2 ||
		echo "note: could not install$optional; the real-model tests" \
		     "will be skipped" >&2
fi
missing=$(missing $pkgs)
[ -z "$missing" ] && exit 0
cmd="apt-get install -y --no-install-recommends$missing"
if [ "$(id -u)" -ne 0 ]; then
	echo "kiln needs these Debian packages:$missing" >&2
	echo "run as root:  apt-get update && $cmd" >&2
	exit 1
fi
echo "installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
$cmd >&2
