# gitwal archive --once: first full backups, then exactly one segment per changed repository
# holding exactly the ref updates (old -> new) and only the new objects; nothing for a no-op,
# gc or pack-refs; deletion and creation of repositories. The segments, replayed onto the
# full backup with stock git, reproduce every repository.
source "$(dirname "$0")/lib.sh"

A=$T/root/a.git B=$T/root/grp/b.git C=$T/root/c.git
make_repo a.git 3
make_repo grp/b.git 2
make_repo c.git 1
# Refs that the change below deletes: a branch and a tag (one loose, one packed).
git -C "$T/work/a.git" push -q origin main:refs/heads/old main~1:refs/tags/gone 2>/dev/null
git -C "$A" pack-refs --all
git -C "$T/work/a.git" push -q origin main~2:refs/heads/loose-old 2>/dev/null

# ---- first run: a full backup of each repository at LSN 1, nothing else ----
arch_once > "$T/run1.log"
[ "$(count_log "$T/run1.log" 'event=full .*lsn=1 .*reason=initial')" -eq 3 ] || fail "3 full backups expected: $(cat "$T/run1.log")"
[ "$(count_log "$T/run1.log" 'event=segment')" -eq 0 ] || fail "no segment expected on first sight: $(cat "$T/run1.log")"
for rel in a.git grp/b.git c.git; do
  [ "$(arch_keys "$rel" | tr '\n' ' ')" = "00000000000000000001.full.bundle 00000000000000000001.full.idx 00000000000000000001.full.manifest 00000000000000000001.seg " ] ||
    fail "keys of $rel after the first run: $(arch_keys "$rel")"
done
pass "first run: one full backup (LSN 1) per repository"

# ---- no change: nothing written ----
store_snapshot > "$T/snap1"
arch_once > "$T/run2.log"
store_snapshot | diff "$T/snap1" - >&2 || fail "a run without changes wrote to the store"
grep -Eq 'event=(segment|full)' "$T/run2.log" && fail "a run without changes logged: $(cat "$T/run2.log")"
pass "no change: nothing written"

# ---- every kind of ref change ----
repo_state "$A" > "$T/a.before"; repo_state "$B" > "$T/b.before"; repo_state "$C" > "$T/c.before"
wa=$T/work/a.git
push_commit a.git main
git -C "$wa" reset -q --hard HEAD~2                      # force-push: main rewritten
echo forced > "$wa/forced.txt"; git -C "$wa" add forced.txt; git -C "$wa" commit -qm forced
git -C "$wa" push -q -f origin main 2>/dev/null
push_commit a.git feature                                # branch created
git -C "$wa" tag light main~1                            # lightweight tag
git -C "$wa" tag -a -m "annotated" v1.0 feature          # annotated tag
git -C "$wa" push -q origin light v1.0 2>/dev/null
git -C "$wa" push -q origin :refs/heads/old :refs/tags/gone :refs/heads/loose-old 2>/dev/null  # deleted (packed and loose)
git -C "$A" symbolic-ref HEAD refs/heads/feature         # HEAD retargeted
push_commit grp/b.git main
git -C "$T/work/grp/b.git" push -q origin main:refs/heads/copy 2>/dev/null  # a new ref, no new object
push_commit c.git main                                   # one commit: commit + tree + blob
repo_state "$A" > "$T/a.after"; repo_state "$B" > "$T/b.after"; repo_state "$C" > "$T/c.after"

arch_once > "$T/run3.log"
[ "$(count_log "$T/run3.log" 'event=segment')" -eq 3 ] || fail "one segment per repository expected: $(cat "$T/run3.log")"
grep -Eq 'event=full' "$T/run3.log" && fail "no full backup expected: $(cat "$T/run3.log")"
for rel in a.git grp/b.git c.git; do
  [ "$(count_log "$T/run3.log" "event=segment repo=$rel lsn=2 ")" -eq 1 ] || fail "$rel: no segment at LSN 2: $(cat "$T/run3.log")"
  # LSN 1's .seg is the full backup's claim on it; LSN 2's is the change.
  [ "$(arch_keys "$rel" | grep -c '\.seg$')" -eq 2 ] && arch_keys "$rel" | grep_all -qx 00000000000000000002.seg ||
    fail "$rel: keys $(arch_keys "$rel")"
