#!/usr/bin/env bash
# Point-in-time restore (`gitwal restore --until`) against the issue's bars.
#
#   scripts/bench-pitr.sh
#
# Bars (each measured with /usr/bin/time: wall seconds and peak RSS, warm page
# cache (one untimed run first), median of RUNS runs, then PASS/FAIL):
#   A. Restore of one full backup plus NSEG (10,000) segments takes at most
#      2x the restore of the full backup alone.
#      Data: a bare repository W (a git clone --mirror of the libgit2 bundle,
#      else scripts/gen-repo.sh with GEN_COMMITS) under a root watched by the
#      real archiver (`gitwal archive`, run as a service with --debounce
#      DEBOUNCE and a full backup policy that keeps one generation: the full
#      taken at first sight, then NSEG segments). A chain of NSEG commits
#      (each a new blob, root tree and commit on top of W's main) is built
#      beforehand with git fast-import in a side repository S (alternates to
#      W, outside the root); for each step i the objects of commit i move into
#      W (git pack-objects c_i ^c_i-1 | git unpack-objects), then
#      `git update-ref refs/heads/main c_i`, and the script waits until that
#      segment is in the store (its key, LSN full+i) before the next step, so
#      every update is a segment of its own. The log, the segment count and
#      `gitwal log --json` (one update per segment, main moving c_i-1 -> c_i,
#      in LSN order) are checked before the data is kept.
#      Timed: `gitwal restore --lsn FULL` (the full alone: the baseline) and
#      `gitwal restore --until @LAST` (the full and every segment); shown
#      beside, `gitwal restore --until @FULL_TIME` (the PITR path with no
#      segment).
#   B. Restore of the libgit2 data set at a time after its full backup: at
#      most 1/5 of `git clone --mirror` of its bundle, in the same run. The same
#      generation as A with NSEG_B (20) real archived updates; timed
#      `gitwal restore --until @LAST` against `git clone --mirror BUNDLE`.
#      Skipped (with a note) when the bundle is absent.
#   C. Planning PLAN_REPOS (1,000) repositories with PLAN_SEGS (10,000)
#      segments each in under 1 s: `restore --until T --dry-run --json` of
#      every repository (see barC below for how the data is made).
# Correctness, outside the timing, after every restore: refs (all of them)
# and HEAD equal W's (main at c_0 for the full alone, at c_NSEG otherwise),
# git fsck --connectivity-only passes, and objects/pack holds at most
# PACKS_MAX packs (the count is printed). The --dry-run --json plan must name
# the full backup and NSEG segments.
#
# Generated data is cached under BENCH_DIR (default /tmp/gitwal-bench-pitr):
# libgit2.git (the pristine mirror, sha256-stamped), generated.git, and one
# directory per data set and segment count (libgit2-n10000/, libgit2-n20/:
# root/ with W, store/, index.db, archive.log, chain, meta), so re-runs skip
# the generation. Restores go to BENCH_DIR/run (emptied at start).
#
# Environment:
#   GITWAL_BIN  the gitwal binary (default build/release/gitwal, built with
#               scripts/build.sh release if missing); copied before use
#   BENCH_DIR   cache and scratch (default /tmp/gitwal-bench-pitr)
#   BARS        which bars, default "A B C"
#   PLAN_REPOS PLAN_SEGS  bar C (1000, 10000)
#   GITWAL_BENCH_INDEX    bar C's index loader (default: tests/gitwal-bench-index
#               beside GITWAL_BIN's build)
#   RUNS        timed runs per command (default 3)
#   NSEG        bar A: segments after the full (default 10000)
#   NSEG_B      bar B: segments after the full (default 20)
#   DEBOUNCE    the archiver's --debounce in ms while generating (default 5)
#   SEG_TIMEOUT seconds to wait for one segment (default 60)
#   PACKS_MAX   most packs a restored repository may hold (default 4)
#   LIBGIT2_BUNDLE  default ../shared/data/libgit2.bundle (also /work/shared/data)
#   GEN_COMMITS bar A without the bundle: size of gen-repo.sh's history (16000)
#   PROFILE     1: `perf record` one more bar A restore (full + NSEG segments)
#               and print the top functions (default 0)
# The machine's load average is printed: results under load are noisy.
# Exit status: 0 if every measured bar passes, 1 if a bar fails, 2 on a
# correctness failure, a command that fails, or a setup error.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/bench-lib.sh"
bench_defaults BENCH_DIR=/tmp/gitwal-bench-pitr BARS="A B C" PLAN_REPOS=1000 PLAN_SEGS=10000 RUNS=3 \
  NSEG=10000 NSEG_B=20 DEBOUNCE=5 SEG_TIMEOUT=60 PACKS_MAX=4 GEN_COMMITS=16000 PROFILE=0
