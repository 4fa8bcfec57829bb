# The S3 server dies in the middle of an upload: gitwal retries, then fails
# clearly, and nothing is visible under the backup's keys. radosgw is started
# again afterwards and a backup then succeeds. Stops the shared server, so
# CTest runs it alone (RUN_SERIAL, tests/CMakeLists.txt).
source "$(dirname "$0")/lib.sh"
s3_require
RGW=$GITWAL_SOURCE_DIR/scripts/rgw.sh
trap 'rc=$?; "$RGW" start-rgw >/dev/null || rc=1; if [ $rc -ne 0 ]; then echo "FAILED (kept $T)" >&2; else chmod -R u+w "$T"; rm -rf "$T"; fi; exit $rc' EXIT

# ~80 MiB that does not compress: many parts, several seconds of upload.
make_repo big.git 1
head -c $((80 << 20)) /dev/urandom > "$T/work/big.git/blob.bin"
git -C "$T/work/big.git" add blob.bin
git -C "$T/work/big.git" -c core.compression=0 commit -qm blob
git -C "$T/work/big.git" -c pack.compression=0 push -q origin main

bucket=$(s3_bucket)
store=$(s3_url "$bucket" p "retries=2")
gitwal backup --store "$store" big.git > "$T/out.txt" 2> "$T/err.txt" &
pid=$!
# Mid-upload: the bundle's multipart upload has begun.
for _ in $(seq 200); do
  s3_curl -f -H "x-amz-content-sha256: $EMPTY_SHA256" "$GITWAL_TEST_S3_ENDPOINT/$bucket?uploads=" 2>/dev/null |
    grep -q '<UploadId>' && break
  sleep 0.05
done
kill -0 $pid 2>/dev/null || fail "the backup ended before the server could be stopped: $(cat "$T/out.txt" "$T/err.txt")"
"$RGW" kill-rgw
rc=0
wait $pid || rc=$?
[ $rc -ne 0 ] || fail "the backup succeeded though the server was stopped"
grep -Eq 'failed after 3 attempts' "$T/err.txt" || fail "no retries reported: $(cat "$T/err.txt")"
grep -Eq "^failed big.git: (repository big.git: )?store s3://$bucket/p.*key repos/big.git/00000000000000000001.full.(bundle|idx)" "$T/out.txt" ||
  fail "the failure does not name store and key: $(cat "$T/out.txt")"
pass "server stopped mid-upload: retried, then failed clearly ($(head -c 300 "$T/err.txt"))"

"$RGW" start-rgw >/dev/null
keys=$(s3_keys "$bucket")
[ -z "$keys" ] || fail "objects visible after the failed backup: $keys"
pass "nothing visible under the final keys"

gitwal backup --store "$store" big.git | grep_all -q '^ok big.git lsn=1 ' || fail "backup after the restart"
GITWAL_STATE_DIR=$T/state2 gitwal restore --store "$store" --to "$T/restored" > /dev/null
assert_same_repo "$T/root/big.git" "$T/restored/big.git"
pass "backup and restore after the server came back"
