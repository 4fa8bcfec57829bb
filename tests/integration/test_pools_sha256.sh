#!/usr/bin/env bash
# The object pool test (test_pools.sh) on SHA-256 repositories: a fork network of sha256
# repositories backed up, restored linked and standalone at every step, expired and audited
# with 32-byte ids throughout (DESIGN.md 17 and 19).
export GITWAL_TEST_OBJECT_FORMAT=sha256
source "$(dirname "$0")/test_pools.sh"
