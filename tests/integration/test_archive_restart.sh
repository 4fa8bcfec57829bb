# The archiver restarted: what changed while it was down is archived at start-up as one
# segment; killed with SIGKILL at random points under continuous pushes, it resumes with
# contiguous LSNs, an intact hash chain, and an archive that replays to the live repositories.
source "$(dirname "$0")/lib.sh"

A=$T/root/a.git B=$T/root/b.git L=$T/ar.log
make_repo a.git 2
make_repo b.git 2
arch_once > "$T/run1.log"
[ "$(count_log "$T/run1.log" 'event=full')" -eq 2 ] || fail "first run: $(cat "$T/run1.log")"

# ---- changes while the archiver is down ----
repo_state "$A" > "$T/a.before"; repo_state "$B" > "$T/b.before"
push_commit a.git main
push_commit a.git side
git -C "$T/work/b.git" push -q origin HEAD:refs/tags/down-tag :refs/heads/main 2>/dev/null || true
git -C "$T/work/b.git" push -q origin HEAD:refs/heads/other 2>/dev/null
git -C "$B" symbolic-ref HEAD refs/heads/other
repo_state "$A" > "$T/a.after"; repo_state "$B" > "$T/b.after"
archiver_start "$L" --debounce 50
wait_log "$L" 'event=segment repo=b.git ' 1 20 && wait_log "$L" 'event=segment repo=a.git ' 1 20 ||
  fail "changes made while down were not archived at start-up: $(cat "$L")"
wait_archived 60 a.git b.git || fail "the archive does not reach the live state"
archiver_stop "$L"
[ "$(count_log "$L" 'event=segment')" -eq 2 ] && [ "$(count_log "$L" 'event=full')" -eq 0 ] ||
  fail "one segment per repository expected at start-up: $(cat "$L")"
assert_updates a.git 2 "$T/a.before" "$T/a.after"
assert_updates b.git 2 "$T/b.before" "$T/b.after"
pass "changes made while down: one segment each at start-up, with the difference"

# ---- SIGKILL at random points while pushes go on ----
pusher() {
  local i=0
  while [ ! -e "$T/stop-pushing" ]; do
    i=$((i + 1))
    case $((i % 5)) in
      0) git -C "$T/work/b.git" push -q origin "HEAD:refs/tags/k$i" 2>/dev/null || true ;;
      1|3) push_commit a.git main >/dev/null 2>&1 || true ;;
      2) push_commit b.git other >/dev/null 2>&1 || true ;;
      4) git -C "$T/work/a.git" push -q -f origin "HEAD~1:refs/heads/side" 2>/dev/null || true ;;
    esac
    sleep 0.0$((RANDOM % 10))
  done
}
pusher & PUSHER=$!
: > "$T/all.log"
for k in $(seq 1 10); do
  "$GITWAL_BIN" archive --debounce 20 2>"$T/k$k.log" &
  AR_PID=$!
  if [ $((k % 3)) -ne 0 ]; then wait_log "$T/k$k.log" 'event=start' 1 20 || fail "restart $k: no start: $(cat "$T/k$k.log")"; fi
  sleep "0.$(printf '%03d' $((RANDOM % 300)))"
  archiver_kill
  cat "$T/k$k.log" >> "$T/all.log"
done
touch "$T/stop-pushing"; wait "$PUSHER"
echo "killed 10 times; $(count_log "$T/all.log" 'event=segment') segments written in between"
[ "$(count_log "$T/all.log" 'event=segment')" -ge 1 ] || fail "no segment was written between the kills"

arch_once > "$T/final.log"
cat "$T/final.log" >> "$T/all.log"
grep -E 'event=(error|chain_break)' "$T/all.log" && fail "errors or chain breaks after restarts (above)"
grep -q 'event=full' "$T/all.log" && fail "a restart took a new full backup: $(grep event=full "$T/all.log")"

for rel in a.git b.git; do
  # Store keys: LSN 1 is the full backup, then one segment per LSN, contiguous, none twice.
  arch_keys "$rel" > "$T/keys"
  python3 - "$T/keys" <<'PY' || fail "store keys of $rel: $(cat "$T/keys")"
import re, sys
keys = open(sys.argv[1]).read().split()
lsns = {}
for k in keys:
    m = re.fullmatch(r"(\d{20})\.(seg|full\.bundle|full\.idx|full\.manifest)", k)
    if not m:
        sys.exit("unexpected key %s" % k)
    lsns.setdefault(int(m.group(1)), []).append(m.group(2))
n = max(lsns)
if sorted(lsns) != list(range(1, n + 1)):
    sys.exit("LSNs not contiguous: %s" % sorted(lsns))
# The full backup's claim on LSN 1 is its .seg key (DESIGN.md 3).
if sorted(lsns[1]) != ["full.bundle", "full.idx", "full.manifest", "seg"]:
    sys.exit("LSN 1: %s" % lsns[1])
for l in range(2, n + 1):
    if lsns[l] != ["seg"]:
        sys.exit("LSN %d: %s" % (l, lsns[l]))
PY
  assert_replay "$rel" "$T/root/$rel"
  arch_log "$rel" > "$T/log.before.json"
  gitwal index rebuild >/dev/null 2>"$T/rebuild.err" || fail "index rebuild: $(cat "$T/rebuild.err")"
  arch_log "$rel" > "$T/log.after.json"
  diff "$T/log.before.json" "$T/log.after.json" >&2 || fail "$rel: log differs after index rebuild"
  [ "$(grep -c '"lsn"' "$T/log.after.json")" -eq "$(sed -n 's/^0*\([0-9][0-9]*\)\..*/\1/p' "$T/keys" | sort -un | wc -l)" ] ||
    fail "$rel: gitwal log does not show every stored record"
  pass "$rel: $(grep -c '"lsn"' "$T/log.after.json") records, contiguous LSNs, replays to the live repository, same log after index rebuild"
done

# The hash chain holds: an archiver started now resumes the chain (no break, no full backup).
push_commit a.git main
arch_once > "$T/resume.log"
grep -Eq 'event=(full|chain_break|error)' "$T/resume.log" && fail "resume after rebuild: $(cat "$T/resume.log")"
grep -q 'event=segment repo=a.git ' "$T/resume.log" || fail "resume after rebuild: no segment: $(cat "$T/resume.log")"
assert_replay a.git "$A"
pass "hash chain intact: resumed after the kills and an index rebuild"

# ---- a crash after a segment is stored but before the local object set records its objects ----
# (what a SIGKILL in that window leaves: the segment in the store, added.oids without its ids).
# The next segment must still carry only new objects (or the archiver must start a new
# generation): the object set is a cache and the store is the truth.
oids=$GITWAL_STATE_DIR/archive/$(enc_rel a.git)/added.oids
[ -f "$oids" ] || fail "no object set at $oids (layout changed? update this test)"
size0=$(stat -c %s "$oids")
push_commit a.git crash
arch_once > "$T/crash1.log"
grep -q 'event=segment repo=a.git .*objects=3 ' "$T/crash1.log" || fail "crash setup: $(cat "$T/crash1.log")"
truncate -s "$size0" "$oids"
git -C "$A" update-ref refs/heads/crash-copy refs/heads/crash
arch_once > "$T/crash2.log"
grep -q 'event=segment repo=a.git ' "$T/crash2.log" || grep_all -q 'event=full repo=a.git ' "$T/crash2.log" ||
  fail "the change after the crash was not archived: $(cat "$T/crash2.log")"
assert_replay a.git "$A"
pass "crash between store write and object-set update: no object archived twice"
