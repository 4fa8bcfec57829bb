#!/usr/bin/env bash
# Restore checks what it installs, beyond the store's own checksums: a store
# whose SHA-256s all agree (each damage below is followed by recomputing the
# index's checksum, the manifest's part digests, the manifest's digest in the
# next segment's prev_sha256 and every segment's trailer after it, as a
# forger would) must still not restore into a repository git fsck rejects.
# Each damage is tried on the restore of the full backup alone (--lsn 1) and
# on the point-in-time restore of the full and its segments (one joined
# pack); each must fail with a one-line error naming the repository and the
# key or LSN, exit non-zero, and leave nothing in the target.
source "$(dirname "$0")/lib.sh"

STORE=$GITWAL_STATE_DIR/store
DIR=$STORE/repos/a.git
key() { if [ "$2" = seg ]; then printf '%s/%020d.seg' "$DIR" "$1"; else printf '%s/%020d.full.%s' "$DIR" "$1" "$2"; fi; }

# forge.py (beside this test): damage a stored pack or index precisely, and recompute the
# checksums that would reveal it.
forge() { python3 "$GITWAL_SOURCE_DIR/tests/integration/forge.py" "$@" || fail "forge.py $*"; }

# A full backup (LSN 1: main and a tag), then two pushes archived as segments with objects (LSN 2, 3).
make_repo a.git 3
git -C "$T/work/a.git" tag t1 && git -C "$T/work/a.git" push -q origin t1
archive_once
for i in 2 3; do
  echo "change $i" >>"$T/work/a.git/file.txt"
  git -C "$T/work/a.git" commit -qam "change $i" && git -C "$T/work/a.git" push -q origin main
  archive_once
done
[ -f "$(key 1 manifest)" ] && [ -f "$(key 2 seg)" ] && [ -f "$(key 3 seg)" ] ||
  fail "test setup: expected a full backup at LSN 1 and segments at LSN 2 and 3: $(ls "$DIR")"
TRUTH=$(repo_state "$T/root/a.git")
cp -a "$STORE" "$T/pristine"

# The untouched store restores both ways (and the forger's resealing alone changes nothing that matters).
forge reseal "$DIR"
gitwal index rebuild >/dev/null
restore_ok "$T/ok1" --repo a.git --lsn 1 >/dev/null
git -C "$T/ok1/a.git" fsck --full --no-progress >/dev/null 2>&1 || fail "the restore of the full backup fails fsck"
restore_ok "$T/ok" --repo a.git >/dev/null
assert_same_repo "$T/root/a.git" "$T/ok/a.git"
pass "an intact store restores (full alone and full + segments)"

# damaged WHAT PATTERN MODE...: after the damage (done by the caller), restore the way MODE says
# (--lsn 1 | latest) into a fresh directory: it must fail matching PATTERN and leave nothing.
n=0
damaged() {
  local what=$1 pattern=$2 mode out rc to
  shift 2
  forge reseal "$DIR"
  gitwal index rebuild >/dev/null 2>&1 || fail "$what: gitwal index rebuild fails on the resealed store"
  for mode in "$@"; do
    n=$((n + 1))
    to=$T/r$n
    rc=0
    if [ "$mode" = latest ]; then
      out=$(gitwal restore --to "$to" --repo a.git 2>&1 >/dev/null) || rc=$?
    else
      out=$(gitwal restore --to "$to" --repo a.git --lsn "$mode" 2>&1 >/dev/null) || rc=$?
    fi
    [ $rc -ne 0 ] || fail "$what ($mode): restore succeeded (fsck: $(git -C "$to/a.git" fsck 2>&1 | head -3))"
    # One line for the failure (then the command's summary line).
    [ "$(grep -c 'repository a.git' <<<"$out")" -eq 1 ] || fail "$what ($mode): not one error line naming the repository: $out"
    out=$(grep 'repository a.git' <<<"$out")
    grep -Eq -- "$pattern" <<<"$out" || fail "$what ($mode): the error does not match '$pattern': $out"
    [ ! -e "$to/a.git" ] || fail "$what ($mode): a failed restore left $to/a.git"
    ! ls -A "$to" 2>/dev/null | grep_all -q . || fail "$what ($mode): a failed restore left $(ls -A "$to")"
  done
  pass "$what: refused (${out#gitwal restore: })"
  rm -rf "$STORE"
  cp -a "$T/pristine" "$STORE"
}
k1=$(basename "$(key 1 bundle)")
i1=$(basename "$(key 1 idx)")
s2=$(basename "$(key 2 seg)")
s3=$(basename "$(key 3 seg)")

