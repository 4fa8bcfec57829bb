#!/usr/bin/env bash
# Throughput of `gitwal audit --read-data` on a file store.
#
#   scripts/bench-audit.sh
#
# Builds an archive of several full backups of one large repository (the
# libgit2 history: git clone --mirror of ../shared/data/libgit2.bundle; without
# it a generated repository, scripts/gen-repo.sh), then times, warm page cache,
# median of RUNS runs:
#   gitwal audit               (listing, manifests, stat: the metadata pass)
#   gitwal audit --read-data   (every byte: SHA-256, pack SHA-1, idx checks)
#   openssl dgst -sha256 of the same files (one core: the floor of the hashing cost)
# and prints a table: wall and CPU (user + system) seconds, MB/s (bytes of the
# archive / wall seconds) and MB per CPU second (which a busy machine does not
# change: --read-data hashes every byte twice, SHA-256 and Git's SHA-1), then
# PASS/FAIL for the bar: --read-data at least 500 MB/s.
#
# Environment:
#   GITWAL_BIN   the gitwal binary (default build/release/gitwal if it has the
#                audit command, else an optimised build in build/bench-audit)
#   BENCH_DIR    cache and scratch directory (default /tmp/gitwal-bench-audit)
#   FULLS        full backups in the archive (default 4)
#   RUNS         timed runs (default 3)
#   JOBS         --jobs for the audit (default: gitwal's default, cores up to 8)
# Exit status: 0 if the bar passes, 1 if not, 2 when something fails.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/bench-lib.sh"
BENCH_DIR=${BENCH_DIR:-/tmp/gitwal-bench-audit}
FULLS=${FULLS:-4}
RUNS=${RUNS:-3}
LIBGIT2_BUNDLE=${LIBGIT2_BUNDLE:-$top/../shared/data/libgit2.bundle}
BAR_MBS=500

if [[ -z ${GITWAL_BIN:-} ]]; then
  GITWAL_BIN=$top/build/release/gitwal
  if ! "$GITWAL_BIN" audit --help >/dev/null 2>&1; then
    note "building an optimised gitwal in build/bench-audit"
    cmake -S "$top" -B "$top/build/bench-audit" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    cmake --build "$top/build/bench-audit" -j"$(nproc)" --target gitwal >/dev/null
    GITWAL_BIN=$top/build/bench-audit/gitwal
  fi
fi
[[ -x $GITWAL_BIN ]] || die "no gitwal binary at $GITWAL_BIN"

mkdir -p "$BENCH_DIR"
export GITWAL_STATE_DIR=$BENCH_DIR/state GITWAL_ROOT=$BENCH_DIR/root
unset GITWAL_STORE GITWAL_INDEX GITWAL_CONFIG
store=$GITWAL_STATE_DIR/store

# ---- the repository ----
if [[ ! -d $GITWAL_ROOT/repo.git ]]; then
  mkdir -p "$GITWAL_ROOT"
  if [[ -f $LIBGIT2_BUNDLE ]]; then
    note "cloning the libgit2 history"
    git clone -q --mirror "$LIBGIT2_BUNDLE" "$GITWAL_ROOT/repo.git" || die "git clone --mirror $LIBGIT2_BUNDLE"
    dataset=libgit2
  else
    note "generating a repository (no $LIBGIT2_BUNDLE)"
    "$here/gen-repo.sh" "$GITWAL_ROOT/repo.git" >/dev/null || die "gen-repo.sh"
    dataset=generated
  fi
  echo "$dataset" > "$BENCH_DIR/dataset"
fi
dataset=$(cat "$BENCH_DIR/dataset")

# ---- the archive: FULLS full backups ----
have=$( (find "$store" -name '*.full.manifest' 2>/dev/null || true) | wc -l)
while (( have < FULLS )); do
  "$GITWAL_BIN" backup repo.git >/dev/null || die "gitwal backup"
  have=$((have + 1))
done
bytes=$(find "$store" -type f -printf '%s\n' | awk '{s += $1} END {print s}')
nfiles=$(find "$store" -type f | wc -l)
note "archive: $dataset, $have full backups, $nfiles keys, $bytes bytes"

jobs=()
[[ -n ${JOBS:-} ]] && jobs=(--jobs "$JOBS")

# median_run COMMAND...: "WALL CPU" seconds of the run with the median wall time (one warm-up run first).
median_run() {
  local i rc
  "$@" >/dev/null 2>&1 || true
  : > "$BENCH_DIR/times"
  for ((i = 0; i < RUNS; i++)); do
    rc=0
    /usr/bin/time -f '%e %U %S' -o "$BENCH_DIR/time.1" "$@" >/dev/null 2>"$BENCH_DIR/cmd.err" || rc=$?
    [[ $rc -eq 1 ]] && die "the archive is not clean: $*"
    [[ $rc -eq 0 ]] || die "$* failed: $(cat "$BENCH_DIR/cmd.err")"
    awk '{printf "%s %.3f\n", $1, $2 + $3}' "$BENCH_DIR/time.1" >> "$BENCH_DIR/times"
  done
  sort -n "$BENCH_DIR/times" | sed -n "$(((RUNS + 1) / 2))p"
}

# The floor: SHA-256 of every stored byte with OpenSSL on one core.
hash_all() { find "$store" -type f -print0 | xargs -0 openssl dgst -sha256 >/dev/null; }

[[ -x /usr/bin/time ]] || die "/usr/bin/time is missing (apt-get install time)"
read -r w_meta c_meta <<<"$(median_run "$GITWAL_BIN" audit "${jobs[@]}")"
read -r w_data c_data <<<"$(median_run "$GITWAL_BIN" audit --read-data "${jobs[@]}")"
read -r w_sha c_sha <<<"$(median_run bash -c "$(declare -f hash_all); store=$store; hash_all")"

mbs() { echo "$bytes / $1 / 1000000" | bc -l | xargs printf '%.0f'; }
echo
echo "$dataset: $have full backups, $((bytes / 1000000)) MB, $(nproc) cores, load average $(cut -d' ' -f1 /proc/loadavg)"
printf '%-32s %9s %9s %9s %14s\n' "command" "wall s" "cpu s" "MB/s" "MB per cpu-s"
row() { printf '%-32s %9.3f %9.3f %9s %14s\n' "$1" "$2" "$3" "$(mbs "$2")" "$(mbs "$3")"; }
row "gitwal audit" "$w_meta" "$c_meta"
row "gitwal audit --read-data" "$w_data" "$c_data"
row "openssl dgst -sha256 (1 core)" "$w_sha" "$c_sha"
t_data=$w_data
echo
if (( $(mbs "$t_data") >= BAR_MBS )); then
  echo "PASS: --read-data $(mbs "$t_data") MB/s >= $BAR_MBS MB/s"
else
  echo "FAIL: --read-data $(mbs "$t_data") MB/s < $BAR_MBS MB/s"
  exit 1
fi
