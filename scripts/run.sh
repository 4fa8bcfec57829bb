#!/usr/bin/env bash
# Set up and run gitwal on the embedded default (file store + local index).
#   scripts/run.sh         the demo: what gitwal is for, in under a minute
#   scripts/run.sh ROOT    back up every bare repository under ROOT, restore them
#                          into a scratch directory, check them with git fsck, and
#                          print what the store holds
# Installs dependencies and builds first.
#
# The demo makes a root of a few repositories with real history (a mirror clone
# of ../shared/data/libgit2.bundle when present, plus generated ones), starts
# the real archiver service ('gitwal archive') on it, pushes several kinds of
# change (fast-forward, tag, force-push that rewinds a branch, branch deletion),
# notes a time T between them, then restores with 'gitwal restore --until T' and
# shows that the restored refs are those of T, not those of now. Then 'gitwal
# audit' and 'gitwal info', and the service is stopped. The last line is the
# verdict: 'demo: PASS ...' (exit 0) or 'demo: FAIL ...' (exit 1).
# It waits for what it can observe (the service's log, the archive's newest
# state from 'gitwal restore --dry-run --json'), never for a fixed time.
#
# Environment:
#   GITWAL_BIN       use this gitwal binary (no dependencies installed, no build)
#   GITWAL_DEMO_DIR  where the demo works (default out/demo; emptied first)
#   LIBGIT2_BUNDLE   the libgit2 bundle (default ../shared/data/libgit2.bundle);
#                    without it, every repository of the demo is generated
#   GITWAL_DEMO_CACHE  where the mirror clone of the bundle is kept between runs
#                    (default out/cache)
set -euo pipefail
cd "$(dirname "$0")/.."
src=$(pwd)

if [ -z "${GITWAL_BIN:-}" ]; then
  scripts/deps.sh
  scripts/build.sh release
  GITWAL_BIN=$src/build/release/gitwal
fi
bin=$GITWAL_BIN
export GITWAL_BIN

