# A policy's full backup in the service runs on a job thread while the repository's
# changes go on into the spool (DESIGN.md 10.6): pushes race the full backups that
# --full-every 1 starts after every segment is in the store. Whichever wins each race
# (the full backup gives way at its gate to a segment spooled meanwhile, or it claims
# first and the push waits for it), no LSN holds two records, the log runs 1..N with
# no gap, every recorded state restores exactly, and the audit is clean. Under load every
# race may go to the pushes (a full backup gives way to each): once they stop, the
# policy's next full backup is taken, and the test waits for it.
source "$(dirname "$0")/lib.sh"

export GITWAL_STORE=file://$T/store
CHECK="python3 $GITWAL_SOURCE_DIR/tests/integration/pitr_check.py"
L=$T/ar.log

make_repo p.git 2
# Some incompressible MiB, so that each full backup takes a while to stream.
head -c $((8 << 20)) /dev/urandom > "$T/work/p.git/bulk.bin"
git -C "$T/work/p.git" add bulk.bin && git -C "$T/work/p.git" commit -qm bulk && git -C "$T/work/p.git" push -q origin main
archiver_start "$L" --debounce 20 --reconcile 0 --full-every 1
wait_log "$L" 'event=ready' 1 60 || fail "start-up: $(cat "$L")"

# Each push right after the one before is captured: many land while a full backup streams.
PITR_SEED=5 PITR_SPOOLED_LOG=$L $CHECK drive "$T/root" "$T/work.drive" 24 120 "$T/cp.json" >/dev/null ||
  fail "pushes racing the policy's full backups were not captured: $(tail -20 "$L")"
wait_archived 120 p.git || fail "the archive did not catch up: $(tail -20 "$L")"
wait_log "$L" 'event=full repo=p\.git .*reason=segments' 1 120 ||
  fail "no policy full backup was taken once the pushes stopped: $(tail -20 "$L")"
archiver_stop "$L"
echo "policy full backups: $(count_log "$L" 'event=full repo=p\.git .*reason=segments') taken, $(count_log "$L" 'event=full_abandoned repo=p\.git ') gave way to a push"
grep -E 'event=(error|writer_conflict|spool_conflict|chain_break)' "$L" && fail "the service logged the above"
grep 'gap=1' "$L" && fail "a gap was recorded (above)"
no_lsn_twice "$T/store"
log_records p.git | python3 -c '
import sys
lsns = [int(line.split()[1]) for line in sys.stdin]
if lsns != list(range(1, len(lsns) + 1)):
    sys.exit("LSNs are not 1..N, one record each: %s" % lsns)
' || fail "the log of p.git"
$CHECK verify "$T/cp.json" "$T/restore" 0 1 || fail "point-in-time restores of the pushes racing the full backups"
rc=0; gitwal audit >"$T/audit.out" 2>&1 || rc=$?
[ $rc -eq 0 ] || fail "audit exit $rc: $(head -20 "$T/audit.out")"
pass "pushes racing policy full backups: every LSN one record, no gap, restores exact, audit clean"
