# What the benchmark scripts (scripts/bench-*.sh) share: messages, their
# knobs' defaults, the binary under measurement, timing with /usr/bin/time,
# the figures made of the timings, the setup times, the archive service they
# start, and a repository's state.
# Each sources it first:
#
#   here=$(cd "$(dirname "$0")" && pwd)
#   . "$here/bench-lib.sh"
#
# It sets BENCH_NAME (the script's name, the prefix of its error messages),
# top (the source tree) and TIME; timed and untimed keep their scratch files
# in $BENCH_TMP (bench_setup_run sets it).

BENCH_NAME=$(basename "$0" .sh)
top=$(cd "$here/.." && pwd)
TIME=/usr/bin/time

die() {
  echo "$BENCH_NAME: $*" >&2
  exit 2
}
note() { echo "== $(date +%T) $*" >&2; }

# bench_defaults NAME=VALUE...: the script's knobs; each NAME keeps its value
# from the environment, or is VALUE where it is unset or empty.
bench_defaults() {
  local kv name
  for kv in "$@"; do
    name=${kv%%=*}
    [[ -n ${!name:-} ]] || printf -v "$name" '%s' "${kv#*=}"
  done
}

# bench_gitwal_bin: GITWAL_BIN, by default build/release/gitwal (built with
# scripts/build.sh release when missing), and it must be executable.
bench_gitwal_bin() {
  if [[ -z ${GITWAL_BIN:-} ]]; then
    GITWAL_BIN=$top/build/release/gitwal
    if [[ ! -x $GITWAL_BIN ]]; then
      note "building gitwal (scripts/build.sh release)"
      "$here/build.sh" release
    fi
  fi
  [[ -x $GITWAL_BIN ]] || die "GITWAL_BIN=$GITWAL_BIN is not executable"
}
# bench_setup_run NAME: BENCH_DIR made absolute, run (and BENCH_TMP), a fresh
# BENCH_DIR/NAME, and GW, a private copy of GITWAL_BIN in it (a rebuild during
# the run must not change, or remove, the binary under measurement).
bench_setup_run() {
  export GIT_CONFIG_NOSYSTEM=1
  mkdir -p "$BENCH_DIR"
  BENCH_DIR=$(cd "$BENCH_DIR" && pwd)
  run=$BENCH_DIR/$1
  rm -rf "$run"
  mkdir -p "$run"
  BENCH_TMP=$run
  cp "$GITWAL_BIN" "$run/gitwal"
  GW=$run/gitwal
}

# bench_libgit2_mirror REPO: REPO, a git clone --mirror of LIBGIT2_BUNDLE (its
# sha256 checked against LIBGIT2_BUNDLE.sha256 when there is one), cloned again
# only when the bundle changed; 1 when the bundle is absent.
bench_libgit2_mirror() {
  local repo=$1 sum want
  if [[ ! -f $LIBGIT2_BUNDLE ]]; then
    note "libgit2: $LIBGIT2_BUNDLE is absent: data set skipped"
    return 1
  fi
  sum=$(sha256sum "$LIBGIT2_BUNDLE" | cut -d' ' -f1)
  if [[ -f $LIBGIT2_BUNDLE.sha256 ]]; then
    want=$(cut -d' ' -f1 "$LIBGIT2_BUNDLE.sha256")
    [[ $sum == "$want" ]] || die "libgit2: $LIBGIT2_BUNDLE has sha256 $sum, $LIBGIT2_BUNDLE.sha256 says $want"
  fi
  [[ -f $repo/gitwal-bench-stamp && "$(cat "$repo/gitwal-bench-stamp")" == "$sum" ]] && return 0
  note "libgit2: git clone --mirror $LIBGIT2_BUNDLE (cached in $repo)"
  rm -rf "$repo" "$repo.tmp"
  git clone -q --mirror "$LIBGIT2_BUNDLE" "$repo.tmp"
  git -C "$repo.tmp" config gc.auto 0
  echo "$sum" >"$repo.tmp/gitwal-bench-stamp"
  mv "$repo.tmp" "$repo"
}

