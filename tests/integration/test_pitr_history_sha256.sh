#!/usr/bin/env bash
# The point-in-time history test (test_pitr_history.sh) on SHA-256 repositories: the same
# pushes, force pushes, deletions, HEAD moves, gc and re-creation, archived by the
# archiver with segments of 64-hex ids, and every restore exact (DESIGN.md 17).
export GITWAL_TEST_OBJECT_FORMAT=sha256
source "$(dirname "$0")/test_pitr_history.sh"
