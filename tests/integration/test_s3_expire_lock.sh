# gitwal expire on an S3 bucket with Object Lock (radosgw): objects whose retention has not passed
# are refused by the server, reported "locked until DATE" (not fatal, exit 0), kept, and the lock
# longer than the window is warned of once; the audit says an expire is to resume; once the
# retention has passed, a later run removes them. restore --until a time in the window stays exact
# after each run.
source "$(dirname "$0")/lib.sh"
s3_require

retain=20   # seconds: longer than building the history takes, short enough to wait out
make_repo a.git 2
bucket=$(s3_bucket lock)
expire_history "$(s3_url "$bucket" l "lock=compliance&retain=${retain}s")" lock
expire_restore_exact lock

# ---- while locked ----
rc=0; gitwal expire --keep-within "$window" > "$T/out1" 2>"$T/err1" || rc=$?
[ $rc -eq 0 ] || fail "expire with locked objects exited $rc: $(cat "$T/out1" "$T/err1")"
grep -q "^expired a.git lsn=1..4 kept_lsn=5 .* keys=0 " "$T/out1" || fail "locked keys removed: $(cat "$T/out1")"
line=$(grep "^locked a.git keys=" "$T/out1") || fail "no locked line: $(cat "$T/out1")"
until=$(sed -n 's/.* until=\([^ :]*:[^ ]*\): under Object Lock retention.*/\1/p' <<<"$line")
until_s=$(date -d "$until" +%s) || fail "not a date: '$until' in: $line"
now_s=$(date +%s)
[ "$until_s" -gt "$now_s" ] && [ "$until_s" -le $((now_s + retain + 5)) ] || fail "until $until is not the lock's: $line"
[ "$(grep -c 'warning: objects are locked for' "$T/err1")" -eq 1 ] || fail "no single lock warning: $(cat "$T/err1")"
grep -q "locked for ${retain}s, longer than the window" "$T/err1" || fail "the warning names the lock: $(cat "$T/err1")"
s3_keys "$bucket" > "$T/keys1"
for k in 00000000000000000001.full.manifest 00000000000000000002.seg 00000000000000000004.expire; do
  grep -qx "l/repos/a.git/$k" "$T/keys1" || fail "$k gone while locked: $(cat "$T/keys1")"
done
rc=0; gitwal audit > "$T/audit1" 2>&1 || rc=$?
[ $rc -eq 0 ] && grep -q "kind=expire-resume" "$T/audit1" || fail "audit while locked: exit $rc: $(cat "$T/audit1")"
expire_restore_exact lock
pass "locked objects are reported with their date and kept, one warning, exit 0; audit: an expire to resume"

# ---- a legal hold: refused without a retention date, so reported as a refusal (exit 1), not fatal ----
hold=l/repos/a.git/00000000000000000003.full.bundle
printf '<LegalHold xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Status>ON</Status></LegalHold>' > "$T/hold.xml"
legal_hold() {
  sed -i "s,<Status>[A-Z]*</Status>,<Status>$1</Status>," "$T/hold.xml"
  s3_curl -f -o /dev/null -X PUT -H "x-amz-content-sha256: $(sha256sum "$T/hold.xml" | cut -d' ' -f1)" \
    -H "Content-MD5: $(openssl dgst -md5 -binary "$T/hold.xml" | base64)" \
    --data-binary @"$T/hold.xml" "$GITWAL_TEST_S3_ENDPOINT/$bucket/$hold?legal-hold=" || fail "cannot set a legal hold $1"
}
legal_hold ON

# ---- once the retention has passed (waited for: the clock past the date, then the server agrees) ----
deadline=$(( $(date +%s) + retain + 120 ))
while [ "$(date +%s)" -le "$until_s" ]; do
  [ "$(date +%s)" -lt "$deadline" ] || fail "the clock never passed $until"
  sleep 0.2
done
expire_window "$t_cut"
n=0
while :; do
  rc=0; gitwal expire --keep-within "$window" > "$T/out2" 2>"$T/err2" || rc=$?
  grep -q "^locked" "$T/out2" || break
  n=$((n + 1)); [ $n -lt 100 ] && [ "$(date +%s)" -lt "$deadline" ] || fail "still locked past its date: $(cat "$T/out2")"
  sleep 0.2   # the server's clock may lag ours by a moment
done
[ $rc -eq 1 ] || fail "a legal hold's refusal: exit $rc: $(cat "$T/out2" "$T/err2")"
grep -q "a.git: the store refused to remove 1 keys, the first repos/a.git/00000000000000000003.full.bundle: removal refused by store .* (AccessDenied" "$T/err2" ||
  fail "the refused key is not named: $(cat "$T/err2")"
s3_keys "$bucket" > "$T/keys2"
grep -qx "$hold" "$T/keys2" || fail "the held key is gone: $(cat "$T/keys2")"
pass "a legal hold: the key is refused by name (exit 1), the rest removed"
legal_hold OFF
gitwal expire --keep-within "$window" > "$T/out2" 2>"$T/err2" || fail "expire after the hold: $(cat "$T/out2" "$T/err2")"
grep -q "^expired a.git lsn=1..4 kept_lsn=5 .*keys=1 .*resumed" "$T/out2" || fail "the record not finished: $(cat "$T/out2")"
s3_keys "$bucket" | sed -n 's,^l/repos/a.git/,,p' > "$T/left2"
grep -E '^0000000000000000000[1-4]\.(full|seg)' "$T/left2" && fail "keys below LSN 5 left: $(cat "$T/left2")"
s3_versions "$bucket" l/repos/a.git/ > "$T/versions2"
grep -E '/0000000000000000000[1-4]\.(full|seg)' "$T/versions2" && fail "versions below LSN 5 left: $(cat "$T/versions2")"
gitwal audit > "$T/audit2" 2>&1 || fail "audit after the lock passed: $(cat "$T/audit2")"
grep -q "kind=expire-resume" "$T/audit2" && fail "still to resume: $(cat "$T/audit2")"
expire_restore_exact lock
pass "once retention passed, a later run removes every version; the audit is clean; the window restores exactly"
