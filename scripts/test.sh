#!/usr/bin/env bash
# The one test command (README.md; CI runs it through .ci/run):
# installs dependencies, builds a release and an AddressSanitizer+UBSan build,
# compiles with gcc -O3 and with clang -O3 (all four with warnings as errors: no
# compiler a user may have warns about anything), starts a local Ceph radosgw
# for the S3 tests (scripts/rgw.sh), and runs the whole CTest suite under the
# first two builds. radosgw is stopped however this ends.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh
scripts/rgw.sh install
scripts/build.sh release
scripts/build.sh asan
echo "== compile checks: gcc -O3 and clang -O3, warnings as errors"
scripts/build.sh gcc-o3
scripts/build.sh clang

trap 'scripts/rgw.sh stop' EXIT
scripts/rgw.sh start
# The test server's own user (scripts/rgw.sh); real credentials never go here.
export GITWAL_TEST_S3_ENDPOINT=http://127.0.0.1:7480 AWS_ACCESS_KEY_ID=testkey AWS_SECRET_ACCESS_KEY=testsecret
export AWS_REGION=us-east-1
unset AWS_SESSION_TOKEN AWS_PROFILE AWS_SHARED_CREDENTIALS_FILE AWS_ENDPOINT_URL_S3

echo "== tests (release build)"
ctest --test-dir build/release --output-on-failure -j "$(nproc)"
echo "== tests (AddressSanitizer + UndefinedBehaviorSanitizer build)"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build/asan --output-on-failure -j "$(nproc)"
