#!/usr/bin/env bash
# Build gitwal: scripts/build.sh [release|asan]  (release -> build/release, asan -> build/asan)
set -euo pipefail
cd "$(dirname "$0")/.."
kind=${1:-release}
case "$kind" in
  release) cmake -S . -B build/release -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null ;;
  asan)    cmake -S . -B build/asan -DCMAKE_BUILD_TYPE=Debug -DGITWAL_SANITIZE=ON >/dev/null ;;
  *) echo "usage: scripts/build.sh [release|asan]" >&2; exit 2 ;;
esac
cmake --build "build/$kind" -j "$(nproc)" >/dev/null
