#!/usr/bin/env bash
# Flakiness proof: runs the integration tests RUNS times in a row (default 10)
# on the release build while BUSY busy loops (default 2: one per core on the
# CI machine) load the CPUs, and stops at the first failing run. Prints one
# line per run and the count of consecutive passes. Starts the test radosgw
# (scripts/rgw.sh) unless GITWAL_TEST_S3_ENDPOINT is already set; as root it
# runs in a network namespace of its own (unshare -n), so its radosgw and the
# tests' ports never meet another radosgw or test on this machine.
#   scripts/soak.sh [RUNS] [BUSY]
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${GITWAL_TEST_S3_ENDPOINT:-}" ] && [ -z "${GITWAL_SOAK_NETNS:-}" ] && [ "$(id -u)" = 0 ] &&
  command -v unshare >/dev/null; then
  exec unshare -n env GITWAL_SOAK_NETNS=1 GITWAL_RGW_DIR="${TMPDIR:-/tmp}/gitwal-soak-rgw" "$0" "$@"
fi
[ -n "${GITWAL_SOAK_NETNS:-}" ] && ip link set lo up
RUNS=${1:-10}
BUSY=${2:-2}

[ -x build/release/gitwal ] || scripts/build.sh release
busy=()
cleanup() {
  local p
  for p in "${busy[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -n "${own_rgw:-}" ] && scripts/rgw.sh stop >/dev/null 2>&1 || true
}
trap cleanup EXIT
if [ -z "${GITWAL_TEST_S3_ENDPOINT:-}" ]; then
  scripts/rgw.sh install
  scripts/rgw.sh start >/dev/null
  own_rgw=1
  export GITWAL_TEST_S3_ENDPOINT=http://127.0.0.1:7480 AWS_ACCESS_KEY_ID=testkey AWS_SECRET_ACCESS_KEY=testsecret
  export AWS_REGION=us-east-1
fi
for _ in $(seq "$BUSY"); do
  yes >/dev/null &
  busy+=($!)
done
echo "soak: $RUNS runs of the integration tests, $BUSY busy loops on $(nproc) cores, $(git rev-parse --short HEAD)"
passed=0
for run in $(seq "$RUNS"); do
  start=$(date +%s)
  if ctest --test-dir build/release -L integration -j "$(nproc)" --output-on-failure > "build/soak-$run.log" 2>&1; then
    passed=$((passed + 1))
    echo "run $run: passed ($(grep -Eo '[0-9]+ tests failed out of [0-9]+|tests passed, [0-9]+ tests failed out of [0-9]+' "build/soak-$run.log" | head -1), $(( $(date +%s) - start )) s)"
  else
    echo "run $run: FAILED after $(( $(date +%s) - start )) s: see build/soak-$run.log"
    grep -E '^\s+[0-9]+ - |\*\*\*Failed|Timeout' "build/soak-$run.log" | head -20
    echo "soak: $passed consecutive passes, then a failure"
    exit 1
  fi
done
echo "soak: $passed of $RUNS runs passed in a row"