if [[ -z ${LIBGIT2_BUNDLE:-} ]]; then
  LIBGIT2_BUNDLE=$top/../shared/data/libgit2.bundle
  [[ -f $LIBGIT2_BUNDLE || ! -f /work/shared/data/libgit2.bundle ]] || LIBGIT2_BUNDLE=/work/shared/data/libgit2.bundle
fi

[[ -x $TIME ]] || die "$TIME is missing (apt-get install time)"
for v in RUNS NSEG NSEG_B SEG_TIMEOUT PACKS_MAX PLAN_REPOS PLAN_SEGS; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive number"
done
[[ $DEBOUNCE =~ ^[0-9]+$ ]] || die "DEBOUNCE must be a number of milliseconds"
bench_gitwal_bin
command -v python3 >/dev/null || die "python3 is required"

bench_setup_run run

rows=()    # "bar|what|gitwal s|baseline s|ratio|limit|verdict|gitwal rss|baseline rss"
details=() # lines printed under the table
failed=0
broken=()  # correctness failures

# at_us MICROSECONDS: the --until argument for that instant (@seconds.micro)
at_us() { printf '@%d.%06d' $(($1 / 1000000)) $(($1 % 1000000)); }
bad() {
  echo "bench-pitr: CORRECTNESS: $*" >&2
  broken+=("$*")
}

# measure NAME OUT CHECK CMD...: one warm-up and RUNS timed runs of CMD, each
# into a fresh OUT; CHECK OUT after each (outside the timing). Times in $run/t.NAME.
measure() {
  local name=$1 out=$2 check=$3 i
  shift 3
  : >"$run/t.$name"
  for ((i = 0; i <= RUNS; i++)); do
    rm -rf "$out"
    if ((i == 0)); then untimed "$@"; else timed "$run/t.$name" "$@"; fi
    $check "$out"
  done
  rm -rf "$out"
}

npacks() { find "$1/objects/pack" -name 'pack-*.pack' | wc -l; }
# check_restored DIR SOURCE MAIN WHAT: refs as SOURCE's but refs/heads/main at MAIN,
# HEAD as SOURCE's, fsck --connectivity-only, at most PACKS_MAX packs.
last_packs=""
check_restored() {
  local dir=$1 src=$2 main=$3 what=$4 n
  [[ -d $dir ]] || { bad "$what: $dir was not created"; return 0; }
  if ! diff <(refs_of "$src" | awk -v m="$main" '$3 == "refs/heads/main" {$1 = m} {print}') <(refs_of "$dir") \
    >"$run/refs.diff"; then
    head -n 10 "$run/refs.diff" >&2
    bad "$what: refs differ (want refs/heads/main at $main)"
  fi
  [[ "$(head_of "$src")" == "$(head_of "$dir")" ]] || bad "$what: HEAD is $(head_of "$dir"), want $(head_of "$src")"
  [[ "$(git -C "$dir" rev-parse -q --verify HEAD || true)" == "$main" ]] || bad "$what: HEAD does not resolve to $main"
  git -C "$dir" fsck --connectivity-only --no-progress 2>"$run/fsck.err" ||
    { head -n 10 "$run/fsck.err" >&2; bad "$what: git fsck --connectivity-only fails"; }
  n=$(npacks "$dir")
  last_packs=$n
  ((n <= PACKS_MAX)) || bad "$what: $n packs in objects/pack (at most $PACKS_MAX expected)"
}

# ---------------------------------------------------------------- data
prepare_libgit2() { bench_libgit2_mirror "$BENCH_DIR/libgit2.git"; } # the pristine mirror; 1 if the bundle is absent
prepare_generated() {
  note "generated: scripts/gen-repo.sh, GEN_COMMITS=$GEN_COMMITS (cached in $BENCH_DIR/generated.git)"
  GEN_COMMITS=$GEN_COMMITS "$here/gen-repo.sh" "$BENCH_DIR/generated.git"
}

