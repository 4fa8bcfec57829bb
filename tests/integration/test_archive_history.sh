# A scripted history of 40 steps across 3 repositories (pushes, force-pushes, branch and tag
# creation and deletion, HEAD moves and detaching, gc, pack-refs, a repository deleted and
# created again) driven while the archiver service runs, each step given time to be archived.
# Replaying the archive (full backups and segments, in LSN order) must pass through every
# recorded state of every repository, in order, and end at the live state; and
# 'restore --until' at the time after each step (every repository at once) must give exactly
# the state each repository had then (absent while it was deleted).
source "$(dirname "$0")/lib.sh"

L=$T/ar.log
REPOS="r1.git grp/r2.git r3.git"
make_repo r1.git 3
make_repo grp/r2.git 2
make_repo r3.git 2
archiver_start "$L" --debounce 50
wait_log "$L" 'event=full .*reason=initial' 3 60 || fail "start-up: $(cat "$L")"
wait_archived 60 $REPOS || fail "the archive does not reach the live state"

w() { echo "$T/work/$1"; }
op_push() { push_commit "$1" "$2"; }
op_force() {  # rewrite the tip of branch $2: drop its last commit, add another, push -f
  local d; d=$(w "$1")
  git -C "$d" checkout -q "$2"; git -C "$d" reset -q --hard HEAD~1
  echo "forced $RANDOM" > "$d/forced.txt"; git -C "$d" add forced.txt; git -C "$d" commit -qm "forced"
  git -C "$d" push -q -f origin "$2" 2>/dev/null
}
op_branch() { git -C "$(w "$1")" push -q origin "${3:-HEAD}:refs/heads/$2" 2>/dev/null; }
op_delref() { git -C "$(w "$1")" push -q origin ":$2" 2>/dev/null; }
op_tag() { git -C "$(w "$1")" tag -f "$2" "${3:-HEAD}" >/dev/null; git -C "$(w "$1")" push -q -f origin "refs/tags/$2" 2>/dev/null; }
op_atag() { git -C "$(w "$1")" tag -f -a -m "tag $2" "$2" >/dev/null; git -C "$(w "$1")" push -q -f origin "refs/tags/$2" 2>/dev/null; }
op_head() { git -C "$T/root/$1" symbolic-ref HEAD "$2"; }
op_detach() { git -C "$T/root/$1" update-ref --no-deref HEAD "$(git -C "$T/root/$1" rev-parse "$2")"; }
op_gc() { git -C "$T/root/$1" gc -q --prune=now; }
op_packrefs() { git -C "$T/root/$1" pack-refs --all; }
op_delete() { rm -rf "$T/root/$1"; }
op_recreate() { rm -rf "$(w "$1")"; make_repo "$1" 2; }
op_df() {  # delete x/y/z and create x in one push (a directory/file swap in the ref namespace)
  git -C "$(w "$1")" push -q origin :refs/heads/x/y/z HEAD:refs/heads/x 2>/dev/null
}

