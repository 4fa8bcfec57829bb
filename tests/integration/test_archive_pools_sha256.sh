#!/usr/bin/env bash
# The archiver's object pool test (test_archive_pools.sh) on SHA-256 repositories: a fork
# network of sha256 repositories archived by the running service, restored --until every step,
# linked and standalone, with 32-byte ids throughout (DESIGN.md 17 and 19).
export GITWAL_TEST_OBJECT_FORMAT=sha256
source "$(dirname "$0")/test_archive_pools.sh"