# prepare_archive SRC N: BENCH_DIR/SRC-nN holds W (root/SRC.git, a copy of the
# pristine SRC.git), and a store and index with its full backup and N segments
# written by the archiver, one per ref update. Sets d, rel, W, c0, cN, full_lsn,
# full_us, last_us (from the meta file).
prepare_archive() {
  local src=$1 n=$2 stamp S store log t0 t1 i lsn key prev ci repodir deadline sfd chain got
  d=$BENCH_DIR/$src-n$n
  stamp="bench-pitr v1 src=$(cat "$BENCH_DIR/$src.git/gitwal-bench-stamp") n=$n"
  if [[ -f $d/.complete && "$(cat "$d/.complete")" == "$stamp" ]]; then
    # shellcheck disable=SC1091
    source "$d/meta"
    return 0
  fi
  note "$src: generating one full backup + $n segments with gitwal archive (cached in $d)"
  t0=$(now)
  rm -rf "$d"
  mkdir -p "$d/root" "$d/state"
  rel=$src.git
  W=$d/root/$rel
  S=$d/side.git
  store=$d/store
  log=$d/archive.log
  chain=$d/chain
  cp -a "$BENCH_DIR/$src.git" "$W"
  git -C "$W" config gc.auto 0
  c0=$(git -C "$W" rev-parse --verify refs/heads/main)

  # The chain, in a side repository outside the root (its objects are not W's yet).
  git init -q --bare "$S"
  echo "$W/objects" >"$S/objects/info/alternates"
  awk -v n="$n" -v from="$c0" 'BEGIN {
    for (i = 1; i <= n; i++) {
      body = "gitwal pitr benchmark, step " i "\n"
      printf "commit refs/heads/chain\ncommitter Bench <bench@example.com> %d +0000\ndata <<EOT\npitr step %d\nEOT\n", 1700000000 + i, i
      if (i == 1) printf "from %s\n", from
      printf "M 100644 inline gitwal-pitr-bench.txt\ndata %d\n%s\n", length(body), body
    }
  }' | git -C "$S" fast-import --quiet
  git -C "$S" rev-list --first-parent --max-count="$n" refs/heads/chain | tac >"$chain"
  [[ $(wc -l <"$chain") == "$n" ]] || die "$src: the chain has $(wc -l <"$chain") commits, want $n"
  [[ "$(git -C "$S" rev-parse "$(head -n 1 "$chain")^")" == "$c0" ]] || die "$src: the chain does not start at main"
  setups+=("$src: fast-import of $n commits (side repository)|$(elapsed "$t0")")

  # The archiver: one generation (no full backup by count, size or age).
  note "$src: starting gitwal archive, waiting for the full backup"
  t1=$(now)
  GITWAL_STATE_DIR=$d/state "$GW" archive --root "$d/root" --store "file://$store" --index "$d/index.db" \
    --debounce "$DEBOUNCE" --reconcile 0 --full-every $((n + 1)) --full-ratio 1000 --full-max-age 1000000000 \
    2>"$log" &
  svc_pid=$!
  deadline=$((SECONDS + 600))
  until grep -q 'event=full ' "$log"; do
    kill -0 "$svc_pid" 2>/dev/null || { tail -n 5 "$log" >&2; die "$src: the archiver exited (log $log)"; }
    ((SECONDS < deadline)) || die "$src: no full backup after 600 s (log $log)"
    sleep 0.2
  done
  grep -q 'event=error ' "$log" && { grep 'event=error ' "$log" | head -n 3 >&2; die "$src: the archiver reported errors"; }
  full_lsn=$(sed -n 's/.*event=full .* lsn=\([0-9]*\).*/\1/p' "$log" | head -n 1)
  repodir=$(find "$store/repos" -mindepth 1 -maxdepth 1 -type d | head -n 1)
  [[ -n $full_lsn && -n $repodir ]] || die "$src: no full backup in $store"
  setups+=("$src: full backup (gitwal archive)|$(elapsed "$t1")")

  # The updates: objects of c_i into W, then main -> c_i, then wait for segment full_lsn+i.
  exec {sfd}<> <(:) # read -t on it: a sleep without a process
  prev=$c0
  i=0
  t1=$(now)
  while read -r ci; do
    i=$((i + 1))
    printf '%s\n^%s\n' "$ci" "$prev" | git -C "$S" pack-objects -q --stdout --revs | git -C "$W" unpack-objects -q
    git -C "$W" update-ref refs/heads/main "$ci" "$prev"
    lsn=$((full_lsn + i))
    printf -v key '%s/%020d.seg' "$repodir" "$lsn"
    deadline=$((SECONDS + SEG_TIMEOUT))
    while [[ ! -e $key ]]; do
      if ((SECONDS >= deadline)); then
        got=$(find "$repodir" -name '*.seg' | wc -l)
        tail -n 5 "$log" >&2
        die "$src: update $i (main -> $ci): segment LSN $lsn not in the store after ${SEG_TIMEOUT}s ($got segments there; log $log)"
      fi
      kill -0 "$svc_pid" 2>/dev/null || { tail -n 5 "$log" >&2; die "$src: the archiver exited at update $i (log $log)"; }
      read -r -t 0.002 -u "$sfd" || true
    done
    prev=$ci
    ((i % 1000 == 0)) && note "$src: $i/$n segments ($(elapsed "$t1") s)"
  done <"$chain"
  exec {sfd}<&-
  # The service logs a segment once the upload thread reports it stored, a moment after the key appears.
  deadline=$((SECONDS + SEG_TIMEOUT))
  until (($(grep -c 'event=segment ' "$log") >= n)); do
    ((SECONDS < deadline)) || break
    sleep 0.1
  done
  stop_service
  setups+=("$src: $n ref updates, one segment each (gitwal archive)|$(elapsed "$t1")")

  # Check what was archived before keeping it.
  grep -q 'event=error ' "$log" && { grep 'event=error ' "$log" | head -n 3 >&2; die "$src: the archiver reported errors"; }
  [[ $(grep -c 'event=full ' "$log") == 1 ]] || die "$src: $(grep -c 'event=full ' "$log") full backups, want 1 (log $log)"
  [[ $(grep -c 'event=segment ' "$log") == "$n" ]] || die "$src: $(grep -c 'event=segment ' "$log") segments logged, want $n"
  # The full backup's log record (its claim on its LSN, DESIGN.md 3) is a .seg key too.
  [[ $(find "$repodir" -name '*.seg' | wc -l) == $((n + 1)) ]] ||
    die "$src: $(find "$repodir" -name '*.seg' | wc -l) .seg keys stored, want $n segments and the full backup's log record"
  "$GW" log --store "file://$store" --index "$d/index.db" --repo "$rel" --json >"$d/log.json" ||
    die "$src: gitwal log failed"
  python3 - "$d/log.json" "$chain" "$c0" "$full_lsn" >"$d/times" <<'EOF' || die "$src: the archived log does not match the updates made"
