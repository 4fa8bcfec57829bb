#!/usr/bin/env bash
# Point-in-time restore must check every segment it uses against its SHA-256,
# including segments that carry no objects (a branch or tag created at an
# existing commit, a deletion, a HEAD change): a byte flipped in such a
# segment's header must fail the restore naming the segment, never give a
# silently wrong set of refs.
source "$(dirname "$0")/lib.sh"

ra() { git --git-dir="$T/root/a.git" "$@"; }
declare -a TS STATE
step() { archive_once; STATE[$1]=$(repo_state "$T/root/a.git"); TS[$1]=$(pitr_rfc "$(pitr_now_us)"); }

make_repo a.git 2; step 1
ra tag t1 main~1; step 2                                   # LSN 2: a tag, no new objects
ra symbolic-ref HEAD refs/heads/side; step 3               # LSN 3: a HEAD change, no objects
echo more >> "$T/work/a.git/file.txt"; git -C "$T/work/a.git" commit -qam more
git -C "$T/work/a.git" push -q origin main; step 4         # LSN 4: a push
log=$(gitwal log --repo a.git)
grep -q '^2 segment .*objects=0' <<<"$log" && grep -q '^3 segment .*objects=0' <<<"$log" ||
  fail "test setup: LSN 2 and 3 should be segments without objects: $log"
seg() { printf '%s/store/repos/a.git/%020d.seg' "$GITWAL_STATE_DIR" "$1"; }

# Flip one byte of the ref name in LSN 2's header: refs/tags/t1 -> refs/tags/t0.
off=$(grep -abo 'refs/tags/t1' "$(seg 2)" | head -1 | cut -d: -f1)
[ -n "$off" ] || fail "test setup: the header of LSN 2 is not plain text"
pitr_flip "$(seg 2)" $((off + 11)) 1
for n in 2 4; do
  rc=0; out=$(gitwal restore --to "$T/r$n" --repo a.git --until "${TS[$n]}" 2>&1) || rc=$?
  if [ $rc -eq 0 ]; then
    fail "restore --until step $n used the damaged LSN 2 without noticing (refs now: $(git -C "$T/r$n/a.git" for-each-ref --format='%(refname)' | tr '\n' ' '))"
  fi
  grep -Eq '0*2\.seg|LSN 2' <<<"$out" || fail "restore --until step $n: the error does not name LSN 2: $out"
  [ ! -e "$T/r$n/a.git" ] || fail "a failed restore left $T/r$n/a.git"
done
restore_ok "$T/r1" --repo a.git --until "${TS[1]}" >/dev/null
diff <(echo "${STATE[1]}") <(repo_state "$T/r1/a.git") >&2 || fail "restore before the damage differs from the truth"
pass "a damaged header of a segment without objects is detected"

# The same for the HEAD change (LSN 3): refs/heads/side -> refs/heads/sidd.
pitr_flip "$(seg 2)" $((off + 11)) 1   # undo the first damage
off=$(grep -abo 'refs/heads/side' "$(seg 3)" | head -1 | cut -d: -f1)
[ -n "$off" ] || fail "test setup: the header of LSN 3 is not plain text"
pitr_flip "$(seg 3)" $((off + 14)) 1
rc=0; out=$(gitwal restore --to "$T/h3" --repo a.git --until "${TS[3]}" 2>&1) || rc=$?
[ $rc -ne 0 ] || fail "restore --until step 3 used the damaged LSN 3 without noticing (HEAD: $(cat "$T/h3/a.git/HEAD"))"
grep -Eq '0*3\.seg|LSN 3' <<<"$out" || fail "the error does not name LSN 3: $out"
pass "a damaged header of a HEAD change is detected"
