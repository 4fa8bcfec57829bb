# Full backup and restore through an S3 store (radosgw on 127.0.0.1), end to end
# with the real gitwal binary; auth and credential-file errors; and the secret
# never shows in anything gitwal prints.
source "$(dirname "$0")/lib.sh"
s3_require

ALL=$T/all-output.log
# run CMD...: CMD's output as usual, and a copy in $ALL (checked for secrets at the end). Not through
# process substitutions: their tee finishes after run returns, so a grep of the output right after
# could read it short (seen once under load: "backup a" failed on a complete line).
run() {
  local rc=0
  "$@" >"$T/run.out" 2>"$T/run.err" || rc=$?
  cat "$T/run.out" "$T/run.err" >>"$ALL"
  cat "$T/run.err" >&2
  cat "$T/run.out"
  return $rc
}

make_repo grp/a.git 5
make_repo grp/b.git 3
git -C "$T/work/grp/a.git" tag -a v1 -m "tag v1"
git -C "$T/work/grp/a.git" push -q origin v1

bucket=$(s3_bucket)
store=$(s3_url "$bucket" backups)
run gitwal backup --store "$store" grp/a.git grp/b.git > "$T/out.txt"
grep -q '^ok grp/a.git lsn=1 ' "$T/out.txt" || fail "backup a: $(cat "$T/out.txt")"
grep -q '^ok grp/b.git lsn=1 ' "$T/out.txt" || fail "backup b: $(cat "$T/out.txt")"
# (the listing is taken whole first: grep -q closing the pipe early would fail it under pipefail)
keys=$(s3_keys "$bucket")
grep -q '^backups/repos/.*\.full\.manifest$' <<<"$keys" || fail "no manifest under the prefix: $keys"
pass "backup to S3"

# A fresh state directory: the restore finds everything from the store alone.
GITWAL_STATE_DIR=$T/state2 run gitwal restore --store "$store" --to "$T/restored" > /dev/null
assert_same_repo "$T/root/grp/a.git" "$T/restored/grp/a.git"
assert_same_repo "$T/root/grp/b.git" "$T/restored/grp/b.git"
pass "restore from S3 equals the source (refs, HEAD, fsck --full)"

echo "more" >> "$T/work/grp/a.git/file.txt"
git -C "$T/work/grp/a.git" commit -qam more && git -C "$T/work/grp/a.git" push -q origin main
run gitwal backup --store "$store" grp/a.git | grep_all -q 'lsn=2' || fail "second backup should take LSN 2"
GITWAL_STATE_DIR=$T/state3 run gitwal restore --store "$store" --to "$T/restored2" --repo grp/a.git > /dev/null
assert_same_repo "$T/root/grp/a.git" "$T/restored2/grp/a.git"
GITWAL_STATE_DIR=$T/state3 run gitwal info --store "$store" | grep_all -q 'full lsn=2' || fail "info lists LSN 2"
pass "second backup and restore of the latest"

# Point-in-time restore through S3: the archiver writes segments to the bucket, and a
# restore --until from a fresh state directory (the index rebuilt from the bucket alone)
# joins the full backup's pack and the segments' objects into one pack.
pstore=$(s3_url "$bucket" pitr)
declare -a PTS PSTATE
for i in 0 1 2 3; do
  if ((i > 0)); then
    echo "pitr $i" >> "$T/work/grp/a.git/file.txt"
    git -C "$T/work/grp/a.git" commit -qam "pitr $i" && git -C "$T/work/grp/a.git" push -q origin main
    if ((i == 2)); then git -C "$T/work/grp/a.git" push -q origin main:refs/heads/side; fi
  fi
  rc=0; GITWAL_STATE_DIR=$T/pstate gitwal archive --once --store "$pstore" >>"$ALL" 2>"$T/parch.log" || rc=$?
  cat "$T/parch.log" >> "$ALL"
  [ $rc -eq 0 ] && ! grep -q 'event=error' "$T/parch.log" || fail "archive --once to S3 (step $i): $(cat "$T/parch.log")"
  PSTATE[$i]=$(repo_state "$T/root/grp/a.git"); PTS[$i]=$(pitr_rfc "$(pitr_now_us)")
