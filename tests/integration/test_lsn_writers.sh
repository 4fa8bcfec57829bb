# One LSN, one record (DESIGN.md 3): the archiver service, a `gitwal backup --all` loop
# and random pushes together, on the file store and (when the test radosgw runs) on S3.
# Every backup succeeds, no LSN holds two records, 100 random point-in-time restores (60 on
# the file store, 40 on S3; 100 on the file store alone without S3) are exact, and the audit
# is clean. Then a second service on the same store and root: on the
# first LSN it loses to the other, it stops writing that repository and says so, and the
# archive stays exact.
# GITWAL_STRESS_SECONDS (default 20) bounds each load phase; GITWAL_STRESS_STEPS by count.
source "$(dirname "$0")/lib.sh"

SECS=${GITWAL_STRESS_SECONDS:-20}
STEPS=${GITWAL_STRESS_STEPS:-150}
CHECK="python3 $GITWAL_SOURCE_DIR/tests/integration/pitr_check.py"

# load STORE LABEL RESTORES: the service, a backup loop and the pushes; then the checks.
load() {
  local store=$1 label=$2 restores=$3 stop=$T/stop.$2 L=$T/ar.$2.log i rc=0
  export GITWAL_STORE=$store GITWAL_STATE_DIR=$T/state.$label
  rm -f "$stop"
  archiver_start "$L" --debounce 20
  wait_log "$L" 'event=full .*reason=initial' 4 60 || fail "$label: start-up: $(cat "$L")"
  # A cron-like `backup --all`, as fast as it goes, beside the service.
  ( n=0; while [ ! -e "$stop" ]; do
      gitwal backup --all >>"$T/bk.$label.out" 2>>"$T/bk.$label.err" || { echo "backup --all failed" >>"$T/bk.$label.err"; exit 1; }
      n=$((n + 1))
    done; echo "$n" > "$T/bk.$label.count" ) &
  local bk=$!
  $CHECK drive "$T/root" "$T/work.$label" "$STEPS" "$SECS" "$T/cp.$label.json" || rc=$?
  touch "$stop"
  wait "$bk" || fail "$label: a backup --all failed: $(tail -5 "$T/bk.$label.err")"
  [ $rc -eq 0 ] || fail "$label: driving the pushes failed"
  archiver_stop "$L"
  grep -E 'event=(error|writer_conflict)' "$L" && fail "$label: the service logged errors (above)"
  [ "$(cat "$T/bk.$label.count")" -ge 2 ] || fail "$label: the backup loop ran $(cat "$T/bk.$label.count") times"
  grep -c '^ok ' "$T/bk.$label.out" | sed "s/^/$label: backups beside the service: /"
  $CHECK verify "$T/cp.$label.json" "$T/restore.$label" "$restores" 7 || fail "$label: point-in-time restores"
  rc=0; gitwal audit >"$T/audit.$label" 2>&1 || rc=$?
  [ $rc -eq 0 ] || fail "$label: audit exit $rc: $(head -20 "$T/audit.$label")"
  grep '^warning' "$T/audit.$label" | grep -v 'kind=unenforced' && fail "$label: audit warnings (above)"
  # A fresh machine: the index rebuilt from the store alone gives the same restores.
  export GITWAL_STATE_DIR=$T/state.$label.fresh
  $CHECK verify "$T/cp.$label.json" "$T/restore.$label.fresh" 10 11 || fail "$label: restores from a fresh index"
  pass "$label: service + backup loop + pushes: every LSN one record, restores exact, audit clean"
}

for r in a.git b.git g/c.git g/d.git; do make_repo "$r" 3; done

load "file://$T/store" file "$([ -n "${GITWAL_TEST_S3_ENDPOINT:-}" ] && echo 60 || echo 100)"
no_lsn_twice "$T/store"

# ---- two services on one store and root: each repository keeps one writer ----
export GITWAL_STORE="file://$T/store" GITWAL_STATE_DIR=$T/state.file
L1=$T/two.1.log L2=$T/two.2.log
archiver_start "$L1" --debounce 20; P1=$AR_PID
GITWAL_STATE_DIR=$T/state.two archiver_start "$L2" --debounce 20; P2=$AR_PID
AR_PIDS="$P1 $P2"; AR_PID=
for r in a.git b.git; do   # (the load above pushed from other clones)
  git -C "$T/work/$r" fetch -q origin && git -C "$T/work/$r" checkout -q main && git -C "$T/work/$r" reset -q --hard origin/main
  push_commit "$r" main
done
# The archive reaches the live state: for each repository, one of them writes it.
$CHECK drive "$T/root" "$T/work.two" 12 60 "$T/cp.two.json" || fail "two services: the archive does not follow the pushes"
# Both saw every change; for each repository the one that lost an LSN stopped writing it, once.
for log in "$L1" "$L2"; do grep -E 'event=error ' "$log" | grep -v 'another writer archives it' && fail "unexpected errors (above)"; done
for r in a.git b.git; do
  conflicts=$(cat "$L1" "$L2" | grep -c "event=writer_conflict repo=$r " || true)
  [ "$conflicts" -le 1 ] || fail "$r: $conflicts writer conflicts, expected 1: $(cat "$L1" "$L2" | grep "repo=$r ")"
done
AR_PIDS=; AR_PID=$P1 archiver_stop "$L1"; AR_PID=$P2 archiver_stop "$L2"
$CHECK verify "$T/cp.two.json" "$T/restore.two" 10 3 || fail "two services: restores"
rc=0; gitwal audit >"$T/audit.two" 2>&1 || rc=$?
[ $rc -eq 0 ] || fail "two services: audit exit $rc: $(head -20 "$T/audit.two")"
no_lsn_twice "$T/store"
[ "$(cat "$L1" "$L2" | grep -c 'event=writer_conflict')" -ge 1 ] || fail "two services: neither lost an LSN"
grep -h 'event=writer_conflict' "$L1" "$L2" | head -3
pass "two services on one store: one writer per repository, restores exact, audit clean"

if [ -n "${GITWAL_TEST_S3_ENDPOINT:-}" ]; then
  s3_require
  load "$(s3_url "$(s3_bucket)" lsn)" s3 40
else
  echo "skipped the S3 part: GITWAL_TEST_S3_ENDPOINT is not set"
fi
