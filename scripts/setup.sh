#!/bin/sh
# setup.sh: the first README command.  Installs what is missing, builds
# kiln, compiles examples/cnn.kiln into an executable and runs it on the
# bundled sample image.
set -eu
cd "$(dirname "$0")/.."
scripts/deps.sh build
[ -d build ] || meson setup build >/dev/null
ninja -C build >/dev/null
build/tools/kiln build examples/cnn.kiln -o build/cnn --stats
build/cnn --describe
build/cnn --input image=examples/data/image.npy --output probs=build/probs.npy
echo "wrote build/probs.npy"
build/cnn --input image=examples/data/image.npy