done
keys=$(s3_keys "$bucket")
grep -q '^pitr/repos/.*\.seg$' <<<"$keys" || fail "no segment in the bucket: $keys"
for i in 0 1 2 3; do
  GITWAL_STATE_DIR=$T/pstate-r$i run gitwal restore --store "$pstore" --to "$T/pitr$i" --repo grp/a.git \
    --until "${PTS[$i]}" >/dev/null
  diff <(echo "${PSTATE[$i]}") <(repo_state "$T/pitr$i/grp/a.git") >&2 || fail "restore --until step $i from S3 differs"
  git -C "$T/pitr$i/grp/a.git" fsck --full --no-progress >/dev/null 2>&1 || fail "fsck after restore --until step $i"
  assert_single_pack "$T/pitr$i/grp/a.git"
done
pass "point-in-time restore through S3 (segments archived to the bucket, index rebuilt from it)"

# Object Lock store: backups are locked from creation.
lbucket=$(s3_bucket lock)
lstore=$(s3_url "$lbucket" locked "lock=compliance&retain=1d")
run gitwal backup --store "$lstore" grp/b.git | grep_all -q '^ok grp/b.git lsn=1 ' || fail "backup to a locked store"
key=$(s3_keys "$lbucket" | grep 'full.bundle$')
s3_curl -f -I -H "x-amz-content-sha256: $EMPTY_SHA256" "$GITWAL_TEST_S3_ENDPOINT/$lbucket/${key//%/%25}" |
  grep -qi '^x-amz-object-lock-mode: COMPLIANCE' || fail "the bundle is not locked"
GITWAL_STATE_DIR=$T/state4 run gitwal restore --store "$lstore" --to "$T/restored3" > /dev/null
assert_same_repo "$T/root/grp/b.git" "$T/restored3/grp/b.git"
# lock= on a bucket without Object Lock is refused before anything is written.
assert_fails "lock= needs an Object Lock bucket" "bucket $bucket has no Object Lock" \
  gitwal backup --store "$(s3_url "$bucket" other "lock=governance&retain=2h")" grp/b.git
pass "locked store"

# A wrong secret: a clear message naming the store, and the secret nowhere.
wrong=Wr0ng-secret-$RANDOM$RANDOM
AWS_SECRET_ACCESS_KEY=$wrong assert_fails "wrong secret" \
  "store s3://$bucket/backups.*access denied \(SignatureDoesNotMatch\): check AWS_SECRET_ACCESS_KEY" \
  gitwal backup --store "$store" grp/a.git
AWS_SECRET_ACCESS_KEY=$wrong gitwal backup --store "$store" grp/a.git >> "$ALL" 2>&1 || true
AWS_SECRET_ACCESS_KEY=$wrong gitwal restore --store "$store" --to "$T/never" >> "$ALL" 2>&1 || true
grep -qF -- "$wrong" "$ALL" && fail "the wrong secret was printed"
pass "wrong secret refused clearly"

# Credentials file: refused unless private.
cred=$T/credentials
printf '[backup]\naws_access_key_id = %s\naws_secret_access_key = %s\n' "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" > "$cred"
chmod 644 "$cred"
( unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
  export AWS_SHARED_CREDENTIALS_FILE=$cred AWS_PROFILE=backup
  assert_fails "credentials file readable by others" "credentials file $cred has mode 0644.*chmod 600" \
    gitwal info --store "$store"
  chmod 600 "$cred"
  GITWAL_STATE_DIR=$T/state5 run gitwal info --store "$store" | grep_all -q 'full lsn=2' || fail "info with a 0600 credentials file"
) || exit 1
pass "credentials file"

# Everything gitwal printed above, successes and failures alike: no secret in it.
[ -s "$ALL" ] || fail "no output was captured"
grep -qF -- "$AWS_SECRET_ACCESS_KEY" "$ALL" && fail "the secret appears in gitwal's output"
pass "the secret never appears in the output ($(wc -l < "$ALL") lines checked)"
