#!/usr/bin/env bash
# Object pools (DESIGN.md 19): a fork network's archive size and its linked
# restore, against git, side by side in one run (issue 15's benchmark row).
#
#   scripts/bench-pools.sh
#
# The network, laid out the GitLab way under one root (as
# tests/integration/test_pools.sh does, at scale):
#   - a source repository @hashed/ab/cd/<sha256>.git: a copy of the libgit2
#     mirror (git clone --mirror of the bundle), else scripts/gen-repo.sh with
#     GEN_COMMITS;
#   - a pool @pools/ab/cd/<sha256>.git: git clone --bare of the source, then
#     git repack -a -d;
#   - FORKS forks @hashed/ab/cd/<sha256>.git: the source's branches and tags
#     (refs copied; their objects are the pool's), HEAD as the source's,
#     FORK_COMMITS commits of their own on a branch fork-K/topic and one on
#     fork-K/fix (a new file each);
#   - every member (the source too, as Gitaly links it when it makes the
#     pool) names the pool in objects/info/alternates by the relative path
#     Gitaly writes (../../../../../@pools/.../objects) and is repacked
#     local-only (git repack -a -d -l), so its history lives in the pool.
# The network and each member's own `git bundle create --all` are cached in
# BENCH_DIR/net-DATA (stamped with the data and the knobs), so a rerun only
# measures.
#
# Measured, in one run:
#   - `gitwal backup --all --jobs J` (pooled, as `gitwal backup` does it)
#     into a fresh file store, once: its time and peak RSS, then the archive's
#     size: in total, of the pool, of the source and of the forks (each a
#     store directory of its own; bytes of the files). Checked: the pool is
#     stored once (one full backup), every member's manifest is version 2
#     naming the pool and, as its base_lsn and lsn, a full backup of it.
#     Beside it: the sum of the members' own bundles (what 1 + FORKS
#     `git bundle create --all` take), and what 1 + FORKS unpooled full
#     backups would take: (1 + FORKS) x the store size of one `gitwal backup`
#     of the source data unpooled (its pristine copy, no alternates, into a
#     store of its own; each fork would add its few own objects).
#   - for each J in JOBS: the linked restore of everything archived
#     (`gitwal restore --jobs J`: the pool once, then the 1 + FORKS members
#     with relative alternates) against `git clone --mirror` of each
#     member's own bundle, J clones at once (xargs -P J; J=1 is sequential).
#     Warm page cache (one untimed run of each first, WARMUP), median of RUNS runs,
#     wall seconds and peak RSS (/usr/bin/time: of the gitwal process; of the
#     largest clone).
# Correctness, outside the timing: the backup's lines (one ok per
# repository); after every restore, the pool restored once, each member's
# refs (all of them) and HEAD equal to the live member's, and its alternates
# the relative path to the restored pool; `git fsck --connectivity-only` of
# every restored member and of the pool after the last timed restore of each
# J (FSCK=every: after every restore), and of every clone of the last run.
#
# Environment:
#   GITWAL_BIN  the gitwal binary (default build/release/gitwal, built with
#               scripts/build.sh release if missing); copied before use
#   BENCH_DIR   cache and scratch (default /tmp/gitwal-bench-pools)
#   FORKS       forks in the network (default 20)
#   FORK_COMMITS commits of each fork's own on fork-K/topic (default 3)
#   JOBS        the parallelisms compared, each a row (default 2)
#   RUNS        timed runs per command (default 3)
#   WARMUP      1 (default): one untimed run of each first; 0: none (the
#               bundles and the store were just read or written: a loaded
#               machine's time is better spent on the timed runs)
#   FSCK        last (default) or every: when restored members are fsck'd
#   LIBGIT2_BUNDLE  default ../shared/data/libgit2.bundle (also /work/shared/data)
#   GEN_COMMITS without the bundle: size of gen-repo.sh's history (8000)
# The machine's load average is printed: results under load are noisy.
# Exit status: 0 when every check holds, 2 on a correctness failure, a
# command that fails, or a setup error. There is no bar to pass yet: the
# table is the issue's report.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/bench-lib.sh"
bench_defaults BENCH_DIR=/tmp/gitwal-bench-pools FORKS=20 FORK_COMMITS=3 JOBS=2 RUNS=3 WARMUP=1 FSCK=last GEN_COMMITS=8000
if [[ -z ${LIBGIT2_BUNDLE:-} ]]; then
  LIBGIT2_BUNDLE=$top/../shared/data/libgit2.bundle
  [[ -f $LIBGIT2_BUNDLE || ! -f /work/shared/data/libgit2.bundle ]] || LIBGIT2_BUNDLE=/work/shared/data/libgit2.bundle
