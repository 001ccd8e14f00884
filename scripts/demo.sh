#!/usr/bin/env bash
# One command from a fresh Debian 12 machine to a running demo:
# installs the Debian packages, builds stagesync, runs `stagesync demo`.
# Extra arguments go to the demo (e.g. --scale 10, --keep).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
# Its own build directory: the test build (build/) keeps its options.
cmake -S . -B build-demo -G Ninja -DCMAKE_BUILD_TYPE=Release -DSTAGESYNC_TESTS=OFF -DSTAGESYNC_BENCH=OFF >/dev/null
cmake --build build-demo --target stagesync
exec ./build-demo/stagesync demo "$@"
