# Full backups never hold the archive loop (DESIGN.md 10.6): the archive service on
# an Object Lock bucket through tests/faultproxy.py, with a policy full backup after
# every segment (--full-every 1). The store stalls (the proxy reads requests and never
# answers) first under pol.git's policy full backup (its listing, before its claim),
# then under new.git's first full backup (its claim), then everywhere. While both are
# stalled in flight, pushes to c.git (a third repository) and to pol.git are captured
# into the spool at once, and the store is reported unhealthy; new.git waits. Once the
# stall is released, every recorded state restores exactly with `restore --until`,
# no gap was recorded, no key has a second version and the audit is clean. Prints the
# time from the first stall to gitwal_store_healthy 0 and the pushes' capture lag.
source "$(dirname "$0")/lib.sh"
s3_require
fp_start
CHECK="python3 $GITWAL_SOURCE_DIR/tests/integration/pitr_check.py"
bucket=$(s3_bucket lock)
# A stalled attempt is abandoned after 5 s of waiting for an answer (1 s idle marks the
# store unhealthy at once): the full backups stay in flight through the pushes below.
export GITWAL_STORE="s3://$bucket/p?endpoint=$FP_ENDPOINT&region=us-east-1&path_style=true&lock=governance&retain=1h&retries=2&connect_timeout=1s&stall_timeout=1s&first_byte_timeout=5s&deadline=40s"
L=$T/ar.log
CP=$T/cp.json

port() { sed -n 's/.*event=metrics .*port=\([0-9]*\).*/\1/p' "$L" | head -n 1; }
metric() { curl -fsS --noproxy '*' "http://127.0.0.1:$(port)/metrics" | awk -v n="$1" '$1 == n {print $2}'; }
# spooled REL: how many segments of REL the service captured so far.
spooled() { count_log "$L" "event=spooled repo=$1 "; }
# push_spooled REL: one pushed commit, then until the service captured it (60 s), then a checkpoint.
push_spooled() {
  local n
  n=$(spooled "$1")
  push_commit "$1"
  wait_log "$L" "event=spooled repo=$1 " $((n + 1)) 60 || fail "$1: the push was not captured during the stall: $(tail -20 "$L")"
  $CHECK checkpoint "$T/root" "$CP" "push $1 during the stall" pol.git c.git
}
# ts_us LINE: the ts= of a log line, in microseconds since the epoch.
ts_us() { python3 -c 'import sys, datetime; t = sys.argv[1].split("ts=", 1)[1].split(" ", 1)[0]; print(int(datetime.datetime.fromisoformat(t.replace("Z", "+00:00")).timestamp() * 1e6))' "$1"; }

make_repo pol.git 2
make_repo c.git 2
archiver_start "$L" --debounce 20 --reconcile 0 --full-every 1 --metrics-addr 127.0.0.1:0
wait_log "$L" 'event=ready' 1 60 || fail "start-up: $(cat "$L")"
[ "$(count_log "$L" 'event=full .*reason=initial')" = 2 ] || fail "start-up full backups: $(cat "$L")"
$CHECK checkpoint "$T/root" "$CP" start pol.git c.git

# pol.git's policy full backup stalls on its first request (the listing for its LSN), before its claim.
fp_rules '[{"fault":"stall","method":"GET","path":"prefix=p%2Frepos%2Fpol\\.git%2F"}]'
push_commit pol.git
wait_log "$L" 'event=segment repo=pol.git ' 1 30 || fail "pol.git's segment: $(tail -20 "$L")"
$CHECK checkpoint "$T/root" "$CP" "push pol.git" pol.git c.git
for _ in $(seq 600); do [ "$(fp_count 'fault stall GET .*pol\.git')" -ge 1 ] && break; sleep 0.05; done
[ "$(fp_count 'fault stall GET .*pol\.git')" -ge 1 ] || fail "pol.git's policy full backup never listed: $(tail -20 "$L")"
first_stall=$(grep -m1 ' fault stall ' "$FP_DIR/log" | cut -d' ' -f1)
# From here, the first moment /metrics says the store is unhealthy (sampled every 50 ms).
( for _ in $(seq 1200); do
    [ "$(metric gitwal_store_healthy)" = 0 ] && { pitr_now_us > "$T/unhealthy.tmp"; mv "$T/unhealthy.tmp" "$T/unhealthy"; exit 0; }
    sleep 0.05
  done ) &
