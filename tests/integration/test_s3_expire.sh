# gitwal expire on S3 without Object Lock (radosgw): a plain bucket, where a batch of keys goes in
# one DeleteObjects, and a versioned bucket, where every version of each key goes (ListObjectVersions,
# then DeleteObjects by VersionId). The store requests follow what is removed, not what exists, and
# restore --until a time in the window stays exact after each expire.
source "$(dirname "$0")/lib.sh"
s3_require

make_repo a.git 2
for r in b c d e f; do make_repo "$r.git" 1; done   # full backups only: nothing of theirs expires

# expire_checked NAME BUCKET PREFIX: run expire (traced) and check what is left of a.git.
expire_checked() {
  local name=$1 bucket=$2 prefix=$3 last
  GITWAL_S3_TRACE=1 gitwal expire --keep-within "$window" > "$T/out.$name" 2>"$T/trace.$name" ||
    fail "expire on $name: $(cat "$T/trace.$name")"
  grep -q "^expired a.git lsn=1..4 kept_lsn=5 " "$T/out.$name" || fail "a.git on $name: $(cat "$T/out.$name")"
  [ "$(grep -c '^expired' "$T/out.$name")" -eq 1 ] || fail "only a.git has anything to expire: $(cat "$T/out.$name")"
  # Left of a.git: its record, then LSN 5 on; the other repositories untouched.
  s3_keys "$bucket" > "$T/keys.$name"
  sed -n "s,^$prefix/repos/a.git/,,p" "$T/keys.$name" > "$T/left.$name"
  last=$(sed -n 's/^\([0-9]*\)\.\(full\|seg\).*/\1/p' "$T/left.$name" | sort | head -1)
  [ "$last" = 00000000000000000005 ] || fail "a.git's keys below LSN 5 are left on $name: $(cat "$T/left.$name")"
  grep -qx 00000000000000000004.expire "$T/left.$name" || fail "no expire record on $name: $(cat "$T/left.$name")"
  for r in b c d e f; do
    grep -qx "$prefix/repos/$r.git/00000000000000000001.full.manifest" "$T/keys.$name" ||
      fail "$r.git lost its full backup on $name"
  done
  # Requests: one DeleteObjects for a.git's keys; nothing at all for the five repositories that keep
  # everything; the whole run a small constant (listings, the kept backup's check, the record).
  [ "$(s3_trace_requests "$T/trace.$name" POST)" -eq 1 ] || fail "not one DeleteObjects on $name: $(grep s3_trace "$T/trace.$name")"
  [ "$(s3_trace_requests "$T/trace.$name" DELETE)" -eq 0 ] || fail "key-by-key DELETEs on $name"
  n=$(s3_trace_requests "$T/trace.$name")
  [ "$n" -le 16 ] || fail "$n requests on $name for one repository's removal: $(grep s3_trace "$T/trace.$name")"
  echo "$name: $(grep -c . "$T/left.$name") keys of a.git left, $n requests" >&2
}

# ---- a plain bucket ----
bucket=$(s3_bucket)
expire_history "$(s3_url "$bucket" p)" plain
expire_restore_exact plain
expire_checked plain "$bucket" p
expire_restore_exact plain
gitwal audit > "$T/audit.plain" 2>&1 || fail "audit after expire on a plain bucket: $(cat "$T/audit.plain")"
grep -q "kind=expire-resume" "$T/audit.plain" && fail "a finished expire reported to resume: $(cat "$T/audit.plain")"
# A second run has nothing to remove and no record to finish: no DeleteObjects, hardly a request.
GITWAL_S3_TRACE=1 gitwal expire --keep-within "$window" > "$T/out2" 2>"$T/trace2" || fail "second expire: $(cat "$T/trace2")"
[ -s "$T/out2" ] && fail "a second expire did something: $(cat "$T/out2")"
[ "$(s3_trace_requests "$T/trace2")" -le 2 ] || fail "a run with nothing to do made requests: $(grep s3_trace "$T/trace2")"
pass "plain bucket: one DeleteObjects removes the range, the others cost nothing, the window restores exactly"

# ---- a versioned bucket: every version goes, delete markers too ----
vbucket=$(s3_bucket)
printf '<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Status>Enabled</Status></VersioningConfiguration>' > "$T/ver.xml"
s3_curl -f -o /dev/null -X PUT -H "x-amz-content-sha256: $(sha256sum "$T/ver.xml" | cut -d' ' -f1)" \
  --data-binary @"$T/ver.xml" "$GITWAL_TEST_S3_ENDPOINT/$vbucket?versioning=" || fail "cannot enable versioning"
expire_history "$(s3_url "$vbucket" v)" versioned
# A second version of a key the expire removes, and another removed and written again (a delete
# marker between two versions): every version must go.
key=v/repos/a.git/00000000000000000001.full.manifest
s3_curl -f -o "$T/manifest" -H "x-amz-content-sha256: $EMPTY_SHA256" "$GITWAL_TEST_S3_ENDPOINT/$vbucket/$key" ||
  fail "cannot read the manifest back"
