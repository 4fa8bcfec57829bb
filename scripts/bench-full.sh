#!/usr/bin/env bash
# Full backup and restore: gitwal against git, side by side in one run.
#
#   scripts/bench-full.sh
#
# For each data set it measures, with /usr/bin/time (wall seconds, peak RSS),
# warm page cache (each command runs once untimed first), median of RUNS runs:
#   git bundle create X.bundle --all       (in the repository)
#   gitwal backup                          (a fresh store and index each run, so
#                                           every run is a full backup; the whole command)
#   git clone --mirror X.bundle            (of the bundle git made)
#   gitwal restore                         (into a fresh directory each run)
# and prints a table, then PASS/FAIL for the project's bars:
#   backup wall time <= 1/3 of git bundle create --all (goal 1/5),
#   gitwal backup peak RSS <= 64 MiB,
#   restore wall time <= 1/5 of git clone --mirror (goal 1/10).
# It also checks correctness outside the timed runs: each gitwal-restored
# repository has the source's refs (git for-each-ref) and HEAD and passes
# git fsck --connectivity-only; the last one passes a full git fsck; the
# bundle gitwal wrote clones with git clone --mirror to the same refs and HEAD.
#
# Data sets:
#   libgit2    git clone --mirror of ../shared/data/libgit2.bundle (sha256 checked
#              against libgit2.bundle.sha256 if present; skipped if the bundle is absent)
#   generated  scripts/gen-repo.sh: 320k+ objects in 5 packs (one duplicating
#              others), 450 loose objects, ~360 refs
# Both are cached under BENCH_DIR, so re-runs skip the clone and the generation.
#
# Environment:
#   GITWAL_BIN   the gitwal binary (default build/release/gitwal, built with
#                scripts/build.sh release if missing)
#   BENCH_DIR    cache and scratch directory (default /tmp/gitwal-bench)
#   RUNS         timed runs per command (default 3)
#   DATASETS     which data sets, in order (default "libgit2 generated")
#   LIBGIT2_BUNDLE  path of the libgit2 bundle (default ../shared/data/libgit2.bundle)
#   GEN_COMMITS  size of the generated history (default 32000; see gen-repo.sh)
# Exit status: 0 if every bar passes, 1 if a bar fails, 2 on a correctness
# failure or a command that fails.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/bench-lib.sh"
BENCH_DIR=${BENCH_DIR:-/tmp/gitwal-bench}
RUNS=${RUNS:-3}
DATASETS=${DATASETS:-"libgit2 generated"}
LIBGIT2_BUNDLE=${LIBGIT2_BUNDLE:-$top/../shared/data/libgit2.bundle}
RSS_BAR_KB=$((64 * 1024))

[[ -x $TIME ]] || die "$TIME is missing (apt-get install time)"
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive number"
bench_gitwal_bin

bench_setup_run work
scratch=$run
mkdir -p "$BENCH_DIR/root"
root=$BENCH_DIR/root
gitwal_version="$("$GW" --version 2>/dev/null || echo gitwal) ($GITWAL_BIN)"
GITWAL_BIN=$GW

same_repo_state() { # SOURCE COPY WHAT
  diff <(refs_of "$1") <(refs_of "$2") >"$scratch/refs.diff" ||
    { head -n 20 "$scratch/refs.diff" >&2; die "$3: refs differ from the source"; }
  [[ "$(head_of "$1")" == "$(head_of "$2")" ]] || die "$3: HEAD is $(head_of "$2"), the source has $(head_of "$1")"
  [[ "$(git -C "$1" rev-parse -q --verify HEAD || true)" == "$(git -C "$2" rev-parse -q --verify HEAD || true)" ]] ||
    die "$3: HEAD resolves differently"
}

prepare_libgit2() { bench_libgit2_mirror "$root/libgit2.git"; }

prepare_generated() {
  note "generated: scripts/gen-repo.sh (cached in $root/generated.git)"
  "$here/gen-repo.sh" "$root/generated.git"
}

rows=()
bars=()
failed_bars=0