fi

[[ -x $TIME ]] || die "$TIME is missing (apt-get install time)"
for v in FORKS FORK_COMMITS RUNS GEN_COMMITS; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive number"
done
for j in $JOBS; do [[ $j =~ ^[1-9][0-9]*$ ]] || die "JOBS must be positive numbers (got '$j')"; done
[[ -n $JOBS ]] || die "JOBS must name at least one parallelism"
[[ $WARMUP == 0 || $WARMUP == 1 ]] || die "WARMUP must be 0 or 1 (got '$WARMUP')"
[[ $FSCK == last || $FSCK == every ]] || die "FSCK must be last or every (got '$FSCK')"
bench_gitwal_bin
command -v python3 >/dev/null || die "python3 is required"

bench_setup_run run

broken=()
bad() {
  echo "$BENCH_NAME: CORRECTNESS: $*" >&2
  broken+=("$*")
}
mib() { awk -v b="$1" 'BEGIN {printf "%.1f", b / 1048576}'; }
# bytes PATH...: the bytes of the files under PATH (apparent sizes, as a store bills them).
bytes() { du -sb "$@" | awk '{s += $1} END {print s + 0}'; }
# hashed KIND NAME: GitLab's hashed path of NAME under @KIND (hashed or pools).
hashed() {
  local h
  h=$(printf '%s' "$2" | sha256sum | cut -d' ' -f1)
  printf '@%s/%s/%s/%s.git' "$1" "${h:0:2}" "${h:2:2}" "$h"
}
# store_dir STORE REL: REL's directory in a file store ('/', '%' and '@' percent-encoded).
store_dir() { printf '%s/repos/%s' "$1" "$(printf '%s' "$2" | sed -e 's/%/%25/g' -e 's,/,%2F,g' -e 's/@/%40/g')"; }

# ---------------------------------------------------------------- the network
# prepare_source: sets data (libgit2 or generated) and pristine (its bare repository).
prepare_source() {
  if bench_libgit2_mirror "$BENCH_DIR/libgit2.git"; then
    data=libgit2
  else
    note "generated: scripts/gen-repo.sh, GEN_COMMITS=$GEN_COMMITS (cached in $BENCH_DIR/generated.git)"
    GEN_COMMITS=$GEN_COMMITS "$here/gen-repo.sh" "$BENCH_DIR/generated.git"
    data=generated
  fi
  pristine=$BENCH_DIR/$data.git
}

# own_commit REPO PARENT NAME: a commit on PARENT adding the file NAME (new content), printed.
own_commit() {
  local repo=$1 parent=$2 name=$3 blob tree
  blob=$(seq 1 200 | sed "s/^/$name line /" | git -C "$repo" hash-object -w --stdin)
  tree=$({ git -C "$repo" ls-tree "$parent^{tree}"; printf '100644 blob %s\t%s\n' "$blob" "$name"; } | git -C "$repo" mktree)
  GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@example.com GIT_AUTHOR_DATE='1700000000 +0000' \
    GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@example.com GIT_COMMITTER_DATE='1700000000 +0000' \
    git -C "$repo" commit-tree "$tree" -p "$parent" -m "$name"
}

# link REL: REL's alternates name the pool (Gitaly's relative path), then a local-only repack.
link() {
  local rel=$1 up
  up=$(printf '%s' "$rel" | sed 's,[^/]*,..,g')
  echo "$up/../$P/objects" >"$root/$rel/objects/info/alternates"
  git -C "$root/$rel" repack -q -a -d -l
}

