#!/usr/bin/env bash
# Point-in-time restore of a detached HEAD (HEAD holding a commit id, not a
# branch: 'git update-ref --no-deref HEAD', 'git checkout --detach' in a
# mirror). The archiver must record it, keep archiving the repository after
# it, and restore --until must give back exactly that HEAD.
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
