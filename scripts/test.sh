#!/usr/bin/env bash
# Builds and runs the whole test suite, twice: a normal optimised build, then
# an AddressSanitizer + UndefinedBehaviorSanitizer build. The tests start
# their own PostgreSQL servers (initdb into temp dirs, free ports).
# Set STAGESYNC_SKIP_SANITIZERS=1 to run the first pass only.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
jobs=$(nproc)

echo "== build (RelWithDebInfo) =="
# Options set explicitly: a cached configuration must not silently drop the tests.
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSTAGESYNC_TESTS=ON -DSTAGESYNC_SANITIZE=OFF >/dev/null
cmake --build build -j "$jobs"
echo "== tests =="
(cd build && ctest --output-on-failure --no-tests=error -j 2)

if [ "${STAGESYNC_SKIP_SANITIZERS:-0}" != "1" ]; then
  echo "== build (ASan + UBSan) =="
  cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DSTAGESYNC_SANITIZE=ON -DSTAGESYNC_TESTS=ON -DSTAGESYNC_BENCH=OFF >/dev/null
  cmake --build build-asan -j "$jobs"
  echo "== tests under ASan + UBSan =="
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  # The differential test's 200 seeded rounds ran in the first pass; under the
  # sanitizers (several times slower) 60 of them check memory and UB on the same paths.
  export STAGESYNC_DIFF_ROUNDS="${STAGESYNC_DIFF_ROUNDS:-15}"
  # run_test's 60 one-minute cycles ran in the first pass; 20 of them under the sanitizers.
  export STAGESYNC_RUN_CYCLES="${STAGESYNC_RUN_CYCLES:-20}"
  (cd build-asan && ctest --output-on-failure --no-tests=error -j 2)
fi
