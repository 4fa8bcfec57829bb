#!/usr/bin/env bash
# Point-in-time restore of a detached HEAD (HEAD holding a commit id, not a
# branch: 'git update-ref --no-deref HEAD', 'git checkout --detach' in a
# mirror). The archiver must record it, keep archiving the repository after
# it, and restore --until must give back exactly that HEAD. Also symbolic refs whose
# target lies outside refs/.
source "$(dirname "$0")/lib.sh"

ra() { git --git-dir="$T/root/a.git" "$@"; }
declare -a TS STATE
step() { archive_once; STATE[$1]=$(repo_state "$T/root/a.git"); TS[$1]=$(pitr_rfc "$(pitr_now_us)"); }

make_repo a.git 3; step 1
ra update-ref --no-deref HEAD "$(ra rev-parse main~1)"; step 2          # detached
[ "$(tail -1 <<<"${STATE[2]}")" = "HEAD $(ra rev-parse main~1)" ] || fail "test setup: HEAD is not detached"
ra symbolic-ref HEAD refs/heads/main; step 3                             # attached again
echo more >> "$T/work/a.git/file.txt"; git -C "$T/work/a.git" commit -qam more
git -C "$T/work/a.git" push -q origin main; step 4                       # and archiving goes on
gitwal log --repo a.git >/dev/null 2>"$T/log.err" || fail "gitwal log after a detached HEAD: $(cat "$T/log.err")"
for n in 1 2 3 4; do
  restore_ok "$T/r$n" --repo a.git --until "${TS[$n]}" >/dev/null
  diff <(echo "${STATE[$n]}") <(repo_state "$T/r$n/a.git") >&2 || fail "restore at step $n differs from the truth"
  git -C "$T/r$n/a.git" fsck --full --no-progress >/dev/null 2>&1 || fail "fsck of the restore at step $n"
done
pass "detached HEAD archived and restored at each step"

# Symbolic refs pointing outside refs/ (Git allows them: ORIG_HEAD, FETCH_HEAD), in a full
# backup and in a segment: both must be restorable (a manifest or segment that gitwal wrote
# and its own parser then refused would be a backup that cannot be restored).
rs() { git --git-dir="$T/root/s.git" "$@"; }
make_repo s.git 2
rs symbolic-ref refs/heads/alias ORIG_HEAD
archive_once; TS1=$(pitr_rfc "$(pitr_now_us)")
grep -q 'event=full repo=s.git ' "$T/archive.log" || fail "s.git got no full backup: $(cat "$T/archive.log")"
rs symbolic-ref refs/heads/alias2 FETCH_HEAD; rs symbolic-ref refs/heads/alias refs/heads/main
archive_once; TS2=$(pitr_rfc "$(pitr_now_us)")
grep -q 'event=segment repo=s.git ' "$T/archive.log" || fail "s.git got no segment: $(cat "$T/archive.log")"
# (git symbolic-ref refuses a dangling one such as alias2: read the loose file itself)
target() { sed -n 's/^ref: //p' "$1/$2" 2>/dev/null | grep . || echo "(none)"; }
restore_ok "$T/s1" --repo s.git --until "$TS1" >/dev/null
[ "$(target "$T/s1/s.git" refs/heads/alias)" = ORIG_HEAD ] || fail "full backup: alias -> $(target "$T/s1/s.git" refs/heads/alias)"
restore_ok "$T/s2" --repo s.git --until "$TS2" >/dev/null
[ "$(target "$T/s2/s.git" refs/heads/alias)" = refs/heads/main ] && [ "$(target "$T/s2/s.git" refs/heads/alias2)" = FETCH_HEAD ] ||
  fail "segment: alias -> $(target "$T/s2/s.git" refs/heads/alias), alias2 -> $(target "$T/s2/s.git" refs/heads/alias2)"
restore_ok "$T/s3" --repo s.git --until "$(pitr_rfc "$(pitr_now_us)")" >/dev/null
diff <(repo_state "$T/root/s.git") <(repo_state "$T/s3/s.git") >&2 || fail "the restore of s.git at now differs"
pass "symbolic refs pointing outside refs/ are archived and restored (full backup and segment)"
