# Observation never waits on the store (DESIGN.md 10.6). With the file store
# away (its directory replaced by a file: writes and reads fail, for root
# too), the service goes on capturing every push into its spool with the
# time it saw it; /metrics says so (store unhealthy, spool growing, the last
# time durable in the store not moving); a repository created meanwhile gets
# its full backup on its own backoff once the store is back (no reconcile);
# after the spool drained, `restore --until` every recorded moment of the
# outage gives exactly the state then, no gap is recorded, and the audit is
# clean. Then one repository whose store directory is broken does not delay
# another, and both keep their true times; and a service started with the
# store away starts, spools and uploads when it returns.
source "$(dirname "$0")/lib.sh"

CHECK="python3 $GITWAL_SOURCE_DIR/tests/integration/pitr_check.py"
export GITWAL_STORE=file://$T/store
L=$T/svc.log

# sync_work REL: its working clone on the repository's main again (the checker pushed from others).
sync_work() {
  git -C "$T/work/$1" fetch -q origin && git -C "$T/work/$1" checkout -q main &&
    git -C "$T/work/$1" reset -q --hard origin/main
}
store_down() { mv "$T/store" "$T/store.away" && touch "$T/store"; }
store_up() { rm "$T/store" && mv "$T/store.away" "$T/store"; }
port() { sed -n 's/.*event=metrics .*port=\([0-9]*\).*/\1/p' "$L" | head -n 1; }
# metric NAME: its value in a fresh scrape.
metric() { curl -fsS --noproxy '*' "http://127.0.0.1:$(port)/metrics" | awk -v n="$1" '$1 == n {print $2}'; }
# wait_metric NAME AWK-CONDITION (on v): until the scraped value satisfies it (90 s: a retry's backoff).
wait_metric() {
  local i v
  for i in $(seq 1800); do
    v=$(metric "$1")
    [ -n "$v" ] && awk -v v="$v" "BEGIN {exit !($2)}" && return 0
    sleep 0.05
  done
  fail "metric $1 = '$v' never satisfied $2: $(tail -5 "$L")"
}

for r in a.git b.git g/c.git; do make_repo "$r" 2; done
archiver_start "$L" --debounce 20 --reconcile 0 --metrics-addr 127.0.0.1:0
wait_log "$L" 'event=full ' 3 60 || fail "initial full backups: $(cat "$L")"
$CHECK drive "$T/root" "$T/work.before" 4 60 "$T/cp.before.json" >/dev/null || fail "pushes before the outage"
wait_metric gitwal_store_healthy 'v == 1'
wait_metric gitwal_spool_segments 'v == 0'
durable=$(metric gitwal_last_segment_timestamp_seconds)
awk -v v="$durable" 'BEGIN {exit !(v > 0)}' || fail "no segment durable in the store before the outage"

# ---- the outage: every push is captured, with its time ----
store_down
PITR_SEED=3 PITR_SPOOLED_LOG=$L $CHECK drive "$T/root" "$T/work.outage" 14 120 "$T/cp.outage.json" >/dev/null ||
  fail "pushes during the outage were not captured: $(tail -20 "$L")"
wait_log "$L" 'event=upload_failed ' 1 30 || fail "no failed upload during the outage"
wait_metric gitwal_store_healthy 'v == 0'
n1=$(metric gitwal_spool_segments)
awk -v v="$n1" 'BEGIN {exit !(v >= 10)}' || fail "spool holds $n1 segments during the outage: $(tail -20 "$L")"
awk -v v="$(metric gitwal_spool_bytes)" 'BEGIN {exit !(v > 0)}' || fail "spool bytes not counted"
awk -v v="$(metric gitwal_spool_oldest_age_seconds)" 'BEGIN {exit !(v > 0)}' || fail "oldest spooled age is 0"
[ "$(metric gitwal_last_segment_timestamp_seconds)" = "$durable" ] ||
  fail "last durable time moved during the outage: $durable -> $(metric gitwal_last_segment_timestamp_seconds)"
awk -v s="$(metric gitwal_last_spooled_timestamp_seconds)" -v d="$durable" 'BEGIN {exit !(s > d)}' ||
  fail "last spooled time did not move past the last durable one"
awk -v v="$(metric 'gitwal_errors_total{kind="store"}')" 'BEGIN {exit !(v >= 1)}' || fail "store errors not counted"
# One more push while the store is away: the spool grows.
make_repo d.git 1   # new: its full backup waits for the store
git -C "$T/work.outage/a.git" fetch -q origin && git -C "$T/work.outage/a.git" checkout -q -B x origin/main
echo more >> "$T/work.outage/a.git/more.txt" && git -C "$T/work.outage/a.git" add -A &&
  git -C "$T/work.outage/a.git" commit -qm more && git -C "$T/work.outage/a.git" push -q origin x:refs/heads/main
wait_metric gitwal_spool_segments "v > $n1"
wait_log "$L" 'event=error repo=d.git retry_ms=' 1 30 || fail "d.git: no error while the store is away: $(tail -5 "$L")"
pass "outage: pushes captured into the spool; metrics: store unhealthy, spool growing, last durable time still"

store_up
wait_metric gitwal_spool_segments 'v == 0'
wait_metric gitwal_store_healthy 'v == 1'
wait_log "$L" 'event=full repo=d.git ' 1 90 || fail "d.git not backed up after the store returned (its backoff): $(tail -5 "$L")"
awk -v v="$(metric gitwal_last_segment_timestamp_seconds)" -v d="$durable" 'BEGIN {exit !(v > d)}' ||
  fail "last durable time did not move after the outage"