import json, sys
records = json.load(open(sys.argv[1]))["records"]
chain = open(sys.argv[2]).read().split()
prev, full_lsn = sys.argv[3], int(sys.argv[4])
fulls = [r for r in records if r["kind"] == "full"]
segs = [r for r in records if r["kind"] == "segment"]
def fail(msg):
    sys.exit("bench-pitr: " + msg)
if len(fulls) != 1 or fulls[0]["lsn"] != full_lsn:
    fail("want one full backup at LSN %d, got %s" % (full_lsn, [f["lsn"] for f in fulls]))
if len(segs) != len(chain):
    fail("%d segments, want %d" % (len(segs), len(chain)))
for i, (s, c) in enumerate(zip(segs, chain)):
    u = s.get("updates", [])
    if s["lsn"] != full_lsn + 1 + i or len(u) != 1 or u[0].get("ref") != "refs/heads/main" \
            or u[0].get("old") != prev or u[0].get("new") != c:
        fail("segment LSN %d: %s, want one update refs/heads/main %s -> %s" % (s["lsn"], u, prev, c))
    prev = c
print(fulls[0]["time_us"], segs[-1]["time_us"])
EOF
  read -r full_us last_us <"$d/times"
  cN=$(tail -n 1 "$chain")
  rm -rf "$S" "$d/state"
  cat >"$d/meta" <<EOF
