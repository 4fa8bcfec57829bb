# Object pools (DESIGN.md 19), GitLab's layout: a source repository, a pool made from it
# (git clone --bare, refreshed by fetching from the source), two forks linked to the pool by
# a relative and by an absolute alternates path, repacked local-only. 'gitwal backup' of a
# fork backs up the pool first and keeps only the fork's own objects (manifest version 2,
# its "pool"); restore of a fork (latest and --until, alone and with the rest) restores the
# pool once and writes the fork's alternates relative to it: refs and HEAD exact and
# 'git fsck --connectivity-only' clean at each step, also after the pool's repack, pushes to
# forks and source, and a fork deleted. --standalone gives a self-contained fork instead
# (git fsck --full clean with no alternates).
source "$(dirname "$0")/lib.sh"

pool_network
# manifest_field REL LSN EXPR: a Python expression over REL's manifest at LSN, m.
manifest_field() {
  python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' \
    "$(store_dir "$1")/$(printf '%020d' "$2").full.manifest" "$3"
}

# check_restored DIR REL STATE: REL under DIR has STATE's refs and HEAD, and is connectivity-clean
# (a fork through its alternates, which must be relative and name the pool under DIR).
check_restored() {
  local dir=$1 rel=$2 state=$3
  diff <(cat "$state") <(repo_state "$dir/$rel") >&2 || fail "$rel in $dir: refs or HEAD differ"
  git -C "$dir/$rel" fsck --connectivity-only --no-progress >/dev/null 2>"$T/fsck.err" ||
    fail "$rel in $dir: fsck --connectivity-only: $(cat "$T/fsck.err")"
  if [ "$rel" = "$F1" ] || [ "$rel" = "$F2" ]; then
    [ "$(cat "$dir/$rel/objects/info/alternates")" = "../../../../../$P/objects" ] ||
      fail "$rel in $dir: alternates $(cat "$dir/$rel/objects/info/alternates")"
  fi
}

declare -A AT STATE
n=0
# step NAME: back up the forks (which back up the pool first) and the source; remember the time and states.
step() {
  local rel out
  n=$((n + 1))
  for rel in "$F1" "$F2" "$SRC"; do
    [ -d "$R/$rel" ] || continue
    out=$(backup_ok "$rel")
    grep -q "^ok $rel " <<<"$out" || fail "step $1: backup $rel: $out"
  done
  AT[$n]=$(pitr_now_us)
  for rel in "$F1" "$F2" "$SRC" "$P"; do
    STATE[$n,$rel]=$T/state.$n.${rel//\//_}
    live_state "$R/$rel" > "${STATE[$n,$rel]}"
  done
  pass "step $n ($1) archived"
}

step "forks linked, nothing of their own"
# The fork's manifest names the pool's full backup written just before it, and holds no object the pool had.
m1=$(ls "$(store_dir "$F1")" | grep -c 'full.manifest$')
[ "$m1" -eq 1 ] || fail "one full backup of $F1 expected: $m1"
[ "$(manifest_field "$F1" 1 'm["version"]')" = 2 ] || fail "$F1: manifest version"
[ "$(manifest_field "$F1" 1 'm["pool"]["repository"]')" = "$P" ] || fail "$F1: pool field"
[ "$(manifest_field "$F1" 1 'm["pool"]["lsn"] == m["pool"]["base_lsn"] >= 1')" = True ] || fail "$F1: pool LSNs"
[ "$(manifest_field "$F1" 1 'm["parts"]["bundle"]["objects"]')" = 0 ] || fail "$F1: objects the pool holds were stored"
[ "$(manifest_field "$SRC" 1 'm["version"]')" = 1 ] || fail "$SRC: an unpooled manifest is version 1"
# Both forks and their unchanged pool: the pool stored once.
fulls_of() { ls "$(store_dir "$1")" | grep -c 'full\.manifest$'; }
[ "$(fulls_of "$P")" -eq 1 ] || fail "the unchanged pool was backed up $(fulls_of "$P") times for two forks"
[ "$(manifest_field "$F2" 1 'm["pool"]["lsn"]')" = "$(manifest_field "$F1" 1 'm["pool"]["lsn"]')" ] ||
  fail "the forks name different full backups of the unchanged pool"
pass "a linked fork's manifest is version 2, names the pool's full backup, and stores none of its objects; the pool is stored once"

# backup --all reaches the forks before their pool (@hashed sorts first) and, with --jobs, at once:
# the pool a fork backed up is the run's backup of it, not taken again (into fresh stores).
for j in 1 2 4; do
  out=$(GITWAL_STATE_DIR=$T/all.$j backup_ok --all --jobs "$j")
  [ "$(grep -c '^ok ' <<<"$out")" -eq 4 ] || fail "backup --all --jobs $j: $out"
  d=$T/all.$j/store/repos/$(enc_rel "$P" | sed 's/@/%40/g')
  [ "$(ls "$d" | grep -c 'full\.manifest$')" -eq 1 ] || fail "backup --all --jobs $j stored the pool $(ls "$d" | grep -c 'full\.manifest$') times"
  grep -q "^ok $P lsn=1 " <<<"$out" || fail "backup --all --jobs $j: the pool's line: $out"
  for rel in "$F1" "$F2"; do
    python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); sys.exit(m["pool"]["lsn"] != 1)' \
      "$T/all.$j/store/repos/$(enc_rel "$rel" | sed 's/@/%40/g')/$(printf '%020d' 1).full.manifest" ||
      fail "backup --all --jobs $j: $rel does not name the pool's one full backup"
  done
