#!/usr/bin/env bash
# The always-on archiver (`gitwal archive`) against the issue's bars.
#
#   scripts/bench-archive.sh
#
# Bars (each measured, then PASS/FAIL):
#   1. Archive lag at RATE ref updates/s (default 50) spread over N1 (1,000)
#      repositories, on the file store: p99 <= 250 ms (p50 reported).
#      N1 copies of a small seed repository; the service starts and takes its
#      initial full backups (waits for N1 event=full lines); new commits are
#      then written as loose objects (no ref moves, so no events), and a
#      driver runs `git update-ref` on random repositories (none twice within
#      200 updates) at RATE/s for DURATION seconds on an absolute schedule.
#      Lag comes from the event=segment lines (lag_ms); updates still not
#      archived DRAIN seconds after the driver stopped count as infinitely
#      late. The gitwal_archive_lag_seconds histogram is scraped and its
#      p50/p99 (bucket interpolation) shown beside.
#   2. One 1-commit push into a repository with NREFS (100,000) refs (packed):
#      segment built in <= 20 ms of CPU. The service takes its full backup;
#      then REPS times: a new commit is written (outside the sampled window),
#      utime+stime of the service (and of its reaped children: git
#      pack-objects) is read from /proc/PID/stat around one `git update-ref`
#      and its segment. Median reported; the bar is on the service's own CPU
#      (children shown beside). With PROFILE=1 (default) `perf record` samples
#      PROF_REPS more updates and the top functions are printed.
#   3. N3 (10,000) idle repositories watched: CPU < 0.5 % over IDLE (60) s and
#      RSS <= 100 MiB (VmRSS at the end of the idle window; VmHWM shown).
#      Waits for the initial full backups first (event=full + event=error
#      lines = N3). Checks fs.inotify.max_user_watches (raised with sysctl
#      when below 8 per repository, if allowed) and the open-file limit.
#
# With STORE set (e.g. s3://BUCKET/PREFIX?endpoint=http://127.0.0.1:7480&path_style=true,
# the bucket existing), bar 1 archives into that store instead of the default file store,
# with the S3 driver's trace on (GITWAL_S3_TRACE): the requests the store got while the
# driver ran are counted per segment uploaded (by method; goal: one PUT per segment, and a
# HEAD only where a versioned bucket needs the key-free check).
#
# Generated data is cached under BENCH_DIR (default /tmp/gitwal-bench-archive):
# seed.git, root1k/ (pristine, copied per run: the run moves its refs),
# root10k/ (read only), bigrefs.git (pristine, copied per run). Each run gets
# its own store and index (GITWAL_STATE_DIR under BENCH_DIR/run).
#
# Environment:
#   GITWAL_BIN  the gitwal binary (default build/release/gitwal, built with
#               scripts/build.sh release if missing); copied before use
#   BENCH_DIR   cache and scratch (default /tmp/gitwal-bench-archive)
#   BARS        which bars, default "1 2 3"
#   RATE DURATION DRAIN N1   bar 1 (50, 40, 60, 1000)
#   NREFS REPS PROFILE PROF_REPS   bar 2 (100000, 7, 1, 10)
#   N3 IDLE     bar 3 (10000, 60)
#   STORE       bar 1's store URL (default: the state directory's file store)
#   SETUP_TIMEOUT  seconds to wait for initial full backups (default 1800)
# The machine's load average is printed: results under load are noisy.
# Exit status: 0 if every measured bar passes, 1 otherwise, 2 on setup errors.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/bench-lib.sh"
bench_defaults BENCH_DIR=/tmp/gitwal-bench-archive BARS="1 2 3" RATE=50 DURATION=40 DRAIN=60 N1=1000 \
  NREFS=100000 REPS=7 PROFILE=1 PROF_REPS=10 N3=10000 IDLE=60 SETUP_TIMEOUT=1800
GEN=$here/gen-archive-data.py
HZ=$(getconf CLK_TCK)

bench_gitwal_bin
command -v python3 >/dev/null || die "python3 is required"

bench_setup_run run

rows=()     # "bar|measured|limit|verdict"
failed=0

# cpu PID: "self children" in clock ticks (utime+stime, cutime+cstime)
cpu() { awk '{print $14+$15, $16+$17}' "/proc/$1/stat"; }
status_kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }

