# GitLab's hashed storage (@hashed/ab/cd/<sha256 hex>.git): a root of thousands of repositories
# three directories deep, archived end to end by the service. Start-up takes a full backup of
# every one and reports event=ready; pushes to a few are archived as segments and restored as of
# each moment (restore --until); a repository created under a new @hashed/ab/cd/ directory while
# the service runs is watched (inotify on the new nested directories) and archived; then a manual
# 'gitwal backup' of a subset and its restore.
#
# Size: GITWAL_TEST_HASHED_REPOS repositories (default 2000; 300 in a sanitizer build, which
# looks for memory errors, not scale, and runs several times slower). Each costs about 5 inotify watches
# (its directory, refs, refs/heads, refs/tags, and its @hashed/ab/cd directory) and one full
# backup at start-up; 2000 aim at under a minute on a quiet 2-core machine. Measured only on a
# loaded one (load 6-10 from other builds): 77-130 s in all, of which making the repositories
# 5-29 s and the start-up to event=ready 29-70 s; the rest (pushes, restores, backup) about 15 s. The repositories are made
# cheaply: one seed repository with a single pack, copied by one Python process (small files
# written, the pack and its index hard-linked: packs are immutable) and each given its own tag,
# so no two are alike.
source "$(dirname "$0")/lib.sh"

n_default=2000
grep -q '^GITWAL_SANITIZE:BOOL=ON' "${GITWAL_BUILD_DIR:-/nonexistent}/CMakeCache.txt" 2>/dev/null && n_default=300
N=${GITWAL_TEST_HASHED_REPOS:-$n_default}
R=$T/root L=$T/ar.log
limit=$(cat /proc/sys/fs/inotify/max_user_watches 2>/dev/null || echo 0)
if [ "$limit" -lt $((N * 5 + 300)) ]; then
  echo "skipped: fs.inotify.max_user_watches=$limit, below the $((N * 5 + 300)) watches $N repositories need" >&2
  exit 77
fi

# The seed: one commit, one pack, packed refs; nothing else git does not need.
git init -q --bare "$T/seed.git"
git clone -q "$T/seed.git" "$T/work/seed" 2>/dev/null
echo seed > "$T/work/seed/file.txt"
git -C "$T/work/seed" add file.txt
git -C "$T/work/seed" commit -qm seed
git -C "$T/work/seed" push -q origin main 2>/dev/null
git -C "$T/seed.git" repack -adq --no-write-bitmap-index
git -C "$T/seed.git" pack-refs --all

# hashed_make FIRST COUNT [new]: repositories FIRST.. under $R/@hashed/<h[0:2]>/<h[2:4]>/<h>.git,
# h the SHA-256 of the decimal index, as GitLab names them (of the project id); each tagged n<i>.
# With "new", the first index from FIRST on whose @hashed/ab/cd/ directory does not exist yet.
# Prints the relative paths made.
hashed_make() {
  python3 - "$T/seed.git" "$R" "$@" <<'PY'
import hashlib, os, sys
seed, root, first, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
want_new = len(sys.argv) > 5
small = {f: open(os.path.join(seed, f), "rb").read() for f in ("HEAD", "config", "packed-refs")}
pdir = os.path.join(seed, "objects", "pack")
packs = [f for f in os.listdir(pdir) if f.endswith((".pack", ".idx"))]
tip = [l.split()[0] for l in small["packed-refs"].decode().splitlines() if l.endswith(" refs/heads/main")][0]
i, made = first, 0
while made < count:
    h = hashlib.sha256(b"%d" % i).hexdigest()
    parent = os.path.join(root, "@hashed", h[:2], h[2:4])
    i += 1
    if want_new and os.path.isdir(parent):
        continue
    rel = "@hashed/%s/%s/%s.git" % (h[:2], h[2:4], h)
    d = os.path.join(root, rel)
    os.makedirs(d + "/refs/heads")
    os.mkdir(d + "/refs/tags")
    os.makedirs(d + "/objects/pack")
    for name, data in small.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
    for p in packs:
        os.link(os.path.join(pdir, p), os.path.join(d, "objects", "pack", p))
    with open(d + "/refs/tags/n%d" % (i - 1), "w") as f:
        f.write(tip + "\n")
    print(rel)
    made += 1
PY
}

t0=$SECONDS
hashed_make 0 "$N" > "$T/rels"
[ "$(wc -l < "$T/rels")" -eq "$N" ] || fail "setup: $(wc -l < "$T/rels") repositories made, expected $N"
P1=$(sed -n 1p "$T/rels") P2=$(sed -n "$((N / 2))p" "$T/rels") P3=$(sed -n "${N}p" "$T/rels")
git -C "$R/$P2" fsck --no-progress 2>&1 || fail "setup: $P2 is not a valid repository"
pass "setup: $N repositories under @hashed/ in $((SECONDS - t0)) s"

