# Store outages: every segment is captured into the local spool and uploaded
# from there; while the store is unreachable the spool grows, and its
# segments go up in order when the store returns, nothing lost; with a full
# spool the change waits and is archived later as a recorded gap.
source "$(dirname "$0")/lib.sh"

export GITWAL_STORE=file://$T/store
commit_push() { # REL N
  echo "$2" >> "$T/work/$1/file.txt"
  git -C "$T/work/$1" commit -qam "c$2"
  git -C "$T/work/$1" push -q origin main
}
# wait_log FILE PATTERN: wait up to 30 s for PATTERN (grep -E) in FILE.
wait_log() {
  local i
  for i in $(seq 300); do grep -Eq -- "$2" "$1" && return 0; sleep 0.1; done
  fail "timed out waiting for '$2' in $1: $(cat "$1")"
}
store_down() { mv "$T/store" "$T/store.away" && touch "$T/store"; }
store_up() { rm "$T/store" && mv "$T/store.away" "$T/store"; }

make_repo a.git 1
"$GITWAL_BIN" archive --debounce 20 --spool-max 1024 2>"$T/svc.log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null' EXIT
wait_log "$T/svc.log" 'event=full repo=a.git lsn=1'
commit_push a.git 2
wait_log "$T/svc.log" 'event=segment repo=a.git lsn=2 '

store_down
commit_push a.git 3
wait_log "$T/svc.log" 'event=spooled repo=a.git lsn=3 '
wait_log "$T/svc.log" 'event=upload_failed repo=a.git lsn=3 '
wait_log "$T/svc.log" 'event=store_unhealthy'
commit_push a.git 4
wait_log "$T/svc.log" 'event=spooled repo=a.git lsn=4 '
[ "$(ls "$GITWAL_STATE_DIR/spool/repos/a.git/")" = "$(printf '%s\n' 00000000000000000003.seg 00000000000000000004.seg)" ] ||
  fail "spool content: $(find "$GITWAL_STATE_DIR/spool" -type f)"
pass "segments spooled while the store is down"

store_up
wait_log "$T/svc.log" 'event=segment repo=a.git lsn=4 '
wait_log "$T/svc.log" 'event=store_healthy'
[ -z "$(find "$GITWAL_STATE_DIR/spool" -type f -name '*.seg')" ] || fail "spool not emptied"
commit_push a.git 5
wait_log "$T/svc.log" 'event=segment repo=a.git lsn=5 '
kill -TERM $pid; wait $pid || fail "archiver exit status $? after SIGTERM"
trap - EXIT
grep -q 'event=stop' "$T/svc.log" || fail "no stop event"

gitwal restore --until "@$(date +%s).999999" --repo a.git --to "$T/r1" >/dev/null || fail "restore after the outage"
assert_same_repo "$T/root/a.git" "$T/r1/a.git"
gitwal log --repo a.git --json > "$T/log.json"
python3 - "$T/log.json" <<'PY' || fail "log records are not contiguous 1..5"
import json, sys
recs = json.load(open(sys.argv[1]))["records"]
assert [r["lsn"] for r in recs] == [1, 2, 3, 4, 5], recs
PY
pass "spool uploaded in order; LSNs contiguous; restore equals the live repository"

# A spool too small for any segment: the change waits, and is archived as a gap once the store returns.
"$GITWAL_BIN" archive --debounce 20 --spool-max 0.000001 2>"$T/svc2.log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null' EXIT
wait_log "$T/svc2.log" 'event=ready'   # a.git's state is loaded from the store before it goes away
store_down
commit_push a.git 6
wait_log "$T/svc2.log" 'event=upload_failed repo=a.git lsn=6 '
commit_push a.git 7
wait_log "$T/svc2.log" 'event=spool_full repo=a.git'
store_up
wait_log "$T/svc2.log" 'event=segment repo=a.git lsn=7 .*gap=1'
kill -TERM $pid; wait $pid || true
trap - EXIT
gitwal archive --once 2>"$T/once.log" || fail "archive --once after the outage: $(cat "$T/once.log")"
gitwal restore --until "@$(date +%s).999999" --repo a.git --to "$T/r2" >/dev/null || fail "restore after the gap"
assert_same_repo "$T/root/a.git" "$T/r2/a.git"
pass "full spool: the state is archived when room returns"