# start_service ROOT STATE LOG [extra args]: sets svc_pid
start_service() {
  local root=$1 state=$2 log=$3
  shift 3
  mkdir -p "$state"
  GITWAL_STATE_DIR=$state "$GW" archive --root "$root" --metrics-addr 127.0.0.1:0 "$@" 2>"$log" &
  svc_pid=$!
}
count() { grep -c -- "$1" "$2" || true; }
# wait_for LOG PATTERN N TIMEOUT [ERRPATTERN]: until N lines match (plus ERRPATTERN lines)
wait_for() {
  local log=$1 pat=$2 n=$3 timeout=$4 errpat=${5:-} t0 got
  t0=$(date +%s)
  while :; do
    got=$(count "$pat" "$log")
    [[ -n $errpat ]] && got=$((got + $(count "$errpat" "$log")))
    ((got >= n)) && return 0
    kill -0 "$svc_pid" 2>/dev/null || {
      tail -n 5 "$log" >&2
      die "the service exited (log $log)"
    }
    (($(date +%s) - t0 < timeout)) || return 1
    sleep 0.2
  done
}
metrics_port() { sed -n 's/.*event=metrics .*port=\([0-9]*\).*/\1/p' "$1" | head -n 1; }
scrape() { curl -fsS "http://127.0.0.1:$1/metrics"; }

# ---------------------------------------------------------------- data
prepare_seed() {
  [[ -f $BENCH_DIR/seed.git/HEAD ]] && return 0
  note "generating the seed repository"
  python3 "$GEN" seed "$BENCH_DIR/seed.git"
}
prepare_many() { # DIR N
  local dir=$1 n=$2 t0
  if [[ -f $dir/.complete && "$(cat "$dir/.complete")" == "$n" ]]; then
    return 0
  fi
  t0=$(now)
  note "generating $n repositories in $dir"
  rm -rf "$dir"
  python3 "$GEN" many "$BENCH_DIR/seed.git" "$dir" "$n"
  echo "$n" >"$dir/.complete"
  setups+=("generate $n repositories|$(elapsed "$t0")")
}