# ---- start-up: a full backup of each, then event=ready ----
t0=$SECONDS
archiver_start "$L" --debounce 20
wait_log "$L" 'event=ready' 1 600 || fail "no event=ready: $(tail -5 "$L")"
grep -q "event=ready repositories=$N\$" "$L" || fail "event=ready does not count $N repositories: $(grep event=ready "$L")"
[ "$(count_log "$L" 'event=full repo=@hashed/[0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f]{64}\.git lsn=1 .*reason=initial')" -eq "$N" ] ||
  fail "start-up: $(count_log "$L" 'event=full ') full backups, expected $N"
grep -Eq 'event=(error|refused|watch_degraded|watch_error|rescan_all)' "$L" && fail "start-up: $(grep -E 'event=(error|refused|watch)' "$L" | head -5)"
pass "start-up: $N full backups, ready in $((SECONDS - t0)) s, no watch degraded"

# ---- pushes to a few, each moment restorable ----
push_to() { # push_to REL REF: one new commit on REF, pushed from the seed's work tree
  echo "$1 $2 $RANDOM" >> "$T/work/seed/file.txt"
  git -C "$T/work/seed" commit -qam "to $1"
  git -C "$T/work/seed" push -q -f "$R/$1" "HEAD:$2" 2>/dev/null
}
states() { for rel in $P1 $P2 $P3; do repo_state "$R/$rel" > "$T/state.$1.${rel//\//_}"; done; }
states 0; TS0=$(pitr_now_us)
push_to "$P1" refs/heads/main
push_to "$P2" refs/heads/feature
push_to "$P3" refs/heads/main
wait_archived 120 "$P1" "$P2" "$P3" || fail "step 1 not archived: $(tail -5 "$L")"
states 1; TS1=$(pitr_now_us)
git -C "$R/$P1" update-ref -d "refs/tags/n0"
push_to "$P2" refs/heads/main
git -C "$R/$P3" symbolic-ref HEAD refs/heads/other
wait_archived 120 "$P1" "$P2" "$P3" || fail "step 2 not archived: $(tail -5 "$L")"
states 2
for rel in $P1 $P2 $P3; do
  [ "$(count_log "$L" "event=segment repo=$rel ")" -ge 2 ] || fail "$rel: not two segments: $(grep "repo=$rel " "$L")"
done
pass "pushes to 3 repositories archived as segments"

# ---- a repository under a new @hashed/ab/cd/ directory, created while the service runs ----
NEW=$(hashed_make "$N" 1 new)
[ -n "$NEW" ] || fail "setup: no new repository made"
wait_log "$L" "event=full repo=$NEW lsn=1 " 1 60 || fail "the new repository $NEW was not archived: $(tail -5 "$L")"
push_to "$NEW" refs/heads/main
wait_archived 120 "$NEW" || fail "the push to $NEW was not archived: $(tail -5 "$L")"
pass "a repository in a new nested directory is watched and archived"
archiver_stop "$L"

for k in 0 1; do
  ts=TS$k
  restore_ok "$T/at$k" --until "$(pitr_at "${!ts}")" --repo "$P1" --repo "$P2" --repo "$P3" >/dev/null
  for rel in $P1 $P2 $P3; do
    diff "$T/state.$k.${rel//\//_}" <(repo_state "$T/at$k/$rel") >&2 || fail "restore --until step $k: $rel differs"
    git -C "$T/at$k/$rel" fsck --no-progress --connectivity-only >/dev/null 2>&1 || fail "restore --until step $k: $rel fails fsck"
  done
done
restore_ok "$T/latest" --repo "$P1" --repo "$P2" --repo "$P3" --repo "$NEW" >/dev/null
for rel in $P1 $P2 $P3 $NEW; do assert_same_repo "$R/$rel" "$T/latest/$rel"; done
pass "restore --until each moment, and the latest state, are exact"

# ---- a manual backup of a subset, and its restore ----
out=$(backup_ok "$P1" "$P3" "$NEW")
[ "$(grep -c '^ok @hashed/' <<<"$out")" -eq 3 ] || fail "backup of 3: $out"
restore_ok "$T/subset" --repo "$P1" --repo "$P3" --repo "$NEW" >/dev/null
for rel in $P1 $P3 $NEW; do assert_same_repo "$R/$rel" "$T/subset/$rel"; done
[ "$(find "$T/subset" -name '*.git' -type d | wc -l)" -eq 3 ] || fail "restore of 3 wrote more: $(find "$T/subset" -name '*.git')"
pass "gitwal backup of 3 of them, and their restore"