done
pass "backup --all stores the pool once, before or after its forks, one job or several"

push_to "$F1" main
push_to "$F1" feature
push_to "$F2" topic
git -C "$R/$F2" symbolic-ref HEAD refs/heads/topic
step "pushes to the forks"
[ "$(fulls_of "$P")" -eq 1 ] || fail "pushes to the forks alone made the pool back up again"
[ "$(manifest_field "$F1" 2 'm["parts"]["bundle"]["objects"]')" -gt 0 ] || fail "$F1: its own objects were not stored"
[ "$(manifest_field "$F1" 2 'm["parts"]["bundle"]["objects"]')" -le 9 ] || fail "$F1: more than its own objects"

push_to "$SRC" main
git -C "$R/$P" fetch -q "$R/$SRC" '+refs/*:refs/*'
git -C "$R/$P" repack -q -a -d
# An object only the live pool has when the fork is backed up is written into the fork's bundle:
# a fork fetching the source's new commit (objects in the pool already) after the pool's backup.
step "a push to the source, fetched into the pool and repacked"
[ "$(fulls_of "$P")" -eq 2 ] || fail "the changed pool: $(fulls_of "$P") full backups, expected 2"

git -C "$R/$F1" fetch -q "$R/$SRC" main:refs/heads/upstream
git -C "$R/$F1" repack -q -a -d -l
git -C "$R/$F2" repack -q -a -d -l
push_to "$F2" topic
step "forks repacked local-only, a fork fetching from the source"

# A commit written into the pool with no ref of the pool's (its refs unchanged, so its archived
# full backup is reused): a fork's branch to it stores it from the live pool, in the fork's bundle.
pc=$(git -C "$R/$P" commit-tree -m "only in the live pool" -p "$(git -C "$R/$P" rev-parse main)" \
  "$(git -C "$R/$P" rev-parse 'main^{tree}')")
git -C "$R/$F1" update-ref refs/heads/from-pool "$pc"
before=$(fulls_of "$P")
step "a fork's branch to a commit only the live pool has"
[ "$(fulls_of "$P")" -eq "$before" ] || fail "the pool, its refs unchanged, was backed up again"
last=$(ls "$(store_dir "$F1")" | sed -n 's/^0*\([0-9]*\)\.full\.manifest$/\1/p' | sort -n | tail -1)
git show-index --object-format="${GITWAL_TEST_OBJECT_FORMAT:-sha1}" < "$(store_dir "$F1")/$(printf '%020d' "$last").full.idx" | grep_all -q " $pc " ||
  fail "$F1: the commit only the live pool has is not in its full backup"

rm -rf "${R:?}/$F2"
step "a fork deleted"