# ---------------------------------------------------------------- bar 1
bar1() {
  local pristine=$BENCH_DIR/root1k root=$run/root1k log=$run/bar1.log plan=$run/bar1.plan t0 n port
  local total stats hist drv
  prepare_seed
  prepare_many "$pristine" "$N1"
  t0=$(now)
  cp -a "$pristine" "$root"
  rm -f "$root/.complete"
  setups+=("bar 1: copy $N1 repositories|$(elapsed "$t0")")

  note "bar 1: starting the service, waiting for $N1 initial full backups${STORE:+ (store $STORE)}"
  t0=$(now)
  if [[ -n ${STORE:-} ]]; then
    GITWAL_S3_TRACE=1 start_service "$root" "$run/state1" "$log" --store "$STORE"
  else
    start_service "$root" "$run/state1" "$log"
  fi
  wait_for "$log" "event=full " "$N1" "$SETUP_TIMEOUT" "event=error " || die "bar 1: initial full backups not done in ${SETUP_TIMEOUT}s"
  setups+=("bar 1: $N1 initial full backups (service)|$(elapsed "$t0")")
  port=$(metrics_port "$log")

  total=$(awk -v r="$RATE" -v d="$DURATION" 'BEGIN {printf "%d", r*d}')
  note "bar 1: writing $total new commits (loose objects)"
  t0=$(now)
  python3 "$GEN" commits "$root" "$plan" "$total" "$BENCH_DIR/seed.git"
  setups+=("bar 1: $total new commits|$(elapsed "$t0")")
  sleep 2
  scrape "$port" >"$run/bar1.metrics.before" || true
  local c0 c1 load1 log0
  c0=$(cpu "$svc_pid")
  log0=$(wc -l <"$log")
  note "bar 1: driving $RATE updates/s for ${DURATION}s (load $(loadavg))"
  drv=$(python3 "$GEN" drive "$plan" "$RATE" 2>"$run/bar1.drive.err")
  load1=$(loadavg)
  note "bar 1: $drv"
  # Drain: until every successful update has its segment, or no segment came for 3 s
  # (two moves of one ref before the service looks are one update in one segment:
  # "coalesced"), or DRAIN seconds.
  n=$(($(wc -l <"$plan") - $(grep -c 'fatal' "$run/bar1.drive.err" || true)))
  t0=$(now)
  local last_got=-1 last_t drained=0
  last_t=$(now)
  while :; do
    got=$(grep 'event=segment ' "$log" | sed -n 's/.* updates=\([0-9]*\).*/\1/p' | awk '{s+=$1} END {print s+0}')
    ((got >= n)) && { drained=1; break; }
    if ((got != last_got)); then
      last_got=$got
      last_t=$(now)
    elif ! lt "$(elapsed "$last_t")" 3; then
      drained=1
      break
    fi
    lt "$(elapsed "$t0")" "$DRAIN" || break
    sleep 0.5
  done
  local coalesced=0
  ((drained && got < n)) && { coalesced=$((n - got)); n=$got; }
  c1=$(cpu "$svc_pid")
  scrape "$port" >"$run/bar1.metrics" || true
  stop_service
  # Store requests per segment over the drive and drain (the S3 trace: one line per attempt).
  local reqs=""
  if [[ -n ${STORE:-} ]]; then
    reqs=$(tail -n +"$((log0 + 1))" "$log" | awk '
      /event=segment / {segs++}
      /^s3_trace method=/ {split($2, m, "="); n[m[2]]++; total++}
      END {printf "%d attempts for %d segments (%.2f per segment):", total, segs, segs ? total / segs : 0;
        for (k in n) printf " %s %d (%.2f)", k, n[k], segs ? n[k] / segs : 0; printf "\n"}')
    echo "bar 1: store requests during the drive: $reqs" >&2
  fi

  # Percentiles: one lag per segment, weighted by its updates; missing ones are +inf.
  stats=$(grep 'event=segment ' "$log" | sed -n 's/.* updates=\([0-9]*\).* lag_ms=\([0-9.]*\).*/\1 \2/p' |
    awk -v want="$n" '{for (i = 0; i < $1; i++) {print $2; k++}} END {for (; k < want; k++) print 1e18}' |
    sort -g | awk -v want="$n" '{v[NR] = $1; if ($1 < 1e18) {m++; mx = $1}}
      END {k = NR; p50 = v[int((k - 1) * 0.50) + 1]; p99 = v[int((k - 1) * 0.99) + 1];
        printf "%s %s %d %d %s\n", (p50 >= 1e18 ? "inf" : p50), (p99 >= 1e18 ? "inf" : p99), m, k, mx}')
  read -r p50 p99 archived want maxlag <<<"$stats"
  hist=$(python3 - "$run/bar1.metrics.before" "$run/bar1.metrics" <<'EOF'
import sys
def buckets(p):
    b = {}
    try:
        for l in open(p):
            if l.startswith("gitwal_archive_lag_seconds_bucket"):
                le = l.split('le="')[1].split('"')[0]
                b[float("inf") if le == "+Inf" else float(le)] = float(l.split()[-1])
    except OSError:
        pass
    return b
a, b = buckets(sys.argv[1]), buckets(sys.argv[2])
d = sorted((k, b[k] - a.get(k, 0)) for k in b)
total = d[-1][1] if d else 0
def q(x):
    if not total:
        return "n/a"
    rank, prev_le, prev_c = x * total, 0.0, 0.0
    for le, c in d:
        if c >= rank:
            if le == float("inf"):
                return ">%g" % (prev_le * 1000)
            return "%.0f" % (1000 * (prev_le + (le - prev_le) * (rank - prev_c) / max(c - prev_c, 1e-9)))
        prev_le, prev_c = le, c
    return "n/a"
print("%s %s %d" % (q(0.5), q(0.99), total))
EOF
)
  read -r h50 h99 hcount <<<"$hist"
  local cpu_s
  cpu_s=$(awk -v a="${c0% *}" -v b="${c1% *}" -v ca="${c0#* }" -v cb="${c1#* }" -v hz="$HZ" \
    'BEGIN {printf "service %.1f s, children (git pack-objects) %.1f s", (b-a)/hz, (cb-ca)/hz}')
  echo "bar 1: $drv; segments for $archived of $want updates; max archived lag ${maxlag} ms;" \
    "$coalesced coalesced; histogram p50~${h50} ms p99~${h99} ms over $hcount; CPU $cpu_s; load during drive $load1" >&2
  rows+=("1. lag p50 @${RATE}/s over $N1 repos${STORE:+ (s3)}|${p50} ms (hist ~${h50})|report|-")
  rows+=("1. lag p99 @${RATE}/s over $N1 repos|${p99} ms (hist ~${h99}); $want segs, $coalesced coalesced|<= 250 ms|$(verdict le "${p99/inf/1e18}" 250)")
  bar1_detail="driver: $drv; archived $archived/$want within ${DRAIN}s after the drive ($coalesced more coalesced into later segments); CPU $cpu_s${reqs:+; store requests: $reqs}"
}

# ---------------------------------------------------------------- bar 2
bar2() {
  local pristine=$BENCH_DIR/bigrefs.git root=$run/root2 log=$run/bar2.log t0 i a b k out self=() kids=()
  if [[ ! -f $pristine/.complete || "$(cat "$pristine/.complete")" != "$NREFS" ]]; then
    note "bar 2: generating a repository with $NREFS refs"
    t0=$(now)
    python3 "$GEN" bigrefs "$pristine" "$NREFS"
    echo "$NREFS" >"$pristine/.complete"
    setups+=("bar 2: generate repository with $NREFS refs|$(elapsed "$t0")")
  fi
  mkdir -p "$root"
  cp -a "$pristine" "$root/big.git"
  rm -f "$root/big.git/.complete"
  note "bar 2: starting the service, waiting for the full backup"
  t0=$(now)
  start_service "$root" "$run/state2" "$log"
  wait_for "$log" "event=full " 1 "$SETUP_TIMEOUT" || die "bar 2: no full backup"
  setups+=("bar 2: full backup of $NREFS refs (service)|$(elapsed "$t0")")
  sleep 2
  k=0
  one_push() { # -> "self_ticks child_ticks"
    local new old a b
    read -r new old < <(python3 "$GEN" commit1 "$root/big.git" refs/heads/b000001)
    sleep 0.3
    a=$(cpu "$svc_pid")
    git --git-dir "$root/big.git" update-ref refs/heads/b000001 "$new" "$old"
    k=$((k + 1))
    wait_for "$log" "event=segment " "$k" 60 || die "bar 2: no segment for update $k"
    sleep 0.3
    b=$(cpu "$svc_pid")
    echo "$((${b% *} - ${a% *})) $((${b#* } - ${a#* }))"
  }
  for i in $(seq "$REPS"); do
    read -r a b < <(one_push)
    self+=("$a")
    kids+=("$b")
  done
  local med_self med_kids
  med_self=$(printf '%s\n' "${self[@]}" | sort -n | awk -v hz="$HZ" '{v[NR]=$1} END {printf "%.0f", 1000*v[int((NR+1)/2)]/hz}')
  med_kids=$(printf '%s\n' "${kids[@]}" | sort -n | awk -v hz="$HZ" '{v[NR]=$1} END {printf "%.0f", 1000*v[int((NR+1)/2)]/hz}')
  echo "bar 2: per-push CPU ticks (1 tick = $((1000 / HZ)) ms) service: ${self[*]}; children: ${kids[*]}" >&2
  grep 'event=segment ' "$log" | tail -n 3 >&2
  if [[ $PROFILE == 1 ]] && command -v perf >/dev/null; then
    note "bar 2: perf record over $PROF_REPS more pushes"
    perf record -q -F 999 -g -o "$run/bar2.perf.data" -p "$svc_pid" 2>"$run/bar2.perf.err" &
    local perf_pid=$!
    sleep 1
    for i in $(seq "$PROF_REPS"); do one_push >/dev/null; done
    kill -INT "$perf_pid" 2>/dev/null || true
    wait "$perf_pid" 2>/dev/null || true
    perf report -i "$run/bar2.perf.data" --no-children --sort comm,dso,sym --stdio 2>/dev/null |
      grep -E '^ +[0-9.]+%' | head -n 25 >"$run/bar2.perf.txt" || true
    perf report -i "$run/bar2.perf.data" --children --sort comm,sym --stdio -g none 2>/dev/null |
      grep -E '^ +[0-9.]+%' | head -n 40 >"$run/bar2.perf.children.txt" || true
    echo "bar 2: perf, self time (top functions; $run/bar2.perf.txt):" >&2
    head -n 20 "$run/bar2.perf.txt" >&2
    echo "bar 2: perf, inclusive time ($run/bar2.perf.children.txt):" >&2
    head -n 30 "$run/bar2.perf.children.txt" >&2
  fi
  stop_service
  rows+=("2. 1-commit push, $NREFS refs: CPU|${med_self} ms service (+${med_kids} ms git children)|<= 20 ms|$(verdict le "$med_self" 20)")
}

# ---------------------------------------------------------------- bar 3
bar3() {
  local root=$BENCH_DIR/root10k log=$run/bar3.log t0 watches need a b cpu_pct rss hwm fds nofile errs port wm
  prepare_seed
  prepare_many "$root" "$N3"
  watches=$(cat /proc/sys/fs/inotify/max_user_watches)
  need=$((N3 * 8))
  if ((watches < need)); then
    if sysctl -qw fs.inotify.max_user_watches="$need" 2>/dev/null; then
      note "raised fs.inotify.max_user_watches from $watches to $need"
      watches=$need
    else
      note "fs.inotify.max_user_watches=$watches is below $need and could not be raised"
    fi
  fi
  ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
  nofile=$(ulimit -n)
  note "bar 3: starting the service on $N3 repositories (max_user_watches=$watches, ulimit -n $nofile)"
  t0=$(now)
  start_service "$root" "$run/state3" "$log"
  wait_for "$log" "event=full " "$N3" "$SETUP_TIMEOUT" "event=error " || die "bar 3: initial full backups not done in ${SETUP_TIMEOUT}s"
  setups+=("bar 3: $N3 initial full backups (service)|$(elapsed "$t0")")
  errs=$(count "event=error " "$log")
  port=$(metrics_port "$log")
  sleep 5
  a=$(cpu "$svc_pid")
  note "bar 3: idle for ${IDLE}s (load $(loadavg))"
  sleep "$IDLE"
  b=$(cpu "$svc_pid")
  cpu_pct=$(awk -v a="${a% *}" -v b="${b% *}" -v hz="$HZ" -v s="$IDLE" 'BEGIN {printf "%.2f", 100*(b-a)/hz/s}')
  rss=$(status_kb "$svc_pid" VmRSS)
  hwm=$(status_kb "$svc_pid" VmHWM)
  fds=$(ls "/proc/$svc_pid/fd" | wc -l)
  wm=$(scrape "$port" 2>/dev/null | awk '$1 == "gitwal_watches" {print $2}' || true)
  stop_service
  echo "bar 3: $errs event=error lines at start-up; watches in use ${wm:-?}; open fds $fds (limit $nofile);" \
    "VmRSS $((rss / 1024)) MiB, VmHWM $((hwm / 1024)) MiB" >&2
  [[ $errs == 0 ]] || grep 'event=error ' "$log" | head -n 3 >&2
  rows+=("3. idle CPU, $N3 repos|${cpu_pct} % over ${IDLE}s|< 0.5 %|$(verdict lt "$cpu_pct" 0.5)")
  rows+=("3. RSS idle, $N3 repos|$((rss / 1024)) MiB (HWM $((hwm / 1024)) MiB)|<= 100 MiB|$(verdict le "$rss" $((100 * 1024)))")
  rows+=("3. every repo archived at start-up|$errs errors, $fds open fds (ulimit -n $nofile)|0 errors|$(verdict test "$errs" = 0)")
}

load_start=$(loadavg)
for b in $BARS; do
  case $b in
  1) bar1 ;;
  2) bar2 ;;
  3) bar3 ;;
  *) die "unknown bar $b" ;;
  esac
done

echo
echo "gitwal archive benchmark ($("$GW" --version 2>/dev/null || echo gitwal), $(nproc) cores)"
echo "load average: at start $load_start, at end $(loadavg)"
printf '%-38s | %-58s | %-10s | %s\n' bar measured limit result
printf '%s\n' "-------------------------------------- | ---------------------------------------------------------- | ---------- | ------"
for r in "${rows[@]}"; do
  IFS='|' read -r c1 c2 c3 c4 <<<"$r"
  printf '%-38s | %-58s | %-10s | %s\n' "$c1" "$c2" "$c3" "$c4"
  if [[ $c4 == FAIL ]]; then failed=1; fi
done
print_setups 50
[[ -n ${bar1_detail:-} ]] && echo "bar 1 detail: $bar1_detail"
exit "$failed"