# prepare_network: BENCH_DIR/net-DATA holds root/ (source, pool, forks) and
# bundles/ (each member's git bundle create --all), and meta; sets net, root,
# SRC, P, members (source first), forks_rel.
prepare_network() {
  local stamp t0 k j rel main tip r want
  net=$BENCH_DIR/net-$data
  root=$net/root
  stamp="bench-pools v1 data=$(cat "$pristine/gitwal-bench-stamp") forks=$FORKS commits=$FORK_COMMITS"
  if [[ -f $net/.complete && "$(cat "$net/.complete")" == "$stamp" ]]; then
    # shellcheck disable=SC1091
    source "$net/meta"
    return 0
  fi
  note "network: 1 source + $FORKS forks over a pool of $data (cached in $net)"
  t0=$(now)
  rm -rf "$net"
  mkdir -p "$root" "$net/bundles"
  SRC=$(hashed hashed source)
  P=$(hashed pools pool-1)
  mkdir -p "$(dirname "$root/$SRC")" "$(dirname "$root/$P")"
  cp -a "$pristine" "$root/$SRC"
  rm -f "$root/$SRC/gitwal-bench-stamp"
  git -C "$root/$SRC" config gc.auto 0
  git clone -q --bare "$root/$SRC" "$root/$P"
  git -C "$root/$P" config gc.auto 0
  git -C "$root/$P" repack -q -a -d
  main=$(git -C "$root/$SRC" rev-parse --verify HEAD)
  members=("$SRC")
  forks_rel=()
  for ((k = 1; k <= FORKS; k++)); do
    rel=$(hashed hashed "fork-$k")
    mkdir -p "$(dirname "$root/$rel")"
    git init -q --bare "$root/$rel"
    git -C "$root/$rel" config gc.auto 0
    git -C "$root/$rel" symbolic-ref HEAD "$(git -C "$root/$SRC" symbolic-ref HEAD)"
    # A fork starts with the source's branches and tags, their objects in the pool.
    echo "$root/$P/objects" >"$root/$rel/objects/info/alternates"
    git -C "$root/$SRC" for-each-ref --format='create %(refname) %(objectname)' refs/heads refs/tags |
      git -C "$root/$rel" update-ref --stdin
    tip=$main
    for ((j = 1; j <= FORK_COMMITS; j++)); do tip=$(own_commit "$root/$rel" "$tip" "fork-$k-topic-$j.txt"); done
    git -C "$root/$rel" update-ref "refs/heads/fork-$k/topic" "$tip"
    git -C "$root/$rel" update-ref "refs/heads/fork-$k/fix" "$(own_commit "$root/$rel" "$main" "fork-$k-fix.txt")"
    members+=("$rel")
    forks_rel+=("$rel")
  done
  for rel in "${members[@]}"; do link "$rel"; done
  # The network is what the bench says: the forks' own objects only, the members connected through the pool.
  for rel in "${members[@]}"; do
    r=$(git -C "$root/$rel" count-objects -v | awk '$1 == "in-pack:" || $1 == "count:" {s += $2} END {print s}')
    want=$((3 * (FORK_COMMITS + 1)))
    [[ $rel != "$SRC" ]] || want=0
    ((r == want)) || die "network: $rel holds $r objects of its own after its local-only repack, $want expected"
  done
  git -C "$root/${forks_rel[0]}" fsck --connectivity-only --no-progress 2>"$run/fsck.err" ||
    die "network: git fsck --connectivity-only of ${forks_rel[0]} fails: $(head -n 3 "$run/fsck.err")"
  setups+=("network: source, pool, $FORKS forks, repacks|$(elapsed "$t0")")
  t0=$(now)
  note "network: git bundle create --all of each member"
  for ((k = 0; k < ${#members[@]}; k++)); do
    git -C "$root/${members[k]}" bundle create -q "$net/bundles/m$k.bundle" --all
  done
  setups+=("network: $((FORKS + 1)) x git bundle create --all|$(elapsed "$t0")")
  {
    printf 'SRC=%q\nP=%q\n' "$SRC" "$P"
    printf 'members=(%s)\n' "$(printf '%q ' "${members[@]}")"
    printf 'forks_rel=(%s)\n' "$(printf '%q ' "${forks_rel[@]}")"
  } >"$net/meta"
  echo "$stamp" >"$net/.complete"
}

# ---------------------------------------------------------------- checks
# The live members' states, once (the network does not change during the run).
declare -A live
live_states() {
  local rel
  for rel in "${members[@]}"; do
    live[$rel]=$(refs_of "$root/$rel"; echo "HEAD $(head_of "$root/$rel")")
  done
}
fsck_ok() { # DIR WHAT
  git -C "$1" fsck --connectivity-only --no-progress 2>"$run/fsck.err" ||
    { head -n 5 "$run/fsck.err" >&2; bad "$2: git fsck --connectivity-only fails"; }
}
# check_restore DIR OUT FSCK: what gitwal restore made in DIR (its stdout in OUT).
check_restore() {
  local dir=$1 out=$2 fsck=$3 rel up n
  n=$(grep -c "^ok $P " "$out" || true)
  [[ $n == 1 ]] || bad "restore: the pool $P restored $n times (once expected)"
  for rel in "${members[@]}"; do
    if [[ ! -d $dir/$rel ]]; then bad "restore: $rel was not created"; continue; fi
    [[ "$(refs_of "$dir/$rel"; echo "HEAD $(head_of "$dir/$rel")")" == "${live[$rel]}" ]] ||
      bad "restore: $rel: refs or HEAD differ from the live repository"
    up=$(printf '%s' "$rel" | sed 's,[^/]*,..,g')
    [[ "$(cat "$dir/$rel/objects/info/alternates" 2>/dev/null)" == "$up/../$P/objects" ]] ||
      bad "restore: $rel: alternates are not the relative path to the restored pool"
    [[ $fsck == 1 ]] && fsck_ok "$dir/$rel" "restore: $rel"
  done
  [[ $fsck == 1 ]] && fsck_ok "$dir/$P" "restore: the pool"
  return 0
}
# check_clones DIR FSCK: the clones of the members' bundles (DIR/mK.git).
check_clones() {
  local dir=$1 fsck=$2 k
  for ((k = 0; k < ${#members[@]}; k++)); do
    [[ "$(refs_of "$dir/m$k.git"; echo "HEAD $(head_of "$dir/m$k.git")")" == "${live[${members[k]}]}" ]] ||
      bad "clone of ${members[k]}'s bundle: refs or HEAD differ from the live repository"
    [[ $fsck == 1 ]] && fsck_ok "$dir/m$k.git" "clone of ${members[k]}'s bundle"
  done
  return 0
}

# ---------------------------------------------------------------- backup
# backup_all: the pooled archive of the whole root, once; its sizes and checks.
backup_all() {
  local store=$run/store rel d v f
  note "gitwal backup --all --jobs $job_backup; load $(loadavg)"
  : >"$run/t.backup"
  $TIME -f '%e %M' -o "$run/time.out" "$GW" backup --all --jobs "$job_backup" --root "$root" \
    --store "file://$store" --index "$run/index.db" >"$run/backup.out" 2>"$run/backup.err" ||
    { tail -n 5 "$run/backup.err" >&2; die "gitwal backup --all failed"; }
  tail -n 1 "$run/time.out" >"$run/t.backup"
  [[ "$(grep -c '^ok ' "$run/backup.out")" == $((${#members[@]} + 1)) ]] ||
    { cat "$run/backup.out" >&2; bad "backup --all: $((${#members[@]} + 1)) ok lines expected"; }
  pool_fulls=$(find "$(store_dir "$store" "$P")" -name '*.full.manifest' | wc -l)
  [[ $pool_fulls == 1 ]] || bad "backup --all stored the pool $pool_fulls times (once expected)"
  pool_lsns=$(find "$(store_dir "$store" "$P")" -name '*.full.manifest' | sed -n 's,.*/0*\([0-9][0-9]*\)\.full\.manifest$,\1,p' | sort -n | paste -sd' ')
  for rel in "${members[@]}"; do
    d=$(store_dir "$store" "$rel")
    [[ "$(find "$d" -name '*.full.manifest' | wc -l)" == 1 ]] || { bad "backup --all: $rel: one full backup expected"; continue; }
    v=$(python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); print(m["version"], m["pool"]["repository"], m["pool"]["lsn"], m["pool"]["base_lsn"])' \
      "$(find "$d" -name '*.full.manifest')" 2>/dev/null) || v="(no pool)"
    read -r -a f <<<"$v"
    [[ ${f[0]} == 2 && ${f[1]} == "$P" && ${f[2]} == "${f[3]:-}" && " $pool_lsns " == *" ${f[2]} "* ]] ||
      bad "backup --all: $rel's manifest: version, pool, lsn, base_lsn are '$v'; want 2, $P and one of its full backups' LSNs ($pool_lsns)"
  done
  size_total=$(bytes "$store")
  size_pool=$(bytes "$(store_dir "$store" "$P")")
  size_src=$(bytes "$(store_dir "$store" "$SRC")")
  size_forks=0
  for rel in "${forks_rel[@]}"; do size_forks=$((size_forks + $(bytes "$(store_dir "$store" "$rel")"))); done
  size_index=$(bytes "$run/index.db")
  bundle_src=$(bytes "$net/bundles/m0.bundle")
  bundle_all=$(bytes "$net/bundles")
  bundle_forks=$((bundle_all - bundle_src))
  # One unpooled full backup of the same data (the pristine copy, no alternates), in a store of its own.
  "$GW" backup --root "$BENCH_DIR" --store "file://$run/unpooled" --index "$run/unpooled.db" "$data.git" \
    >"$run/unpooled.out" 2>&1 || { cat "$run/unpooled.out" >&2; die "gitwal backup of $data.git (unpooled) failed"; }
  size_unpooled=$(bytes "$run/unpooled")
  rm -rf "$run/unpooled" "$run/unpooled.db"
}

# ---------------------------------------------------------------- restore vs clone
# restore_vs_clone J: RUNS timed runs (after one warm-up) of each; rows for J.
restore_vs_clone() {
  local j=$1 i k fsck gw base
  : >"$run/t.restore$j"
  : >"$run/t.clone$j"
  for ((k = 0; k < ${#members[@]}; k++)); do echo "$net/bundles/m$k.bundle $run/clones/m$k.git"; done >"$run/clones.list"
  note "jobs $j: git clone --mirror of $((FORKS + 1)) bundles, $j at once; load $(loadavg)"
  for ((i = 1 - WARMUP; i <= RUNS; i++)); do
    rm -rf "$run/clones"
    mkdir -p "$run/clones"
    if ((i == 0)); then untimed xargs -a "$run/clones.list" -P "$j" -L 1 git clone -q --mirror
    else timed "$run/t.clone$j" xargs -a "$run/clones.list" -P "$j" -L 1 git clone -q --mirror; fi
    fsck=0
    ((i == RUNS)) && fsck=1
    check_clones "$run/clones" "$fsck"
  done
  rm -rf "$run/clones"
  note "jobs $j: gitwal restore --jobs $j of everything; load $(loadavg)"
  for ((i = 1 - WARMUP; i <= RUNS; i++)); do
    rm -rf "$run/restored"
    if ((i == 0)); then
      "$GW" restore --jobs "$j" --to "$run/restored" --store "file://$run/store" --index "$run/index.db" \
        >"$run/restore.out" 2>"$run/cmd.err" || { cat "$run/cmd.err" >&2; die "gitwal restore failed"; }
    else
      $TIME -f '%e %M' -o "$run/time.out" "$GW" restore --jobs "$j" --to "$run/restored" --store "file://$run/store" \
        --index "$run/index.db" >"$run/restore.out" 2>"$run/cmd.err" || { cat "$run/cmd.err" >&2; die "gitwal restore failed"; }
      tail -n 1 "$run/time.out" >>"$run/t.restore$j"
    fi
    fsck=0
    [[ $FSCK == every || $i == "$RUNS" ]] && fsck=1
    check_restore "$run/restored" "$run/restore.out" "$fsck"
  done
  rm -rf "$run/restored"
  gw=$(median "$run/t.restore$j")
  base=$(median "$run/t.clone$j")
  rows+=("restore all $((FORKS + 1)) + pool, --jobs $j (s)|$gw|$base|$(ratio "$gw" "$base")|$j at once")
  rows+=("  peak RSS (MiB)|$(max_rss_mib "$run/t.restore$j")|$(max_rss_mib "$run/t.clone$j")|$(ratio "$(max_rss_kb "$run/t.restore$j")" "$(max_rss_kb "$run/t.clone$j")")|largest clone")
  details+=("jobs $j: runs (s): gitwal restore [$(runs_of "$run/t.restore$j")], git clone --mirror x$((FORKS + 1)) [$(runs_of "$run/t.clone$j")]")
}

# ---------------------------------------------------------------- main
rows=()    # "what|gitwal|git|ratio|note"
details=() # lines printed under the table
load_start=$(loadavg)
prepare_source
prepare_network
live_states
objects=$(git -C "$pristine" count-objects -v | awk '$1 == "in-pack:" || $1 == "count:" {s += $2} END {print s}')
job_backup=${JOBS##* }
backup_all
n=$((FORKS + 1))
rows+=("archive, total (store)|$(mib "$size_total")|$(mib "$bundle_all")|$(ratio "$size_total" "$bundle_all")|git: the $n members' bundles")
rows+=("  pool ($pool_fulls full backup)|$(mib "$size_pool")|-|-|")
rows+=("  source (own objects)|$(mib "$size_src")|$(mib "$bundle_src")|$(ratio "$size_src" "$bundle_src")|git: its bundle")
rows+=("  $FORKS forks (own objects), sum|$(mib "$size_forks")|$(mib "$bundle_forks")|$(ratio "$size_forks" "$bundle_forks")|git: their bundles")
rows+=("  per fork, mean (KiB)|$(awk -v b="$size_forks" -v n="$FORKS" 'BEGIN {printf "%.1f", b / n / 1024}')|$(awk -v b="$bundle_forks" -v n="$FORKS" 'BEGIN {printf "%.1f", b / n / 1024}')|-|")
rows+=("$n unpooled full backups (estimate)|$(mib $((n * size_unpooled)))|$(mib "$bundle_all")|$(ratio $((n * size_unpooled)) "$bundle_all")|$n x one measured")
rows+=("  pooled total / unpooled|$(ratio "$size_total" $((n * size_unpooled)))|-|-|")
rows+=("backup --all --jobs $job_backup, once (s)|$(cut -d' ' -f1 "$run/t.backup")|-|-|")
rows+=("  peak RSS (MiB)|$(max_rss_mib "$run/t.backup")|-|-|")
details+=("index.db after the backup: $(mib "$size_index") MiB (not in the store's total); one unpooled full backup of $data: $(mib "$size_unpooled") MiB")
for j in $JOBS; do restore_vs_clone "$j"; done

echo
echo "gitwal object pools benchmark ($("$GW" --version 2>/dev/null || echo gitwal), $(git --version), $(nproc) cores)"
echo "network: 1 source + $FORKS forks linked to one pool of $data ($objects objects), each fork $FORK_COMMITS + 1 commits of its own"
echo "load average: at start $load_start, at end $(loadavg); restores: median of $RUNS runs (warm-up: $WARMUP); sizes in MiB; times in seconds"
printf '%-44s | %9s | %9s | %7s | %s\n' what gitwal git ratio note
printf '%s\n' "---------------------------------------------+-----------+-----------+---------+---------------------------"
for r in "${rows[@]}"; do
  IFS='|' read -r c1 c2 c3 c4 c5 <<<"$r"
  printf '%-44s | %9s | %9s | %7s | %s\n' "$c1" "$c2" "$c3" "$c4" "$c5"
done
if ((${#details[@]})); then printf '%s\n' "${details[@]}"; fi
print_setups 44
if ((${#broken[@]})); then
  echo
  printf 'CORRECTNESS FAILURE: %s\n' "${broken[@]}"
  exit 2
fi
echo "correctness: backup lines, the pool stored once, member manifests (version 2, the pool's LSN); after every restore:"
echo "  the pool restored once, refs, HEAD, relative alternates; git fsck --connectivity-only of every restored member,"
echo "  the pool and every clone ($FSCK run): ok"
