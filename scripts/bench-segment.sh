#!/usr/bin/env bash
# The archiver's segment build on a real history (tests/bench/segment_build.c).
#
#   scripts/bench-segment.sh
#
# A bare mirror of LIBGIT2_BUNDLE (packed once, cached in BENCH_DIR) gets, RUNS
# times, the segments an archiver writes when a branch moves along the
# first-parent chain of its default branch: one segment of the whole history
# below the chain's oldest commit (walk + git pack-objects), then one per
# commit, NPUSH of them (walk stopping at archived objects + the in-process
# pack writer). Prints each run's times (wall clock, CPU of the build, CPU of
# the git it ran: under load, compare CPU) and the segments' digests (the same
# for two builds that write the same bytes: the mirror packs with
# pack.threads=1), then the medians.
#
# Environment:
#   GITWAL_BENCH_SEGMENT  the tool (default build/release/tests/gitwal-bench-segment)
#   BENCH_DIR   cache and scratch (default /tmp/gitwal-bench-segment)
#   LIBGIT2_BUNDLE  default ../shared/data/libgit2.bundle
#   NPUSH       segments of one commit each (default 300)
#   RUNS        timed runs (default 3)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
BENCH_DIR=${BENCH_DIR:-/tmp/gitwal-bench-segment}
NPUSH=${NPUSH:-300}
RUNS=${RUNS:-3}
TOOL=${GITWAL_BENCH_SEGMENT:-$top/build/release/tests/gitwal-bench-segment}
LIBGIT2_BUNDLE=${LIBGIT2_BUNDLE:-$top/../shared/data/libgit2.bundle}
die() { echo "bench-segment: $*" >&2; exit 2; }
[[ -x $TOOL ]] || die "$TOOL is missing (scripts/build.sh release)"
[[ -f $LIBGIT2_BUNDLE ]] || die "$LIBGIT2_BUNDLE is missing"
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
mkdir -p "$BENCH_DIR"
repo=$BENCH_DIR/libgit2.git
if [[ ! -d $repo ]]; then
  git clone -q --mirror "$LIBGIT2_BUNDLE" "$repo.tmp"
  git -C "$repo.tmp" repack -q -a -d
  git -C "$repo.tmp" config pack.threads 1
  mv "$repo.tmp" "$repo"
fi
ref=$(git -C "$repo" symbolic-ref HEAD)
echo "bench-segment: $repo $ref, $NPUSH pushes, load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
full=() push=() fullc=() pushc=()
for r in $(seq 1 "$RUNS"); do
  rm -rf "$BENCH_DIR/run"
  out=$("$TOOL" "$repo" "$ref" "$NPUSH" "$BENCH_DIR/run")
  echo "run $r: $(echo $out)"
  full+=("$(awk '$1 == "full" {print $2}' <<< "$out")")
  push+=("$(awk '$1 == "pushes" {print $2}' <<< "$out")")
  fullc+=("$(awk '$1 == "full" {print $3}' <<< "$out")")
  pushc+=("$(awk '$1 == "pushes" {print $3}' <<< "$out")")
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
echo "median: full $(median "${full[@]}") s (cpu $(median "${fullc[@]}") s), $NPUSH pushes $(median "${push[@]}") s (cpu $(median "${pushc[@]}") s)"
rm -rf "$BENCH_DIR/run"
