# The audit on an S3 store with Object Lock: clean after a backup; a key
# written a second time (a new version: radosgw keeps versions in Object Lock
# buckets) and an object without retention are reported.
source "$(dirname "$0")/lib.sh"
s3_require

make_repo a.git 3
bucket=$(s3_bucket lock)
store=$(s3_url "$bucket" audit "lock=governance&retain=1d")
gitwal backup --store "$store" a.git > "$T/backup.out" || fail "backup to the locked store: $(cat "$T/backup.out")"
gitwal audit --store "$store" --read-data > "$T/clean.out" 2>&1 || fail "audit of a clean locked store: $(cat "$T/clean.out")"
pass "clean locked store audits clean"

# A second version of the manifest (same bytes: only the version count shows it).
key=audit/repos/a.git/00000000000000000001.full.manifest
s3_curl -f -o "$T/manifest" -H "x-amz-content-sha256: $EMPTY_SHA256" "$GITWAL_TEST_S3_ENDPOINT/$bucket/$key" ||
  fail "cannot read the manifest back"
sha=$(sha256sum "$T/manifest" | cut -d' ' -f1)
s3_curl -f -o /dev/null -X PUT -H "x-amz-content-sha256: $sha" --data-binary @"$T/manifest" \
  "$GITWAL_TEST_S3_ENDPOINT/$bucket/$key" || fail "cannot write a second version"
rc=0; gitwal audit --store "$store" > "$T/versions.out" 2>&1 || rc=$?
[ $rc -eq 1 ] || fail "audit should exit 1 on a second version, got $rc: $(cat "$T/versions.out")"
grep -q "kind=versions" "$T/versions.out" || fail "second version not reported: $(cat "$T/versions.out")"
grep -q "00000000000000000001.full.manifest" "$T/versions.out" || fail "the key is not named: $(cat "$T/versions.out")"
pass "a key written twice is reported (kind=versions)"

# An object created without retention in a store that promises it.
printf 'stray' > "$T/stray"
s3_curl -f -o /dev/null -X PUT -H "x-amz-content-sha256: $(sha256sum "$T/stray" | cut -d' ' -f1)" \
  --data-binary @"$T/stray" "$GITWAL_TEST_S3_ENDPOINT/$bucket/audit/repos/a.git/00000000000000000009.seg" ||
  fail "cannot write a stray object"
rc=0; gitwal audit --store "$store" > "$T/retention.out" 2>&1 || rc=$?
[ $rc -eq 1 ] || fail "audit should exit 1, got $rc"
grep -q "kind=retention" "$T/retention.out" || fail "missing retention not reported: $(cat "$T/retention.out")"
pass "an object without Object Lock retention is reported (kind=retention)"
# One fact, one line: the object without retention is not also "writable".
grep -q "kind=writable" "$T/retention.out" && fail "missing retention reported twice: $(cat "$T/retention.out")"
pass "missing retention is reported once"

# A plain bucket (no Object Lock) enforces nothing: one warning for the run, no "writable" per key, clean.
plain=$(s3_url "$(s3_bucket)" plain)
export GITWAL_STATE_DIR=$T/state.plain   # an index of its own: it lists one store
gitwal backup --store "$plain" a.git > /dev/null || fail "backup to a plain bucket"
rc=0; gitwal audit --store "$plain" > "$T/plain.out" 2>&1 || rc=$?
[ $rc -eq 0 ] || fail "audit of a healthy plain bucket exited $rc: $(cat "$T/plain.out")"
grep -q "kind=writable" "$T/plain.out" && fail "a plain bucket's keys reported writable: $(cat "$T/plain.out")"
[ "$(grep -c 'kind=unenforced' "$T/plain.out")" -eq 1 ] || fail "no single unenforced warning: $(cat "$T/plain.out")"
pass "a plain bucket audits clean, with one warning that it does not enforce write-once"
