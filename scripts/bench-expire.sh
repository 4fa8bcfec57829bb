#!/usr/bin/env bash
# Retention planning at scale: `gitwal expire --dry-run` over REPOS (1,000)
# repositories with SEGS (10,000) records each, against the bar "plans in
# under 2 s", and the store requests of the plan (none: it reads the index).
#
#   scripts/bench-expire.sh
#
# Data (made once, cached under BENCH_DIR, default /tmp/gitwal-bench-expire):
# REPOS copies of a one-commit repository backed up by a real `gitwal backup
# --all` (one full backup each, in a file store), then the index loaded by
# tests/gitwal-bench-index with SEGS records per repository 10 us apart, every
# FULL_EVERY-th (1,000) a full backup: ten generations of a thousand records.
# The records exist in the index only, which is all that planning reads.
#
# Timed (median of RUNS, after one untimed run): the dry run, with "now"
# fixed (GITWAL_TEST_EXPIRE_NOW) just after the newest record and a window of
# half the history, so every repository has about half its records to expire.
# Checked, untimed: the JSON plan names every repository and each plan keeps
# the newest full backup at or before the window's start; the summary's
# request count is 0.
#
# Environment: GITWAL_BIN, BENCH_DIR, REPOS, SEGS, FULL_EVERY, RUNS,
# GITWAL_BENCH_INDEX (default: tests/gitwal-bench-index beside GITWAL_BIN's build).
# Exit status: 0 when the bar passes, 1 when it fails, 2 on an error.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/bench-lib.sh"

bench_defaults BENCH_DIR=/tmp/gitwal-bench-expire REPOS=1000 SEGS=10000 FULL_EVERY=1000 RUNS=3
bench_gitwal_bin
gen=${GITWAL_BENCH_INDEX:-$(dirname "$GITWAL_BIN")/tests/gitwal-bench-index}
((SEGS >= 400)) || die "SEGS=$SEGS: at least 400 (the window, half the history at 10 us a record, is whole milliseconds)"
[[ -x $gen ]] || die "needs $gen (built by scripts/build.sh release; or set GITWAL_BENCH_INDEX)"
bench_setup_run run
d=$BENCH_DIR/data-${REPOS}x${SEGS}-f${FULL_EVERY}

if [[ ! -f $d/done ]]; then
  note "generating $REPOS repositories x $SEGS records (a full backup every $FULL_EVERY) in $d (once)"
  t0=$(now)
  bench_seed_repos "$d" "$REPOS"
  "$GW" backup --all --quiet --root "$d/root" --store "file://$d/store" --index "$d/index.db" >"$d/backup.log" 2>&1 ||
    die "gitwal backup failed: $(tail -n 3 "$d/backup.log")"
  "$gen" "$d/index.db" "$SEGS" "$FULL_EVERY" 2>"$d/gen.log" || die "loading the index failed: $(tail -n 3 "$d/gen.log")"
  touch "$d/done"
  setups+=("$REPOS repositories x $SEGS records|$(elapsed "$t0")")
fi

# "now" just after the newest record; the window half the history (10 us a record).
newest=$(python3 - "$d/index.db" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
print(max(db.execute("SELECT max(time_last_us) FROM segments").fetchone()[0],
          db.execute("SELECT max(time_us) FROM fulls").fetchone()[0]))
PY
)
now_us=$((newest + 1000))
window_us=$((SEGS * 10 / 2))
export GITWAL_TEST_EXPIRE_NOW="@$((now_us / 1000000)).$(printf '%06d' $((now_us % 1000000)))"
window="$((window_us / 1000))ms"
args=(expire --keep-within "$window" --dry-run --store "file://$d/store" --index "$d/index.db")

note "expire --dry-run --keep-within $window at $GITWAL_TEST_EXPIRE_NOW over $REPOS repositories; load $(loadavg)"
"$GW" "${args[@]}" --json >"$run/plan.json" 2>"$run/plan.err" || die "expire --dry-run failed: $(tail -n 3 "$run/plan.err")"
python3 - "$run/plan.json" "$REPOS" <<'PY' || die "the plan is not what the data asks for"
import json, sys
d = json.load(open(sys.argv[1]))
repos = d["repositories"]
assert len(repos) == int(sys.argv[2]), f'{len(repos)} repositories planned, {sys.argv[2]} expected'
for r in repos:
    assert r["action"] == "prefix" and r["lsn_from"] == 1 and r["kept_lsn"] > r["lsn_to"], r
print(f'plan: {len(repos)} repositories, LSNs 1..{min(r["lsn_to"] for r in repos)}-{max(r["lsn_to"] for r in repos)} to expire',
      file=sys.stderr)
PY
"$GW" "${args[@]}" >/dev/null 2>"$run/summary.err" || die "expire --dry-run failed"
for ((i = 0; i < RUNS; i++)); do timed "$run/t.plan" "$GW" "${args[@]}"; done

secs=$(median "$run/t.plan")
echo
echo "gitwal expire --dry-run: $REPOS repositories x $SEGS records (a full backup every $FULL_EVERY), window $window"
echo "2 cores; load at end $(loadavg); median of $RUNS warm runs [$(runs_of "$run/t.plan")] s; peak RSS $(max_rss_mib "$run/t.plan") MiB"
echo "summary: $(tail -n 1 "$run/summary.err")"
print_setups 40
v=$(verdict le "$secs" 2.0)
echo "$v plan $REPOS repositories x $SEGS records in $secs s (bar: under 2 s)"
[[ $v == PASS ]]