STEPS=(
  "op_push r1.git main" "op_push grp/r2.git main" "op_branch r1.git dev" "op_push r1.git dev"
  "op_tag grp/r2.git v1" "op_atag r1.git a1" "op_force r1.git main" "op_head r1.git refs/heads/dev"
  "op_gc r1.git" "op_push r3.git main" "op_head r1.git refs/heads/main" "op_delref r1.git refs/heads/dev"
  "op_push grp/r2.git feature" "op_packrefs grp/r2.git" "op_push grp/r2.git feature" "op_delref grp/r2.git refs/tags/v1"
  "op_force grp/r2.git feature" "op_detach r3.git main~1" "op_push r3.git main" "op_head r3.git refs/heads/main"
  "op_atag r3.git rel-1" "op_push r1.git main" "op_branch grp/r2.git copy" "op_gc grp/r2.git"
  "op_push grp/r2.git main" "op_delref grp/r2.git refs/heads/copy" "op_atag grp/r2.git a2" "op_push r3.git topic"
  "op_force r3.git topic" "op_delete r3.git" "op_push r1.git main" "op_recreate r3.git"
  "op_push r3.git main" "op_head grp/r2.git refs/heads/feature" "op_branch r1.git x/y/z" "op_df r1.git"
  "op_gc r3.git" "op_push grp/r2.git feature" "op_tag r1.git light HEAD~1" "op_push r1.git main"
)
for rel in $REPOS; do mkdir -p "$T/hist/$rel"; live_state "$T/root/$rel" > "$T/hist/$rel/000.state"; done
declare -a TS_US   # step -> a time after its archive settled, before the next step
TS_US[0]=$(pitr_now_us)
k=0
# Records expected per repository: a change is exactly one record, a no-change (gc, pack-refs)
# none. Each change is waited for until the archive holds the live state (nothing more is then
# written for that repository until it changes again); a record a no-change step wrongly wrote
# shows as a count off by one at that repository's next change, or at the end.
declare -A WANT
for rel in $REPOS; do WANT[$rel]=$(count_log "$L" "event=(segment|full) repo=$rel "); done
for s in "${STEPS[@]}"; do
  k=$((k + 1))
  set -- $s; rel=$2
  eval "$s" || fail "step $k ($s) failed"
  f=$(printf '%s/hist/%s/%03d.state' "$T" "$rel" "$k")
  live_state "$T/root/$rel" > "$f"
  if ! cmp -s "$f" "$(ls "$T/hist/$rel/"*.state | sort | tail -2 | head -1)"; then
    wait_archived 60 "$rel" || fail "step $k ($s): not archived: $(tail -3 "$L")"
    if [ "$1" = op_recreate ]; then
      WANT[$rel]=$(count_log "$L" "event=(segment|full) repo=$rel ")   # a full backup, then its push
    else
      WANT[$rel]=$((WANT[$rel] + 1))
      [ "$(count_log "$L" "event=(segment|full) repo=$rel ")" -eq "${WANT[$rel]}" ] ||
        fail "step $k ($s): not exactly one record since $rel's last change: $(grep "repo=$rel " "$L" | tail -3)"
    fi
  fi
  TS_US[$k]=$(pitr_now_us)
done
wait_archived 60 $REPOS || fail "the archive does not reach the live state"
for rel in $REPOS; do
  [ "$(count_log "$L" "event=(segment|full) repo=$rel ")" -eq "${WANT[$rel]}" ] ||
    fail "$rel: a no-change step was archived: $(grep "repo=$rel " "$L" | tail -3)"
done
grep -E 'event=(error|chain_break)' "$L" && fail "errors logged (above)"
pass "$k steps archived while the service ran"
archiver_stop "$L"

for rel in $REPOS; do
  assert_replay "$rel" "$T/root/$rel"
  python3 - "$T/hist/$rel" "$T/replay.$(enc_rel "$rel")/states" "$rel" <<'PY' || fail "$rel: the replay skips a recorded state"
import os, sys
hist, states, rel = sys.argv[1], sys.argv[2], sys.argv[3]
rec = [open(os.path.join(hist, f)).read() for f in sorted(os.listdir(hist))]
lsns = sorted(int(f.split(".")[0]) for f in os.listdir(states) if f[0].isdigit())
rep = [open(os.path.join(states, "%d.state" % l)).read() for l in lsns]
j = 0
for i, s in enumerate(rec):
    while j < len(rep) and rep[j] != s:
        j += 1
    if j == len(rep):
        sys.exit("FAIL: %s: recorded state #%d is not reached by the replay (after LSN %d, in order):\n%s" %
                 (rel, i, lsns[min(len(lsns) - 1, 0 if i == 0 else j - 1)], s))
print("%s: %d recorded states found in %d replayed records" % (rel, len(rec), len(rep)))
PY
done
pass "replaying the archive passes through every recorded state, in order, and ends at the live state"

# Point-in-time restore of everything at the time after each step: the state each repository
# had then (its latest recorded state at or before the step), absent while it was deleted.
state_at() { ls "$T/hist/$1/"*.state | sort | awk -v k="$2" -F/ '{n = $NF; sub(/\.state$/, "", n); if (n + 0 <= k) f = $0} END {print f}'; }
for ((i = 0; i <= k; i++)); do
  d=$T/pitr/$i
  restore_ok "$d" --until "@$((TS_US[i] / 1000000)).$(printf %06d $((TS_US[i] % 1000000)))" >/dev/null
  for rel in $REPOS; do
    diff "$(state_at "$rel" "$i")" <(live_state "$d/$rel") >&2 || fail "restore --until after step $i: $rel differs from the truth"
    if [ -d "$d/$rel" ] && ((i % 10 == 0 || i == k)); then
      git -C "$d/$rel" fsck --full --no-progress >/dev/null 2>&1 || fail "restore --until after step $i: $rel fails fsck"
      assert_single_pack "$d/$rel"
    fi
  done
  rm -rf "$d"
done
pass "restore --until after each of the $k steps gives every repository's state at that time"