done
assert_updates a.git 2 "$T/a.before" "$T/a.after"
assert_updates grp/b.git 2 "$T/b.before" "$T/b.after"
assert_updates c.git 2 "$T/c.before" "$T/c.after"
grep -Eq 'event=segment repo=a.git lsn=2 updates=8 ' "$T/run3.log" || fail "a.git: 8 updates expected: $(grep repo=a.git "$T/run3.log")"
grep -Eq 'event=segment repo=c.git lsn=2 updates=1 objects=3 ' "$T/run3.log" ||
  fail "c.git: a 1-commit push is 1 update and 3 objects: $(grep repo=c.git "$T/run3.log")"
arch_log c.git | python3 -c 'import json,sys; r=json.load(sys.stdin)["records"][1]; assert r["objects"]==3, r' ||
  fail "c.git: gitwal log must say objects=3"
pass "one segment per repository with exactly the ref updates (old -> new, HEAD retarget)"

for rel in a.git grp/b.git c.git; do assert_replay "$rel" "$T/root/$rel"; done
pass "full + segment replayed with git reproduces every repository (fsck clean, only new objects)"

# ---- gc and pack-refs are not changes ----
git -C "$A" gc -q
git -C "$B" pack-refs --all
git -C "$C" gc -q --prune=now
[ -z "$(find "$B/refs" -type f)" ] || fail "pack-refs --all left loose refs"
store_snapshot > "$T/snap2"
arch_once > "$T/run4.log"
store_snapshot | diff "$T/snap2" - >&2 || fail "gc / pack-refs wrote to the store: $(cat "$T/run4.log")"
pass "gc and pack-refs --all: no segment"

# ---- a loose ref updated over its packed value, then a repository deleted and one created ----
repo_state "$B" > "$T/b.before2"
push_commit grp/b.git main
repo_state "$B" > "$T/b.after2"
arch_once > "$T/run5.log"
grep -Eq 'event=segment repo=grp/b.git lsn=3 updates=1 objects=3 ' "$T/run5.log" || fail "b: $(cat "$T/run5.log")"
assert_updates grp/b.git 3 "$T/b.before2" "$T/b.after2"

repo_state "$B" > "$T/b.before3"
echo DELETED > "$T/b.after3"
rm -rf "$B"
make_repo d.git 2
arch_once > "$T/run6.log"
grep -Eq 'event=segment repo=grp/b.git lsn=4 ' "$T/run6.log" || fail "deleted repository: no segment: $(cat "$T/run6.log")"
grep -Eq 'event=full repo=d.git lsn=1 ' "$T/run6.log" || fail "new repository: no full backup: $(cat "$T/run6.log")"
[ "$(grep -Ec 'event=(segment|full)' "$T/run6.log")" -eq 2 ] || fail "exactly 2 records expected: $(cat "$T/run6.log")"
assert_updates grp/b.git 4 "$T/b.before3" "$T/b.after3"
assert_replay grp/b.git "$B"
assert_replay d.git "$T/root/d.git"
pass "deleted repository: every ref deleted + 'deleted'; new repository: full backup"

store_snapshot > "$T/snap3"
arch_once > "$T/run7.log"
store_snapshot | diff "$T/snap3" - >&2 || fail "the deletion was archived twice: $(cat "$T/run7.log")"
pass "a deleted repository is recorded once"

# ---- created again at the same path: a new full backup, LSNs go on ----
rm -rf "$T/work/grp/b.git"
make_repo grp/b.git 1
arch_once > "$T/run8.log"
grep -Eq 'event=full repo=grp/b.git lsn=5 ' "$T/run8.log" || fail "recreated repository: $(cat "$T/run8.log")"
assert_replay grp/b.git "$B"
pass "recreated repository: full backup at the next LSN"