[ "$(metric gitwal_gaps_total)" = 0 ] || fail "a gap was recorded: $(grep gap=1 "$L")"
grep -q 'event=store_healthy' "$L" || fail "no event=store_healthy"
$CHECK verify "$T/cp.outage.json" "$T/restore.outage" 0 1 || fail "restores of the outage's moments"
$CHECK verify "$T/cp.before.json" "$T/restore.before" 0 1 || fail "restores of the moments before the outage"
rc=0; gitwal audit >"$T/audit" 2>&1 || rc=$?
[ $rc -eq 0 ] || fail "audit exit $rc after the outage: $(head -20 "$T/audit")"
pass "after the outage: every recorded moment restores exactly, no gap, audit clean"

# ---- one repository stuck on a store failure does not delay another ----
enc=$(enc_rel b.git)
mv "$T/store/repos/$enc" "$T/b.away" && touch "$T/store/repos/$enc"
sync_work b.git; sync_work g/c.git; sync_work a.git
t_b=$(pitr_now_us)
push_commit b.git
wait_log "$L" 'event=upload_failed repo=b.git ' 1 30 || fail "b.git: no failed upload: $(tail -5 "$L")"
nb=$(count_log "$L" 'event=segment repo=b.git ')
nc=$(count_log "$L" 'event=segment repo=g/c.git ')   # before the push: its segment may come at once
t_c=$(pitr_now_us)
push_commit g/c.git
want_c=$(repo_state "$T/root/g/c.git")
wait_log "$L" "event=segment repo=g/c.git " $((nc + 1)) 30 ||
  fail "g/c.git waited for b.git: $(tail -10 "$L")"
[ "$(count_log "$L" 'event=segment repo=b.git ')" = "$nb" ] || fail "b.git was uploaded while its directory is broken"
rm "$T/store/repos/$enc" && mv "$T/b.away" "$T/store/repos/$enc"
wait_log "$L" 'event=segment repo=b.git ' $((nb + 1)) 90 || fail "b.git not uploaded on its backoff: $(tail -5 "$L")"
# Both stamped when they were seen, not when the store took them.
log_records b.git g/c.git | python3 -c '
import sys
t_b, t_c = int(sys.argv[1]), int(sys.argv[2])
last = {}
for line in sys.stdin:
    rel, lsn, kind, t = line.split()
    last[rel] = int(t)
for rel, t0 in (("b.git", t_b), ("g/c.git", t_c)):
    if not 0 <= last[rel] - t0 < 3000000:
        sys.exit("%s: its last record is stamped %d us after the push" % (rel, last[rel] - t0))
' "$t_b" "$t_c" || fail "a repository's time is not the time it was seen"
restore_ok "$T/r.c" --repo g/c.git >/dev/null
diff <(echo "$want_c") <(repo_state "$T/r.c/g/c.git") >&2 || fail "g/c.git restore"
restore_ok "$T/r.b" --repo b.git >/dev/null
assert_same_repo "$T/root/b.git" "$T/r.b/b.git"
pass "one repository stuck on the store does not delay another; both keep their true times"
archiver_stop "$L"

# ---- a full backup takes the LSN of a spooled segment while the store is away from the service ----
archiver_start "$L" --debounce 20 --reconcile 0 --metrics-addr 127.0.0.1:0
# Loaded from the store first: a push while a.git's state could not be loaded is (rightly) a gap.
wait_log "$L" 'event=ready' 1 60 || fail "start-up: $(cat "$L")"
store_down
push_commit a.git
wait_log "$L" 'event=spooled repo=a.git ' 1 30 || fail "a.git: nothing spooled: $(tail -5 "$L")"
lsn=$(grep 'event=spooled repo=a.git ' "$L" | tail -1 | sed -n 's/.* lsn=\([0-9]*\).*/\1/p')
# `gitwal backup` on another host, which reaches the store: it claims that LSN.
GITWAL_STORE=file://$T/store.away GITWAL_STATE_DIR=$T/state.other backup_ok a.git | grep_all -q " lsn=$lsn " ||
  fail "the other host's backup did not take LSN $lsn"
store_up
wait_log "$L" "event=spool_conflict repo=a.git lsn=$lsn taken_by=full_backup action=set_aside segments=1 " 1 90 ||
  fail "no spool conflict: $(tail -10 "$L")"
ls "$GITWAL_STATE_DIR/spool-conflicts/" | grep_all -q '^a\.git\.' || fail "the segment was not set aside"
[ "$(metric gitwal_gaps_total)" = 0 ] || fail "a gap was recorded although the full backup holds the change"
push_commit a.git
wait_log "$L" "event=segment repo=a.git lsn=$((lsn + 1)) " 1 30 || fail "a.git not archived after the full backup: $(tail -5 "$L")"
archiver_stop "$L"
restore_ok "$T/r.a0" --repo a.git >/dev/null
assert_same_repo "$T/root/a.git" "$T/r.a0/a.git"
pass "a full backup took a spooled segment's LSN: set aside, archived on after the full backup, no gap"

# ---- a service started with the store away starts, spools, and uploads when it returns ----
store_down
L=$T/svc2.log
archiver_start "$L" --debounce 20 --reconcile 0 --metrics-addr 127.0.0.1:0
push_commit a.git
wait_log "$L" 'event=spooled repo=a.git ' 1 30 || fail "nothing spooled with the store away at start-up: $(tail -10 "$L")"
wait_metric gitwal_store_healthy 'v == 0'
store_up
wait_log "$L" 'event=segment repo=a.git ' 1 90 || fail "not uploaded after the store returned: $(tail -10 "$L")"
archiver_stop "$L"
restore_ok "$T/r.a" --repo a.git >/dev/null
assert_same_repo "$T/root/a.git" "$T/r.a/a.git"
pass "started with the store away: spooled, then uploaded"