s3_curl -f -o /dev/null -X PUT -H "x-amz-content-sha256: $(sha256sum "$T/manifest" | cut -d' ' -f1)" \
  --data-binary @"$T/manifest" "$GITWAL_TEST_S3_ENDPOINT/$vbucket/$key" || fail "cannot write a second version"
seg=v/repos/a.git/00000000000000000002.seg
s3_curl -f -o "$T/seg" -H "x-amz-content-sha256: $EMPTY_SHA256" "$GITWAL_TEST_S3_ENDPOINT/$vbucket/$seg" ||
  fail "cannot read the segment back"
s3_curl -f -o /dev/null -X DELETE -H "x-amz-content-sha256: $EMPTY_SHA256" "$GITWAL_TEST_S3_ENDPOINT/$vbucket/$seg" ||
  fail "cannot add a delete marker"
s3_curl -f -o /dev/null -X PUT -H "x-amz-content-sha256: $(sha256sum "$T/seg" | cut -d' ' -f1)" \
  --data-binary @"$T/seg" "$GITWAL_TEST_S3_ENDPOINT/$vbucket/$seg" || fail "cannot write the segment again"
s3_versions "$vbucket" v/repos/a.git/ > "$T/versions.before"
[ "$(grep -c "00000000000000000001.full.manifest " "$T/versions.before")" -eq 2 ] || fail "no second version: $(cat "$T/versions.before")"
grep -q "00000000000000000002.seg .* DeleteMarker" "$T/versions.before" || fail "no delete marker: $(cat "$T/versions.before")"
expire_restore_exact versioned
expire_checked versioned "$vbucket" v
s3_versions "$vbucket" v/repos/a.git/ > "$T/versions.after"
grep -E "/0000000000000000000[1-4]\.(full|seg)" "$T/versions.after" && fail "versions below LSN 5 are left: $(cat "$T/versions.after")"
[ "$(grep -c . "$T/versions.after")" -eq "$(grep -c . "$T/left.versioned")" ] ||
  fail "the keys left have more than one version: $(cat "$T/versions.after")"
expire_restore_exact versioned
pass "versioned bucket: every version and delete marker of the removed keys is gone, the window restores exactly"

# ---- DeleteObjects refused as a whole, or answered with something else (the fault proxy): the
# repository fails (exit 1), its record waits (the audit: an expire to resume), the next run finishes ----
fp_start
fbucket=$(s3_bucket)
expire_history "s3://$fbucket/f?endpoint=$FP_ENDPOINT&region=us-east-1&path_style=true" faults
fp_rules '[{"fault": "status", "method": "POST", "path": "\\?delete", "status": 403}]'
rc=0; gitwal expire --keep-within "$window" > "$T/out.f1" 2>"$T/err.f1" || rc=$?
[ $rc -eq 1 ] || fail "DeleteObjects refused: exit $rc: $(cat "$T/out.f1" "$T/err.f1")"
grep -q "^failed a.git: removing [0-9]* objects (DeleteObjects): store .*: access denied" "$T/out.f1" || fail "refusal not named: $(cat "$T/out.f1")"
rc=0; gitwal audit > "$T/audit.f1" 2>&1 || rc=$?
[ $rc -eq 0 ] && grep -q "kind=expire-resume" "$T/audit.f1" || fail "audit after a refused DeleteObjects: exit $rc: $(cat "$T/audit.f1")"
expire_restore_exact faults
# The server removes them, but the answer is not a DeleteResult: not taken for done.
fp_rules '[{"fault": "status", "method": "POST", "path": "\\?delete", "status": 200, "forward": true}]'
rc=0; gitwal expire --keep-within "$window" > "$T/out.f2" 2>"$T/err.f2" || rc=$?
[ $rc -eq 1 ] && grep -q "^failed a.git: .*answered DeleteObjects with <Error>, not <DeleteResult>" "$T/out.f2" ||
  fail "a wrong answer: exit $rc: $(cat "$T/out.f2" "$T/err.f2")"
fp_rules '[]'
gitwal expire --keep-within "$window" > "$T/out.f3" 2>"$T/err.f3" || fail "expire after the faults: $(cat "$T/out.f3" "$T/err.f3")"
grep -q "^expired a.git lsn=1..4 kept_lsn=5 .*resumed" "$T/out.f3" || fail "not finished: $(cat "$T/out.f3")"
gitwal audit > "$T/audit.f3" 2>&1 || fail "audit after the faults: $(cat "$T/audit.f3")"
grep -q "kind=expire-resume" "$T/audit.f3" && fail "still to resume: $(cat "$T/audit.f3")"
expire_restore_exact faults
pass "a DeleteObjects refused or misanswered fails the repository (exit 1), the record waits, the next run finishes"