rel=$rel
W=$W
c0=$c0
cN=$cN
full_lsn=$full_lsn
full_us=$full_us
last_us=$last_us
gen_seconds=$(elapsed "$t0")
EOF
  echo "$stamp" >"$d/.complete"
  setups+=("$src: generation in all|$(elapsed "$t0")")
  # shellcheck disable=SC1091
  source "$d/meta"
}

# plan_check WHAT UNTIL NSEG: the dry-run plan has NSEG segments and ends at LSN full+NSEG.
plan_check() {
  local what=$1 until=$2 want=$3 plan
  plan=$("$GW" restore --store "file://$d/store" --index "$d/index.db" --to "$run/plan" --repo "$rel" \
    --until "$until" --dry-run --json 2>/dev/null) || die "$what: gitwal restore --dry-run failed"
  python3 - "$plan" "$full_lsn" "$want" <<'EOF' || bad "$what: the plan is $plan, want $want segments after the full at LSN $full_lsn"
import json, sys
p = json.loads(sys.argv[1])
sys.exit(0 if p["lsn"] == int(sys.argv[2]) + int(sys.argv[3]) and p["segments"] == int(sys.argv[3]) else 1)
EOF
}

store_mib() { du -sm "$d/store" | cut -f1; }

# ---------------------------------------------------------------- bar A
check_a_full() { check_restored "$1/$rel" "$W" "$c0" "A: restore of the full alone"; }
check_a_pitr() { check_restored "$1/$rel" "$W" "$cN" "A: restore of the full + $NSEG segments"; }
barA() {
  local src=libgit2 gw base untilfull ratio_full packs_full packs_pitr
  if ! prepare_libgit2; then
    note "bar A: $LIBGIT2_BUNDLE is absent: a generated repository instead"
    src=generated
    prepare_generated
  fi
  prepare_archive "$src" "$NSEG"
  local g="$NSEG segments"
  plan_check "A: full + $g" "$(at_us $((last_us + 1)))" "$NSEG"
  plan_check "A: full alone by time" "$(at_us "$full_us")" 0
  note "bar A ($src, $g, store $(store_mib) MiB): restore --lsn $full_lsn (the full alone); load $(loadavg)"
  measure a_full "$run/a" check_a_full \
    "$GW" restore --store "file://$d/store" --index "$d/index.db" --to "$run/a" --repo "$rel" --lsn "$full_lsn"
  packs_full=$last_packs
  note "bar A: restore --until the full backup's time (no segment)"
  measure a_until_full "$run/a" check_a_full \
    "$GW" restore --store "file://$d/store" --index "$d/index.db" --to "$run/a" --repo "$rel" --until "$(at_us "$full_us")"
  note "bar A: restore --until after the last segment (full + $g)"
  measure a_pitr "$run/a" check_a_pitr \
    "$GW" restore --store "file://$d/store" --index "$d/index.db" --to "$run/a" --repo "$rel" --until "$(at_us $((last_us + 1)))"
  packs_pitr=$last_packs
  gw=$(median "$run/t.a_pitr")
  base=$(median "$run/t.a_full")
  untilfull=$(median "$run/t.a_until_full")
  ratio_full=$(ratio "$gw" "$base")
  rows+=("A|$src: full + $g vs full alone (--lsn)|$gw|$base|$ratio_full|<= 2.0|$(verdict le "$ratio_full" 2.0)|$(max_rss_mib "$run/t.a_pitr")|$(max_rss_mib "$run/t.a_full")")
  rows+=("A|$src: full + $g vs --until full's time|$gw|$untilfull|$(ratio "$gw" "$untilfull")|report|-|$(max_rss_mib "$run/t.a_pitr")|$(max_rss_mib "$run/t.a_until_full")")
  details+=("A: runs (s): full + $g [$(runs_of "$run/t.a_pitr")], --lsn $full_lsn [$(runs_of "$run/t.a_full")], --until full [$(runs_of "$run/t.a_until_full")]")
  details+=("A: packs after restore: full alone $packs_full, full + $g $packs_pitr; store $(store_mib) MiB; data generated in ${gen_seconds} s ($d)")
  if [[ $PROFILE == 1 ]] && command -v perf >/dev/null; then
    note "bar A: perf record of one more restore of the full + $g"
    rm -rf "$run/a"
    perf record -q -F 999 -g -o "$run/a.perf.data" -- \
      "$GW" restore --store "file://$d/store" --index "$d/index.db" --to "$run/a" --repo "$rel" \
      --until "$(at_us $((last_us + 1)))" >/dev/null 2>"$run/a.perf.err" || die "perf record of the restore failed"
    perf report -i "$run/a.perf.data" --no-children --sort dso,sym --stdio 2>/dev/null |
      grep -E '^ +[0-9.]+%' | head -n 25 >"$run/a.perf.txt" || true
    echo "bar A: perf, self time (top functions; $run/a.perf.txt):" >&2
    head -n 20 "$run/a.perf.txt" >&2
    rm -rf "$run/a"
  fi
}