# The full backup's pack.
forge flip-pack "$(key 1 bundle)"
damaged "a byte flipped in the full backup's pack" "$k1: object [0-9a-f]{40} \(offset 12\) is corrupt: CRC32 mismatch" 1 latest
forge flip-pack-fix-crc "$(key 1 bundle)"
damaged "a byte flipped in the full backup's pack, its CRC32 recomputed" "$k1: its pack's content hashes to SHA-1" 1 latest
forge manifest-set "$(key 1 manifest)" parts.bundle.pack_offset "$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['parts']['bundle']['pack_offset'] + 1)" "$(key 1 manifest)")"
damaged "the manifest's pack_offset shifted by one" "$k1: its pack does not start with a version 2 pack header|$k1: object .* is corrupt" 1 latest

# The full backup's index.
forge fanout-max "$(key 1 idx)"
damaged "the full backup's index claims 2^32-1 objects" "$i1: the index does not hold the [0-9]+ objects" 1 latest
forge fanout-max "$(key 1 idx)"
forge manifest-set "$(key 1 manifest)" parts.bundle.objects 4294967295
damaged "the full backup's index and manifest claim 2^32-1 objects" "$i1: 4294967295 objects need" 1 latest
forge idx-crc "$(key 1 idx)"
damaged "a CRC32 of the full backup's index" "$k1: object [0-9a-f]{40} \(offset [0-9]+\) is corrupt: CRC32 mismatch" 1 latest
forge idx-offset "$(key 1 idx)"
damaged "an offset of the full backup's index" "$k1: object [0-9a-f]{40} \(offset 1[23]\) is corrupt: pack index offsets do not tile the pack" 1 latest
forge idx-unsorted "$(key 1 idx)"
damaged "two ids swapped in the full backup's index" "$i1: (object ids are not sorted at position 1|the fanout table does not match object 0's id)" 1 latest

# A segment's pack and index (the point-in-time restore only: --lsn 1 does not read them).
forge flip-pack "$(key 2 seg)"
damaged "a byte flipped in a segment's pack" "$s2: object [0-9a-f]{40} \(offset 12\) is corrupt: CRC32 mismatch" latest
forge flip-pack-fix-crc "$(key 3 seg)"
damaged "a byte flipped in a segment's pack, its CRC32 recomputed" "$s3: its pack's content hashes to SHA-1" latest
forge fanout-max "$(key 2 seg)"
damaged "a segment's index claims 2^32-1 objects" "$s2: 4294967295 objects need" latest
forge idx-offset "$(key 3 seg)"
damaged "an offset of a segment's index" "$s3: object [0-9a-f]{40} \(offset 1[23]\) is corrupt: pack index offsets do not tile" latest

# Refs to objects the archive does not hold.

ghost=0123456789abcdef0123456789abcdef01234567
forge manifest-set "$(key 1 manifest)" refs.1.oid "\"$ghost\""
python3 -c "import json,sys; r=json.load(open(sys.argv[1]))['refs'][1]; assert r['name']=='refs/tags/t1', r" "$(key 1 manifest)" ||
  fail "test setup: the manifest's second ref is not refs/tags/t1"
damaged "a ref of the manifest pointing at an object not in the pack" "refs/tags/t1 points at object $ghost, which the archive does not hold \(restoring LSN [13]" 1 latest
new3=$(git -C "$T/root/a.git" rev-parse main)
forge header-replace "$(key 3 seg)" "\"new\":\"$new3\"" "\"new\":\"$ghost\""
damaged "a segment's update to an object not in any pack" "refs/heads/main points at object $ghost, which the archive does not hold \(restoring LSN 3" latest

# After all that, the pristine store still restores (nothing was left behind in the way).
gitwal index rebuild >/dev/null
restore_ok "$T/final" --repo a.git >/dev/null
diff <(echo "$TRUTH") <(repo_state "$T/final/a.git") >&2 || fail "the restore of the pristine store differs from the truth"
pass "the pristine store restores after the failed attempts"

# A segment over 8 MiB (LSN 4: an incompressible blob) is streamed into a pack of its own, its index after it:
# that pack is checked read back.
head -c $((9 << 20)) /dev/urandom >"$T/work/a.git/big.bin"
git -C "$T/work/a.git" add big.bin && git -C "$T/work/a.git" commit -qm big && git -C "$T/work/a.git" push -q origin main
archive_once
[ "$(stat -c %s "$(key 4 seg)")" -gt $((8 << 20)) ] || fail "test setup: LSN 4 is not a segment over 8 MiB"
rm -rf "$T/pristine" && cp -a "$STORE" "$T/pristine"
forge reseal "$DIR" && gitwal index rebuild >/dev/null
restore_ok "$T/big" --repo a.git >/dev/null
assert_same_repo "$T/root/a.git" "$T/big/a.git"
s4=$(basename "$(key 4 seg)")
forge flip-pack "$(key 4 seg)"
damaged "a byte flipped in a large segment's pack" "$s4: object [0-9a-f]{40} \(offset 12\) is corrupt: CRC32 mismatch" latest
forge flip-pack-fix-crc "$(key 4 seg)"
damaged "a byte flipped in a large segment's pack, its CRC32 recomputed" "$s4: its pack's content hashes to SHA-1" latest