# bench_seed_repos DIR N: a fresh DIR with seed.git (one commit on main) and N
# copies of it, DIR/root/gK/rI.git (ten groups), for the benchmarks that plan
# over many repositories.
bench_seed_repos() {
  local d=$1 n=$2 i
  rm -rf "$d"
  mkdir -p "$d/root"
  git init -q --bare "$d/seed.git"
  git clone -q "$d/seed.git" "$d/w" 2>/dev/null
  (cd "$d/w" && echo a >f && git add f && git -c user.name=b -c user.email=b@example.com commit -qm init &&
    git push -q origin HEAD:main)
  git -C "$d/seed.git" symbolic-ref HEAD refs/heads/main
  for ((i = 1; i <= n; i++)); do
    mkdir -p "$d/root/g$((i % 10))"
    cp -r "$d/seed.git" "$d/root/g$((i % 10))/r$i.git"
  done
}

loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN {printf "%.1f", b-a}'; }
le() { awk -v a="$1" -v b="$2" 'BEGIN {exit !(a <= b)}'; }
lt() { awk -v a="$1" -v b="$2" 'BEGIN {exit !(a < b)}'; }
# verdict TEST...: PASS or FAIL (it runs inside $(...): the exit status is worked out from the rows)
verdict() { if "$@"; then echo PASS; else echo FAIL; fi; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.3f", a/b; else print "inf"}'; }

# timed LOG CMD...: run CMD under /usr/bin/time, append "wall_s rss_kb" to LOG.
timed() {
  local log=$1 out=$BENCH_TMP/time.out err=$BENCH_TMP/cmd.err
  shift
  if ! $TIME -f '%e %M' -o "$out" "$@" >/dev/null 2>"$err"; then
    cat "$err" >&2
    die "command failed: $*"
  fi
  tail -n 1 "$out" >>"$log"
}
# untimed CMD...: the warm-up run.
untimed() {
  local err=$BENCH_TMP/cmd.err
  if ! "$@" >/dev/null 2>"$err"; then
    cat "$err" >&2
    die "command failed: $*"
  fi
}
# What preparing the data cost, shown after the results: setups+=("what|seconds").
setups=()
# print_setups WIDTH: the setup times, each "what" padded to WIDTH.
print_setups() {
  local s what secs
  ((${#setups[@]})) || return 0
  echo
  echo "setup times (s):"
  for s in "${setups[@]}"; do
    IFS='|' read -r what secs <<<"$s"
    printf '  %-*s %s\n' "$1" "$what" "$secs"
  done
}
# Figures of a LOG written by timed: median wall time, largest peak RSS, every run's time.
median() { cut -d' ' -f1 "$1" | sort -n | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
max_rss_mib() { cut -d' ' -f2 "$1" | sort -n | tail -n 1 | awk '{printf "%.1f", $1/1024}'; }
max_rss_kb() { cut -d' ' -f2 "$1" | sort -n | tail -n 1; }
runs_of() { cut -d' ' -f1 "$1" | paste -sd' '; }

# The archive service a benchmark starts sets svc_pid; it never outlives the script.
svc_pid=""
cleanup() {
  if [[ -n $svc_pid ]] && kill -0 "$svc_pid" 2>/dev/null; then
    kill -9 "$svc_pid" 2>/dev/null || true
  fi
}
trap cleanup EXIT
# stop_service: SIGTERM, then SIGKILL after 10 s.
stop_service() {
  local i
  [[ -n $svc_pid ]] || return 0
  kill -TERM "$svc_pid" 2>/dev/null || true
  for i in $(seq 100); do
    kill -0 "$svc_pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$svc_pid" 2>/dev/null; then
    note "the service ignored SIGTERM for 10 s: SIGKILL"
    kill -9 "$svc_pid" 2>/dev/null || true
  fi
  wait "$svc_pid" 2>/dev/null || true
  svc_pid=""
}

# A repository's refs (value, type, name) and HEAD (its target, or its value when detached).
refs_of() { git -C "$1" for-each-ref --format='%(objectname) %(objecttype) %(refname)'; }
head_of() { git -C "$1" symbolic-ref -q HEAD || git -C "$1" rev-parse --verify -q HEAD || echo "(none)"; }
