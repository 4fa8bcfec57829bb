# Incomplete multipart uploads of backups killed with kill -9 (DESIGN.md 2.2):
# the audit reports each one (a warning: the archive stays clean), and the next
# backup writing that repository aborts those older than upload_max_age.
source "$(dirname "$0")/lib.sh"
s3_require

# ~40 MiB that does not compress: the bundle goes up as a multipart upload of several parts.
make_repo big.git 1
head -c $((40 << 20)) /dev/urandom > "$T/work/big.git/blob.bin"
git -C "$T/work/big.git" add blob.bin
git -C "$T/work/big.git" -c core.compression=0 commit -qm blob
git -C "$T/work/big.git" -c pack.compression=0 push -q origin main

# With Object Lock, so that an audit of the whole store is clean (no "writable" objects).
bucket=$(s3_bucket lock)
store=$(s3_url "$bucket" p "lock=governance&retain=1d")
uploads() { # the UploadIds of the bucket's incomplete uploads, one a line
  s3_curl -f -H "x-amz-content-sha256: $EMPTY_SHA256" "$GITWAL_TEST_S3_ENDPOINT/$bucket?uploads=" |
    python3 -c 'import sys,xml.etree.ElementTree as E; [print(k.text) for k in E.parse(sys.stdin).iter() if k.tag.endswith("UploadId")]'
}

killed=0
for attempt in $(seq 10); do
  before=$(uploads | sort)
  "$GITWAL_BIN" backup --store "$store" big.git >/dev/null 2>&1 &
  pid=$!
  for _ in $(seq 400); do
    [ "$(uploads | sort)" != "$before" ] && break
    kill -0 $pid 2>/dev/null || break
    sleep 0.05
  done
  kill -KILL $pid 2>/dev/null || true
  rc=0; wait $pid || rc=$?
  [ $rc -eq 137 ] && [ "$(uploads | sort)" != "$before" ] && killed=$((killed + 1))
  [ $killed -ge 2 ] && break
done
[ $killed -ge 2 ] || fail "could not kill a backup mid-upload (killed $killed)"
left=$(uploads | wc -l)
pass "$killed backups killed mid-upload left $left incomplete uploads"

rc=0; gitwal audit --store "$store" > "$T/audit.out" 2>&1 || rc=$?
[ $rc -eq 0 ] || fail "audit with incomplete uploads exited $rc: $(cat "$T/audit.out")"
[ "$(grep -c '^warning repo=big.git lsn=1 key=repos/big.git/00000000000000000001.full.[a-z]* kind=leftover detail="incomplete upload ' "$T/audit.out")" -eq "$left" ] ||
  fail "expected $left leftover warnings: $(cat "$T/audit.out")"
grep -q 'presumed dead after upload_max_age, 86400s' "$T/audit.out" || fail "the warning does not name the age: $(cat "$T/audit.out")"
pass "audit reports each incomplete upload once, as a warning (exit 0)"

# A backup with the default upload_max_age (24 h) leaves them: they may be another writer's in progress.
gitwal backup --store "$store" big.git >/dev/null 2>"$T/backup.err" || fail "backup: $(cat "$T/backup.err")"
[ "$(uploads | wc -l)" -eq "$left" ] || fail "young uploads were aborted"
# With upload_max_age=2s, once they are that old (the audit says so), the next backup aborts them.
short=$(s3_url "$bucket" p "lock=governance&retain=1d&upload_max_age=2s")
for _ in $(seq 300); do
  gitwal audit --store "$short" > "$T/audit.out" 2>&1 || fail "audit: $(cat "$T/audit.out")"
  [ "$(grep -c 'writing there removes it"' "$T/audit.out")" -eq "$left" ] && break
  sleep 0.1
done
[ "$(grep -c 'writing there removes it"' "$T/audit.out")" -eq "$left" ] || fail "uploads never old enough: $(cat "$T/audit.out")"
git -C "$T/work/big.git" commit -q --allow-empty -m more && git -C "$T/work/big.git" push -q origin main
gitwal backup --store "$short" big.git >/dev/null 2>"$T/backup.err" || fail "backup: $(cat "$T/backup.err")"
[ -z "$(uploads)" ] || fail "stale uploads remain: $(uploads)"
gitwal audit --store "$store" > "$T/audit.out" 2>&1 || fail "audit after: $(cat "$T/audit.out")"
! grep -q '^warning' "$T/audit.out" || fail "warnings after the cleanup: $(cat "$T/audit.out")"
pass "the next backup aborted the uploads older than upload_max_age, and the audit is quiet"