AR_PIDS="${AR_PIDS:-} $!"

# new.git's first full backup stalls on its claim.
fp_rules '[{"fault":"stall","method":"GET","path":"prefix=p%2Frepos%2Fpol\\.git%2F"},
           {"fault":"stall","method":"PUT","path":"new\\.git/0+1\\.seg$"}]'
make_repo new.git 1
for _ in $(seq 1200); do [ "$(fp_count 'fault stall PUT .*new\.git/0+1\.seg')" -ge 1 ] && break; sleep 0.05; done
[ "$(fp_count 'fault stall PUT .*new\.git/0+1\.seg')" -ge 1 ] || fail "new.git's full backup never claimed: $(tail -20 "$L")"

# Everything stalls now; both full backups are in flight.
fp_rules '[{"fault":"stall"}]'
t0=$(pitr_now_us)
push_spooled c.git
c_line=$(grep 'event=spooled repo=c.git ' "$L" | tail -1)
push_spooled pol.git
push_spooled c.git
push_spooled pol.git
for _ in $(seq 600); do [ -s "$T/unhealthy" ] && break; sleep 0.05; done
[ -s "$T/unhealthy" ] || fail "the store was never reported unhealthy during the stall"
[ "$(metric gitwal_store_healthy)" = 0 ] || fail "the store is reported healthy while everything stalls"
grep -q 'event=full repo=new\.git ' "$L" && fail "new.git's full backup went through a stalled store"
awk -v a="$first_stall" -v u="$(cat "$T/unhealthy")" \
  'BEGIN {printf "measured: gitwal_store_healthy 0 %.2f s after the first stall (sampled every 50 ms)\n", u / 1e6 - a}'
echo "measured: c.git's first push during the stall spooled $(( ($(ts_us "$c_line") - t0) / 1000 )) ms after it began ($(sed -n 's/.*\(lag_ms=[0-9.]*\).*/\1/p' <<<"$c_line") from the change seen)"
grep -E 'event=spooled repo=(c|pol)\.git ' "$L" | tail -4 | sed -n 's/.*repo=\([^ ]*\) .*\(lag_ms=[0-9.]*\).*/measured: \1 spooled, \2/p'
pass "store stalled under two full backups: pushes to c.git and pol.git captured at once, store unhealthy"

# The stall ends: what was stalled is abandoned by its own time limits and sent again.
fp_rules '[]'
wait_log "$L" 'event=full repo=new\.git .*reason=initial' 1 120 || fail "new.git's full backup after the stall: $(tail -20 "$L")"
wait_log "$L" 'event=full repo=pol\.git .*reason=segments' 1 120 || fail "pol.git's policy full backup after the stall: $(tail -20 "$L")"
wait_archived 120 pol.git c.git new.git || fail "the archive did not catch up after the stall: $(tail -20 "$L")"
$CHECK checkpoint "$T/root" "$CP" "after the stall" pol.git c.git new.git
echo "pol.git's policy full backups: $(count_log "$L" 'event=full repo=pol\.git .*reason=segments') taken, $(count_log "$L" 'event=full_abandoned repo=pol\.git ') gave way to a push"
archiver_stop "$L"
grep 'event=writer_conflict' "$L" && fail "a writer conflict (above)"
grep 'gap=1' "$L" && fail "a gap was recorded (above)"
$CHECK verify "$CP" "$T/restore" 0 1 || fail "point-in-time restores of the states recorded around the stall"
rc=0; gitwal audit >"$T/audit.out" 2>&1 || rc=$?
[ $rc -eq 0 ] || fail "audit exit $rc: $(head -20 "$T/audit.out")"
grep -i 'version' "$T/audit.out" && fail "the audit reports versions (above)"
pass "after the stall: every recorded state restores exactly, no gap, no second version, audit clean"
