#!/usr/bin/env bash
# Build gitwal: scripts/build.sh [release|asan|gcc-o3|clang]  (KIND -> build/KIND)
#   release  RelWithDebInfo (-O2 -g), what the tests and scripts run
#   asan     Debug with AddressSanitizer and UndefinedBehaviorSanitizer
#   gcc-o3   Release (-O3) with gcc: the flags a distribution builds with
#   clang    Release (-O3) with clang
# The project's own builds treat warnings as errors (GITWAL_WERROR); a plain cmake build does
# not. gcc-o3 and clang are there for scripts/test.sh to prove both compilers warn about nothing
# at the optimisation levels whose analyses (e.g. -Wmaybe-uninitialized) only run there.
set -euo pipefail
cd "$(dirname "$0")/.."
kind=${1:-release}
case "$kind" in
  release) cmake -S . -B build/release -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGITWAL_WERROR=ON >/dev/null ;;
  asan)    cmake -S . -B build/asan -DCMAKE_BUILD_TYPE=Debug -DGITWAL_SANITIZE=ON -DGITWAL_WERROR=ON >/dev/null ;;
  gcc-o3)  cmake -S . -B build/gcc-o3 -DCMAKE_C_COMPILER=gcc -DCMAKE_BUILD_TYPE=Release -DGITWAL_WERROR=ON >/dev/null ;;
  clang)   cmake -S . -B build/clang -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Release -DGITWAL_WERROR=ON >/dev/null ;;
  *) echo "usage: scripts/build.sh [release|asan|gcc-o3|clang]" >&2; exit 2 ;;
esac
cmake --build "build/$kind" -j "$(nproc)" >/dev/null