# ---------------------------------------------------------------- bar C
# The store holds a real full backup of every repository (`gitwal backup
# --all` of PLAN_REPOS small repositories); the PLAN_SEGS segments of each are
# loaded into the index by tests/bench/gen_index.c through the library's own
# gw_index_segment_add (chained to the manifest, each moving main, every
# 100th adding a tag), since 10 million segment files do not fit a benchmark
# machine. Planning reads only the index and each full backup's manifest, so
# this is what it costs: `restore --until T --dry-run --json` of every
# repository, T after the last segment, so every plan spans all segments.
barC() {
  local d=$BENCH_DIR/plan-${PLAN_REPOS}x${PLAN_SEGS} gen=${GITWAL_BENCH_INDEX:-$(dirname "$GITWAL_BIN")/tests/gitwal-bench-index}
  local t0 until secs n
  [[ -x $gen ]] || die "bar C needs $gen (built by scripts/build.sh release; or set GITWAL_BENCH_INDEX)"
  # The synthetic segments live in the index alone: an index of another schema is rebuilt from the
  # store by gitwal and loses them, so the data is stamped with the schema it was made for.
  local schema
  schema="index schema $(sed -n 's/^#define INDEX_SCHEMA_VERSION \([0-9]*\).*/\1/p' "$here/../src/index/index.c")"
  if [[ ! -f $d/done || "$(cat "$d/done")" != "$schema" ]]; then
    note "bar C: generating $PLAN_REPOS repositories x $PLAN_SEGS segments in $d (once; about 15 minutes)"
    rm -rf "$d"
    t0=$(now)
    bench_seed_repos "$d" "$PLAN_REPOS"
    "$GW" backup --all --root "$d/root" --store "file://$d/store" --index "$d/index.db" >"$d/backup.log" 2>&1 ||
      die "bar C: gitwal backup failed: $(tail -n 3 "$d/backup.log")"
    "$gen" "$d/index.db" "$PLAN_SEGS" || die "bar C: loading the index failed"
    echo "$schema" >"$d/done"
    setups+=("C: $PLAN_REPOS repositories x $PLAN_SEGS segments|$(elapsed "$t0")")
  fi
  until="@$(($(date +%s) + 1))"
  note "bar C: restore --dry-run --json of $PLAN_REPOS repositories at $until; load $(loadavg)"
  # Correctness, untimed: every plan spans the whole generation and ends with the right refs.
  "$GW" restore --to "$run/c" --until "$until" --dry-run --json --store "file://$d/store" --index "$d/index.db" \
    >"$run/c.plans" 2>"$run/c.err" || die "bar C: restore --dry-run failed: $(tail -n 3 "$run/c.err")"
  n=$(python3 - "$PLAN_SEGS" "$run/c.plans" <<'PY'
import json, sys
segs, n = int(sys.argv[1]), 0
for line in open(sys.argv[2]):
    o = json.loads(line)
    tags = [r for r in o["refs"] if r.startswith("refs/tags/")]
    ok = (o["segments"] == segs and o["lsn"] == o["full"]["lsn"] + segs and "refs/heads/main" in o["refs"]
          and o["refs"]["HEAD"] == "ref: refs/heads/main" and len(tags) == segs // 100 and not o["gaps"])
    n += ok
print(n)
PY
  ) || n=0
  [[ $n == "$PLAN_REPOS" ]] || bad "C: $n of $PLAN_REPOS plans span $PLAN_SEGS segments with the right refs"
  measure c_plan "$run/c" check_none \
    "$GW" restore --to "$run/c" --until "$until" --dry-run --json --store "file://$d/store" --index "$d/index.db"
  secs=$(median "$run/t.c_plan")
  rows+=("C|plan $PLAN_REPOS repos x $PLAN_SEGS segments (--dry-run, all)|$secs|-|-|<= 1.0s|$(verdict le "$secs" 1.0)|$(max_rss_mib "$run/t.c_plan")|-")
  details+=("C: runs (s): [$(runs_of "$run/t.c_plan")]; index $(du -m "$d/index.db" | cut -f1) MiB ($d)")
}

# ---------------------------------------------------------------- bar B
check_b_pitr() { check_restored "$1/$rel" "$W" "$cN" "B: restore --until after $NSEG_B segments"; }
check_none() { :; }
barB() {
  local gw base r
  if ! prepare_libgit2; then
    note "bar B: $LIBGIT2_BUNDLE is absent: skipped"
    rows+=("B|libgit2: skipped, $LIBGIT2_BUNDLE is absent|-|-|-|<= 0.2|-|-|-")
    return 0
  fi
  prepare_archive libgit2 "$NSEG_B"
  plan_check "B: full + $NSEG_B segments" "$(at_us $((last_us + 1)))" "$NSEG_B"
  note "bar B (libgit2, $NSEG_B segments): git clone --mirror of the bundle; load $(loadavg)"
  measure b_clone "$run/b.git" check_none git clone -q --mirror "$LIBGIT2_BUNDLE" "$run/b.git"
  note "bar B: restore --until after the last segment"
  measure b_pitr "$run/b" check_b_pitr \
    "$GW" restore --store "file://$d/store" --index "$d/index.db" --to "$run/b" --repo "$rel" --until "$(at_us $((last_us + 1)))"
  gw=$(median "$run/t.b_pitr")
  base=$(median "$run/t.b_clone")
  r=$(ratio "$gw" "$base")
  rows+=("B|libgit2: full + $NSEG_B segments vs git clone --mirror|$gw|$base|$r|<= 0.2|$(verdict le "$r" 0.2)|$(max_rss_mib "$run/t.b_pitr")|$(max_rss_mib "$run/t.b_clone")")
  details+=("B: runs (s): restore [$(runs_of "$run/t.b_pitr")], git clone --mirror [$(runs_of "$run/t.b_clone")]; packs after restore $last_packs")
}

load_start=$(loadavg)
for b in $BARS; do
  case $b in
  A) barA ;;
  B) barB ;;
  C) barC ;;
  *) die "unknown bar $b (A, B, C)" ;;
  esac