# Every step, each fork alone (its pool comes with it, once), and all of them in one run.
for i in $(seq 1 $n); do
  for rel in "$F1" "$F2"; do
    [ "$(cat "${STATE[$i,$rel]}")" = DELETED ] && continue
    d=$T/r.$i.${rel//\//_}
    restore_ok "$d" --repo "$rel" --until "$(pitr_at "${AT[$i]}")" >/dev/null
    check_restored "$d" "$rel" "${STATE[$i,$rel]}"
    git -C "$d/$P" fsck --connectivity-only --no-progress >/dev/null 2>&1 || fail "step $i: the pool restored with $rel"
    rm -rf "$d"
  done
  # --standalone: no alternates, the objects it needs from the pool in a pack of its own, no pool restored.
  for rel in "$F1" "$F2"; do
    [ "$(cat "${STATE[$i,$rel]}")" = DELETED ] && continue
    d=$T/r.$i.standalone
    restore_ok "$d" --repo "$rel" --standalone --until "$(pitr_at "${AT[$i]}")" >/dev/null
    [ ! -e "$d/$rel/objects/info/alternates" ] || fail "step $i: standalone $rel has alternates"
    [ ! -e "$d/$P" ] && [ -z "$(find "$d" -name '.gitwal-*')" ] || fail "step $i: standalone $rel left its pool: $(find "$d" -maxdepth 4)"
    diff <(cat "${STATE[$i,$rel]}") <(repo_state "$d/$rel") >&2 || fail "step $i: standalone $rel: refs or HEAD differ"
    git -C "$d/$rel" fsck --full --no-progress >/dev/null 2>"$T/fsck.err" || fail "step $i: standalone $rel: $(cat "$T/fsck.err")"
    rm -rf "$d"
  done
  d=$T/r.$i.all
  out=$(restore_ok "$d" --until "$(pitr_at "${AT[$i]}")")
  [ "$(grep -c "^ok $P " <<<"$out")" -eq 1 ] || fail "step $i: the pool not restored once: $out"
  for rel in "$F1" "$F2" "$SRC" "$P"; do
    [ "$(cat "${STATE[$i,$rel]}")" = DELETED ] && continue
    # The pool's refs at that time: the restore's, its objects at least the live pool's then.
    [ "$rel" = "$P" ] && { git -C "$d/$P" fsck --connectivity-only --no-progress >/dev/null 2>&1 || fail "step $i: pool"; continue; }
    check_restored "$d" "$rel" "${STATE[$i,$rel]}"
  done
  rm -rf "$d"
  pass "step $i: each fork alone (linked and standalone) and everything together restored exactly, connectivity-clean"
done

# Latest: the deleted fork was deleted (its last record), the other one as now.
d=$T/r.latest
restore_ok "$d" --repo "$F1" >/dev/null
check_restored "$d" "$F1" "${STATE[$n,$F1]}"
pass "restore of a fork, latest, restores its pool with it"

# A pool named with its fork is restored once; an existing pool target fails the fork, naming the pool.
d=$T/r.both
out=$(restore_ok "$d" --repo "$F1" --repo "$P")
[ "$(grep -c "^ok " <<<"$out")" -eq 2 ] || fail "fork and pool named: $out"
check_restored "$d" "$F1" "${STATE[$n,$F1]}"
rm -rf "${d:?}/$F1"
assert_fails "a fork whose pool's target exists" "repository $F1: its pool $P .*exists and is not empty" \
  gitwal restore --to "$d" --repo "$F1"
pass "a pool named with its fork is restored once; its existing target fails the fork, naming the pool"

# The audit's deep check restores a fork with its pool and runs git fsck on it through its alternates.
out=$(gitwal audit --deep --root "$R" --repo "$F1" --repo "$P" --repo "$SRC" 2>&1) || fail "audit --deep of the fork: $out"
pass "audit --deep checks a fork with its pool"

# Retention keeps the pool's generations the forks' kept full backups name: the pool backed up
# twice more on its own, then a window starting after those, so the pool's own plan alone would
# keep only its newest full backup.
keep_from=$(manifest_field "$F1" "$(ls "$(store_dir "$F1")" | sed -n 's/^0*\([0-9]*\)\.full\.manifest$/\1/p' | sort -n | tail -1)" 'm["pool"]["base_lsn"]')
backup_ok "$P" >/dev/null
backup_ok "$P" >/dev/null
t_cut=$(pitr_now_us)
# The window starts 1 ms before t_cut: after the pool's last full backup (its process had ended).
now=$(pitr_now_us)
window=$(( (now - t_cut) / 1000 + 1 ))ms
export GITWAL_TEST_EXPIRE_NOW=$(pitr_at "$now")
out=$(gitwal expire --keep-within "$window" 2>&1) || fail "expire: $out"
[ -e "$(store_dir "$P")/$(printf '%020d' "$keep_from").full.manifest" ] ||
  fail "expire removed the pool's full backup at LSN $keep_from that $F1 names: $out"
[ -e "$(store_dir "$F1")/$(printf '%020d' 1).full.manifest" ] && fail "expire kept $F1's old full backups: $out"
unset GITWAL_TEST_EXPIRE_NOW
d=$T/r.expired
restore_ok "$d" --repo "$F1" >/dev/null
check_restored "$d" "$F1" "${STATE[$n,$F1]}"
restore_ok "$T/r.expired.standalone" --repo "$F1" --standalone >/dev/null
pass "expire keeps the pool's generation a fork names; the fork restores after it"

# The pool's full backup a fork names gone from the store: the fork's restore fails naming the
# fork, the pool and the LSN, and leaves nothing at its target.
chmod -R u+w "$(store_dir "$P")"
rm -f "$(store_dir "$P")/$(printf '%020d' "$keep_from").full."*
assert_fails "a fork whose pool's full backup is gone" \
  "repository $F1: its pool $P \\(LSN $keep_from\\): .*$(printf '%020d' "$keep_from")" \
  gitwal restore --to "$T/r.gone" --repo "$F1"
[ ! -e "$T/r.gone/$F1" ] || fail "a failed fork restore left its target"
rc=0
gitwal audit --repo "$F1" >"$T/audit.out" 2>&1 || rc=$?
[ $rc -eq 1 ] || fail "audit of a fork whose pool's full backup is gone: exit $rc: $(cat "$T/audit.out")"
grep -Eq "^problem repo=$F1 lsn=[0-9]+ key=repos/%40pools%2F5f%2F9a%2Fpool\.git/0*$keep_from\.full\.manifest kind=missing detail=\"the pool's full backup this fork's manifest names \($P at LSN $keep_from\)" "$T/audit.out" ||
  fail "audit does not name the fork's missing pool backup: $(cat "$T/audit.out")"
pass "the audit names a fork's pool full backup missing from the store"