bench_one() {
  local name=$1 rel=$1.git repo=$root/$1.git w=$scratch/$1 i
  local objects packs loose nrefs
  mkdir -p "$w"
  objects=$(git -C "$repo" cat-file --batch-all-objects --batch-check='%(objectname)' | wc -l)
  packs=$(git -C "$repo" count-objects -v | awk '$1 == "packs:" {print $2}')
  loose=$(git -C "$repo" count-objects -v | awk '$1 == "count:" {print $2}')
  nrefs=$(git -C "$repo" for-each-ref | wc -l)
  note "$name: $objects objects, $packs packs, $loose loose, $nrefs refs; load $(cut -d' ' -f1-3 /proc/loadavg)"

  # git bundle create --all
  : >"$w/t.bundle"
  for ((i = 0; i <= RUNS; i++)); do
    rm -f "$w/git.bundle"
    if ((i == 0)); then untimed git -C "$repo" bundle create -q "$w/git.bundle" --all
    else timed "$w/t.bundle" git -C "$repo" bundle create -q "$w/git.bundle" --all; fi
  done

  # gitwal backup: a fresh store and index each run
  : >"$w/t.backup"
  for ((i = 0; i <= RUNS; i++)); do
    rm -rf "$w/store" "$w/index.db"
    if ((i == 0)); then untimed "$GITWAL_BIN" backup --root "$root" --store "file://$w/store" --index "$w/index.db" "$rel"
    else timed "$w/t.backup" "$GITWAL_BIN" backup --root "$root" --store "file://$w/store" --index "$w/index.db" "$rel"; fi
  done

  # git clone --mirror of git's bundle
  : >"$w/t.clone"
  for ((i = 0; i <= RUNS; i++)); do
    rm -rf "$w/clone.git"
    if ((i == 0)); then untimed git clone -q --mirror "$w/git.bundle" "$w/clone.git"
    else timed "$w/t.clone" git clone -q --mirror "$w/git.bundle" "$w/clone.git"; fi
  done
  rm -rf "$w/clone.git"

  # gitwal restore into a fresh directory; check each result outside the timing
  : >"$w/t.restore"
  for ((i = 0; i <= RUNS; i++)); do
    rm -rf "$w/restored"
    if ((i == 0)); then untimed "$GITWAL_BIN" restore --store "file://$w/store" --index "$w/index.db" --to "$w/restored" --repo "$rel"
    else timed "$w/t.restore" "$GITWAL_BIN" restore --store "file://$w/store" --index "$w/index.db" --to "$w/restored" --repo "$rel"; fi
    same_repo_state "$repo" "$w/restored/$rel" "$name: gitwal restore"
    git -C "$w/restored/$rel" fsck --connectivity-only --no-progress 2>"$w/fsck.err" ||
      { cat "$w/fsck.err" >&2; die "$name: git fsck --connectivity-only fails on the restored repository"; }
  done
  note "$name: git fsck --full on the restored repository"
  git -C "$w/restored/$rel" fsck --full --no-progress 2>"$w/fsck.err" ||
    { cat "$w/fsck.err" >&2; die "$name: git fsck --full fails on the restored repository"; }
  [[ "$(git -C "$w/restored/$rel" cat-file --batch-all-objects --batch-check='%(objectname)' | wc -l)" == "$objects" ]] ||
    die "$name: the restored repository does not hold the $objects objects of the source"

  # The bundle gitwal wrote is a plain git bundle.
  local gbundle
  gbundle=$(find "$w/store" -name '*.full.bundle' | head -n 1)
  [[ -n $gbundle ]] || die "$name: no *.full.bundle in the store"
  note "$name: git clone --mirror of gitwal's bundle"
  git clone -q --mirror "$gbundle" "$w/from-gitwal-bundle.git" 2>"$w/clone.err" ||
    { cat "$w/clone.err" >&2; die "$name: git clone --mirror of gitwal's bundle fails"; }
  same_repo_state "$repo" "$w/from-gitwal-bundle.git" "$name: clone of gitwal's bundle"
  rm -rf "$w/from-gitwal-bundle.git" "$w/restored" "$w/store" "$w/git.bundle"

  local gb wb gc wr rb rr rss_b rss_r
  gb=$(median "$w/t.bundle")
  wb=$(median "$w/t.backup")
  gc=$(median "$w/t.clone")
  wr=$(median "$w/t.restore")
  rb=$(ratio "$wb" "$gb")
  rr=$(ratio "$wr" "$gc")
  rss_b=$(max_rss_mib "$w/t.backup")
  rss_r=$(max_rss_mib "$w/t.restore")
  rows+=("$(printf '%-10s %8s %6s %6s | %10s %14s %6s %9s | %9s %15s %6s %9s' \
    "$name" "$objects" "$packs" "$loose" "$gb" "$wb" "$rb" "$rss_b" "$gc" "$wr" "$rr" "$rss_r")")
  rows+=("$(printf '%-10s   runs: bundle [%s] backup [%s] clone [%s] restore [%s]; git rss(MiB): bundle %s, clone %s' \
    "" "$(runs_of "$w/t.bundle")" "$(runs_of "$w/t.backup")" "$(runs_of "$w/t.clone")" "$(runs_of "$w/t.restore")" \
    "$(max_rss_mib "$w/t.bundle")" "$(max_rss_mib "$w/t.clone")")")

  bar "$name" "backup time <= 1/3 of git bundle (goal 1/5)" "$(le "$rb" 0.3333 && echo 1 || echo 0)" \
    "$(le "$rb" 0.2 && echo 1 || echo 0)" "ratio $rb"
  bar "$name" "backup peak RSS <= 64 MiB" "$(le "$(max_rss_kb "$w/t.backup")" $RSS_BAR_KB && echo 1 || echo 0)" "" \
    "$rss_b MiB"
  bar "$name" "restore time <= 1/5 of git clone (goal 1/10)" "$(le "$rr" 0.2 && echo 1 || echo 0)" \
    "$(le "$rr" 0.1 && echo 1 || echo 0)" "ratio $rr"
}