done

echo
echo "gitwal point-in-time restore benchmark ($("$GW" --version 2>/dev/null || echo gitwal), $(git --version), $(nproc) cores)"
echo "load average: at start $load_start, at end $(loadavg); median of $RUNS warm runs; times in seconds; rss = peak, MiB"
printf '%-3s | %-56s | %8s | %8s | %7s | %6s | %-6s | %10s | %12s\n' bar what gitwal baseline ratio limit result "gitwal rss" "baseline rss"
printf '%s\n' "----+----------------------------------------------------------+----------+----------+---------+--------+--------+------------+-------------"
for r in "${rows[@]}"; do
  IFS='|' read -r c1 c2 c3 c4 c5 c6 c7 c8 c9 <<<"$r"
  printf '%-3s | %-56s | %8s | %8s | %7s | %6s | %-6s | %10s | %12s\n' "$c1" "$c2" "$c3" "$c4" "$c5" "$c6" "$c7" "$c8" "$c9"
done
if ((${#details[@]})); then printf '%s\n' "${details[@]}"; fi
echo
for r in "${rows[@]}"; do
  IFS='|' read -r c1 c2 c3 c4 c5 c6 c7 c8 c9 <<<"$r"
  [[ $c7 == PASS || $c7 == FAIL ]] || continue
  [[ $c7 == PASS ]] || failed=1
  echo "$c7 $c1: $c2: ratio $c5 (limit $c6)"
done
print_setups 58
if ((${#broken[@]})); then
  echo
  printf 'CORRECTNESS FAILURE: %s\n' "${broken[@]}"
  exit 2
fi
echo "correctness: plans, refs, HEAD, git fsck --connectivity-only, pack count (every restore): ok"
exit "$failed"