# ---- gitwal ROOT: a backup of that root, restored and checked ----
if [ $# -gt 0 ]; then
  root=$1
  state=${GITWAL_STATE_DIR:-$src/out/state}
  export GITWAL_STATE_DIR=$state
  echo "== gitwal backup --all (root $root, state $state)"
  "$bin" backup --root "$root" --all
  restore_dir=$(mktemp -d "${TMPDIR:-/tmp}/gitwal-restore.XXXXXX")
  echo "== gitwal restore --to $restore_dir"
  "$bin" restore --to "$restore_dir"
  for repo in $(cd "$restore_dir" && find . -name '*.git' -type d -prune | sed 's|^\./||'); do
    git -C "$restore_dir/$repo" fsck --full --no-progress >/dev/null && echo "fsck ok: $repo"
  done
  echo "== gitwal info"
  "$bin" info
  exit 0
fi

# ---- the demo ----
demo=${GITWAL_DEMO_DIR:-$src/out/demo}
bundle=${LIBGIT2_BUNDLE:-$src/../shared/data/libgit2.bundle}
root=$demo/root work=$demo/work log=$demo/archive.log

# Each run starts afresh; only a directory a demo made (.gitwal-demo in it) is ever emptied.
if [ -n "$(ls -A "$demo" 2>/dev/null)" ]; then
  if [ ! -f "$demo/.gitwal-demo" ]; then
    echo "demo: FAIL: $demo is not empty and is not a directory the demo made (no .gitwal-demo in it); set GITWAL_DEMO_DIR"
    exit 1
  fi
  chmod -R u+w "$demo"
  rm -rf "$demo"
fi
mkdir -p "$root" "$work" "$demo/xdg"
touch "$demo/.gitwal-demo"
# The demo's own state and settings: the embedded default store and index under
# its state directory, whatever the caller's environment or config files say.
export GITWAL_STATE_DIR=$demo/state XDG_CONFIG_HOME=$demo/xdg
unset GITWAL_STORE GITWAL_INDEX GITWAL_CONFIG GITWAL_ROOT
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=$demo/gitconfig
git config --global init.defaultBranch main
git config --global user.name "gitwal demo"
git config --global user.email demo@gitwal.invalid
git config --global gc.auto 0

svc='' step='setting up' verdict=''
finish() {
  local rc=$?
  # A demo that failed stops its service at once (the archive is crash-safe).
  if [ -n "$svc" ]; then kill -KILL "$svc" 2>/dev/null || true; wait "$svc" 2>/dev/null || true; fi
  [ -n "$verdict" ] || echo "demo: FAIL while $step (exit $rc; the service's log: $log)"
}
trap finish EXIT
fail() { verdict=fail; echo "demo: FAIL: $*"; exit 1; }
say() { printf '\n== %s\n' "$*"; }
short() { printf '%.7s' "$1"; }

# gen_repo REL COMMITS: a bare repository under the root with COMMITS commits on main,
# pushed from a working clone in $work/REL.
gen_repo() {
  local rel=$1 n=$2 w=$work/$1 i
  git init -q --bare "$root/$rel"
  git init -q "$w"
  git -C "$w" remote add origin "$root/$rel"
  for i in $(seq 1 "$n"); do
    printf 'release notes %d\n' "$i" >> "$w/NEWS"
    printf 'int step%d(void) { return %d; }\n' "$i" "$i" > "$w/step$i.c"
    git -C "$w" add -A
    git -C "$w" commit -qm "$rel: change $i"
  done
  git -C "$w" push -q origin main
}
# commit REL MESSAGE: one new commit in REL's working clone.
commit() {
  printf '%s\n' "$2" >> "$work/$1/NEWS"
  git -C "$work/$1" commit -qam "$2"
}
# state DIR: "name oid" per ref and "HEAD target", sorted (the refs a restore must reproduce).
state() {
  { git -C "$1" for-each-ref --format='%(refname) %(objectname)'
    echo "HEAD $(git -C "$1" symbolic-ref -q HEAD || git -C "$1" rev-parse HEAD)"; } | LC_ALL=C sort
}
# caught_up REL...: until the archive's newest state of every repository equals the live one
# (gitwal restore --dry-run --json against the root) and the service has logged the record of
# each REL it wrote for the change, then print those log lines.
logged=0
caught_up() {
  local deadline=$((SECONDS + 120)) rel missing data
  python3 "$src/tests/integration/pitr_check.py" caught-up "$root" 120 "${repos[@]}" ||
    fail "the archive did not catch up with the pushes: $(tail -5 "$log")"
  while :; do
    # What the service logged since the last step, taken only when it ends with a whole line.
    data=$(tail -n +$((logged + 1)) "$log"; echo .)
    data=${data%.}
    missing=''
    if [[ $data == *$'\n' ]]; then
      for rel in "$@"; do
        grep -Eq "event=(full|segment) repo=$rel " <<<"$data" || missing+=" $rel"
      done
    else
      missing=" $*"
    fi
    [ -n "$missing" ] || break
    [ $SECONDS -lt $deadline ] || fail "the service logged no record for$missing: $(tail -5 "$log")"
    sleep 0.05
  done
  logged=$((logged + $(printf '%s' "$data" | grep -c '')))
  printf '%s' "$data" | grep -E 'event=(full|segment) ' | sed -e 's/^ts=[^ ]* /  service: /' -e 's/ seconds=[^ ]*//'
}

step="making the demo root"
say "demo root $root"
repos=()
if [ -f "$bundle" ]; then
  # One mirror clone of the bundle is kept (indexing 75 MB of history takes a while), and
  # made again when the bundle is another one.
  name=$(basename "$bundle" .bundle).git
  cache=${GITWAL_DEMO_CACHE:-$src/out/cache}/$name
  made_from="$(readlink -f "$bundle") $(stat -c '%s %Y' "$bundle")"
  if [ "$(cat "$cache.from" 2>/dev/null)" != "$made_from" ]; then
    echo "cloning $bundle (once; kept in $cache)"
    rm -rf "$cache" "$cache.tmp" "$cache.from"; mkdir -p "$(dirname "$cache")"
    git clone -q --mirror "$bundle" "$cache.tmp"
    # A bundle without HEAD leaves the clone's HEAD on an unborn branch: put it on a real one.
    if ! git -C "$cache.tmp" rev-parse -q --verify HEAD >/dev/null; then
      head=$(git -C "$cache.tmp" for-each-ref --format='%(refname)' refs/heads | head -1)
      for b in refs/heads/main refs/heads/master; do
        if git -C "$cache.tmp" rev-parse -q --verify "$b" >/dev/null; then head=$b; break; fi
      done
      [ -n "$head" ] || fail "$bundle holds no branch"
      git -C "$cache.tmp" symbolic-ref HEAD "$head"
    fi
    mv "$cache.tmp" "$cache"
    echo "$made_from" > "$cache.from"
  fi
  cp -a "$cache" "$root/$name"
  repos+=("$name")
else
  gen_repo tools/cli.git 12
  repos+=(tools/cli.git)
fi
gen_repo shop/app.git 8
gen_repo shop/lib.git 5
repos+=(shop/app.git shop/lib.git)
git -C "$work/shop/app.git" checkout -q -b feature
commit shop/app.git "feature: first draft"
git -C "$work/shop/app.git" push -q origin feature
git -C "$work/shop/app.git" checkout -q main
git -C "$work/shop/lib.git" tag v0.9
git -C "$work/shop/lib.git" push -q origin v0.9
for rel in "${repos[@]}"; do
  git -C "$root/$rel" rev-parse -q --verify HEAD >/dev/null ||
    fail "$rel: HEAD ($(git -C "$root/$rel" symbolic-ref -q HEAD)) is not on an existing branch"
  printf '  %-16s %5s commits, %3s refs, HEAD -> %s\n' "$rel" "$(git -C "$root/$rel" rev-list --all | wc -l)" \
    "$(git -C "$root/$rel" for-each-ref | wc -l)" "$(git -C "$root/$rel" symbolic-ref --short HEAD)"
done

step="starting the archiver service"
say "gitwal archive --root $root   (the always-on service, in the background)"
"$bin" archive --root "$root" 2> "$log" &
svc=$!
for _ in $(seq 1 600); do
  grep -q 'event=start' "$log" && break
  kill -0 "$svc" 2>/dev/null || fail "the service exited at start-up: $(cat "$log")"
  sleep 0.05
done
grep -q 'event=start' "$log" || fail "the service did not log event=start within 30 s"
echo "  service: pid $svc, store $GITWAL_STATE_DIR/store (file), index $GITWAL_STATE_DIR/index.db"
caught_up "${repos[@]}"

step="pushing before T"
say "pushes before T"
other=${repos[0]}
echo "- fast-forward: 2 commits on shop/app.git main"
commit shop/app.git "fix: handle empty carts"
commit shop/app.git "fix: round prices"
git -C "$work/shop/app.git" push -q origin main
caught_up shop/app.git
echo "- tag: shop/lib.git v1.0 (annotated)"
git -C "$work/shop/lib.git" tag -a -m "lib 1.0" v1.0
git -C "$work/shop/lib.git" push -q origin v1.0
caught_up shop/lib.git

# T: everything above is archived (the wait proved it), everything below happens after it.
mkdir -p "$demo/at-T" "$demo/now" "$demo/restored-state"
for rel in "${repos[@]}"; do state "$root/$rel" > "$demo/at-T/${rel//\//_}"; done
T=$(date -u +%Y-%m-%dT%H:%M:%S.%6NZ)
say "T = $T   (noted: the archive holds everything above)"

step="pushing after T"
say "pushes after T"
echo "- force-push: shop/app.git main rewound 3 commits, then a new commit on top"
git -C "$work/shop/app.git" reset -q --hard HEAD~3
commit shop/app.git "redo: pricing, the other way"
git -C "$work/shop/app.git" push -q -f origin main
caught_up shop/app.git
echo "- branch deletion: shop/app.git feature"
git -C "$work/shop/app.git" push -q origin :feature
caught_up shop/app.git
echo "- tag and fast-forward: shop/lib.git v2.0 on a new commit"
commit shop/lib.git "lib 2.0"
git -C "$work/shop/lib.git" tag v2.0
git -C "$work/shop/lib.git" push -q origin main v2.0
caught_up shop/lib.git
victim=$(git -C "$root/$other" for-each-ref --format='%(refname)' refs/heads | grep -v '^refs/heads/main$' | tail -1 || true)
if [ -n "$victim" ]; then
  echo "- branch deletion: $other ${victim#refs/heads/}"
  git -C "$root/$other" push -q . ":$victim"
else
  echo "- new branch: $other release (pushed)"
  git -C "$root/$other" push -q . main:refs/heads/release
fi
caught_up "$other"
for rel in "${repos[@]}"; do state "$root/$rel" > "$demo/now/${rel//\//_}"; done

step="restoring as of T"
say "gitwal restore --until $T --to $demo/restored"
"$bin" restore --until "$T" --to "$demo/restored" 2>&1 | sed 's/^/  /' || fail "gitwal restore --until $T failed"
for rel in "${repos[@]}"; do
  [ -d "$demo/restored/$rel" ] || fail "$rel was not restored"
  git -C "$demo/restored/$rel" fsck --connectivity-only --no-progress 2> "$demo/fsck.err" >/dev/null ||
    fail "git fsck of the restored $rel: $(cat "$demo/fsck.err")"
  state "$demo/restored/$rel" > "$demo/restored-state/${rel//\//_}"
done
echo "  git fsck --connectivity-only: ok for ${#repos[@]} restored repositories"

say "refs that changed after T: at T, now, and as restored"
changed=0 same=0 wrong=
printf 'repository\tref\tat T\tnow\trestored\tchange after T\n' > "$demo/changes"
for rel in "${repos[@]}"; do
  f=${rel//\//_}
  # One line per ref that differs anywhere: "name at now restored" ('-' when absent).
  while read -r name a n r; do
    [ "$a" = "$n" ] || changed=$((changed + 1))
    if [ "$a" = "$n" ]; then how="none"
    elif [ "$a" = - ]; then how="created"
    elif [ "$n" = - ]; then how="deleted"
    elif git -C "$root/$rel" merge-base --is-ancestor "$a" "$n" 2>/dev/null; then how="fast-forward"
    else how="rewound (force-push)"; fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$rel" "$name" "$(short "$a")" "$(short "$n")" "$(short "$r")" "$how"
  done < <(LC_ALL=C join -a1 -a2 -e- -o0,1.2,2.2 "$demo/at-T/$f" "$demo/now/$f" |
           LC_ALL=C join -a1 -a2 -e- -o0,1.2,1.3,2.2 - "$demo/restored-state/$f" | awk '$2 != $3 || $2 != $4') \
    >> "$demo/changes"
  if cmp -s "$demo/at-T/$f" "$demo/restored-state/$f"; then
    same=$((same + $(wc -l < "$demo/at-T/$f")))
  else
    wrong+=" $rel"
  fi
done
awk -F'\t' '{ for (i = 1; i <= NF; i++) { cell[NR, i] = $i; if (length($i) > w[i]) w[i] = length($i) } }
  END { for (r = 1; r <= NR; r++) { line = " "; for (i = 1; i <= 6; i++) line = line sprintf(" %-" w[i] "s", cell[r, i]); sub(/ +$/, "", line); print line } }' \
  "$demo/changes"
[ -z "$wrong" ] || fail "the restored refs differ from the state at T in:$wrong"
[ "$changed" -gt 0 ] || fail "nothing changed after T, so the restore proves nothing"
echo "  restored = at T for all $same refs and HEADs of ${#repos[@]} repositories; $changed refs differ now"

step="auditing"
say "gitwal audit   (the archive proven whole from the store itself)"
"$bin" audit 2>&1 | sed 's/^/  /' || fail "gitwal audit found problems"

step="listing the archive"
say "gitwal info"
"$bin" info 2>&1 | sed 's/^/  /' || fail "gitwal info failed"

step="stopping the service"
say "stopping the service (SIGTERM)"
kill -TERM "$svc"
rc=0; wait "$svc" || rc=$?
svc=
[ $rc -eq 0 ] || fail "the service exited $rc after SIGTERM: $(tail -5 "$log")"
grep -q 'event=stop' "$log" || fail "the service logged no event=stop"
segs=$(grep -c 'event=segment ' "$log" || true)
fulls=$(grep -c 'event=full ' "$log" || true)
echo "  service: exit 0 after $fulls full backups and $segs log segments (log: $log)"

verdict=pass
echo "demo: PASS: restore --until T reproduced all ${#repos[@]} repositories exactly as at T ($changed refs changed after T by fast-forward, force-push, deletion and tag); audit clean; the service archived every push and stopped cleanly"