# bar DATASET WHAT PASSED GOAL_MET DETAIL
bar() {
  local verdict=FAIL goal=""
  if [[ $3 == 1 ]]; then verdict=PASS; else failed_bars=$((failed_bars + 1)); fi
  [[ -z $4 ]] || { [[ $4 == 1 ]] && goal=", goal met" || goal=", goal not met"; }
  bars+=("$(printf '%-4s %-10s %-46s (%s%s)' "$verdict" "$1" "$2" "$5" "$goal")")
}

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
for ds in $DATASETS; do
  case "$ds" in
    libgit2) prepare_libgit2 || { rows+=("$(printf '%-10s skipped: %s is absent' libgit2 "$LIBGIT2_BUNDLE")"); continue; } ;;
    generated) prepare_generated ;;
    *) die "unknown data set $ds (libgit2, generated)" ;;
  esac
  bench_one "$ds"
done
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

echo
echo "gitwal full backup/restore vs git: $gitwal_version, $(git --version)"
echo "$(nproc) cores; load average at start $load_start, at end $load_end; median of $RUNS warm runs; times in seconds"
echo "ratio = gitwal / git; rss = peak RSS of gitwal, the largest of the runs"
echo
printf '%-10s %8s %6s %6s | %10s %14s %6s %9s | %9s %15s %6s %9s\n' \
  dataset objects packs loose "git bundle" "gitwal backup" ratio "rss(MiB)" "git clone" "gitwal restore" ratio "rss(MiB)"
printf '%s\n' "${rows[@]}"
echo
if ((${#bars[@]})); then printf '%s\n' "${bars[@]}"; fi
if ((${#bars[@]})); then
  echo "correctness: refs, HEAD, fsck --connectivity-only (every restore), fsck --full (once), clone of gitwal's bundle: ok"
else
  echo "no data set was measured"
fi
rm -rf "$scratch"
((failed_bars == 0)) || exit 1
