#!/usr/bin/env bash
# The one test command (README.md; CI runs it through .ci/run):
# installs dependencies, builds a release and an AddressSanitizer+UBSan build,
# and runs the whole CTest suite under both.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh
scripts/build.sh release
scripts/build.sh asan

echo "== tests (release build)"
ctest --test-dir build/release --output-on-failure -j "$(nproc)"
echo "== tests (AddressSanitizer + UndefinedBehaviorSanitizer build)"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build/asan --output-on-failure -j "$(nproc)"
