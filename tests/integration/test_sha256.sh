#!/usr/bin/env bash
# SHA-256 repositories (git init --object-format=sha256) end to end, with 32-byte ids
# throughout: a history of pushes, tags, a force push, a deleted branch, pack-refs and gc,
# with a full backup ('gitwal backup') after every step. Each stored bundle is a v3 bundle
# with @object-format=sha256 that stock git clones; 'restore' (latest) and 'restore
# --until' at every step reproduce the refs and HEAD exactly and pass git fsck; 'audit
# --read-data --deep --root' is clean. Then the archiver goes on from there with segments
# of 64-hex ids (a v3 bundle, a SHA-256 pack and index): restores at each of its steps are
# exact too. Last, the repository is created again as sha1 under its name while the archiver
# is not looking: a new generation, and both generations still restore exactly.
source "$(dirname "$0")/lib.sh"

R=$T/root
git init -q --bare --object-format=sha256 "$R/s.git"
git init -q --object-format=sha256 "$T/work/s.git"
git -C "$T/work/s.git" remote add origin "$R/s.git"
w() { git -C "$T/work/s.git" "$@"; }
r() { git --git-dir="$R/s.git" "$@"; }
n=0
commit() { n=$((n + 1)); echo "change $n" >> "$T/work/s.git/file.txt"; w add file.txt; w commit -qm "change $n"; }

NSTEPS=0
declare -a TRUTH TS_US LSN
# step: a full backup of the state now, its truth, and a time after it (before the next step).
step() {
  local out
  NSTEPS=$((NSTEPS + 1))
  out=$(backup_ok s.git)
  LSN[$NSTEPS]=$(field "$out" lsn)
  TRUTH[$NSTEPS]=$(repo_state "$R/s.git")
  TS_US[$NSTEPS]=$(pitr_now_us)
}

# 1: three commits on main
for i in 1 2 3; do commit; done; w push -q origin main; step
# 2: a branch, a lightweight and an annotated tag
w checkout -q -b dev; commit; w push -q origin dev; w tag v1 main; w tag -a -m "release 2" v2 dev
w push -q origin v1 v2; step
# 3: a force push rewriting main, refs packed
w checkout -q main; w reset -q --hard HEAD~2; commit; w push -q -f origin main; r pack-refs --all; step
# 4: dev deleted, HEAD detached at v2's commit, gc
w push -q origin :refs/heads/dev; r update-ref --no-deref HEAD "$(r rev-parse 'v2^{commit}')"; r gc -q --prune=now
step
# 5: HEAD back on main, a push on top of the packed refs (a loose ref over packed-refs)
r symbolic-ref HEAD refs/heads/main; commit; w push -q origin main; step

# ---- what was stored: sha256 manifests and bundles stock git reads ----
m=$(full_key s.git "${LSN[$NSTEPS]}" manifest)
grep -q '"object_format":"sha256"' "$m" || fail "manifest: $(cat "$m")"
grep -Eq '"pack_checksum":"[0-9a-f]{64}"' "$m" || fail "manifest pack_checksum: $(cat "$m")"
head -2 "$(full_key s.git "${LSN[$NSTEPS]}" bundle)" | tr -d '\0' > "$T/bhead"
[ "$(cat "$T/bhead")" = $'# v3 git bundle\n@object-format=sha256' ] || fail "bundle header: $(cat "$T/bhead")"
assert_bundle_clones s.git "${LSN[$NSTEPS]}" "$R/s.git"
pass "sha256: manifests with 64-digit ids, v3 bundles with @object-format=sha256 that git clones"

# ---- restore, latest and at every step ----
restore_ok "$T/latest" --repo s.git >/dev/null
assert_same_repo "$R/s.git" "$T/latest/s.git"
[ "$(git -C "$T/latest/s.git" rev-parse --show-object-format)" = sha256 ] || fail "restored repository is not sha256"
for s in $(seq 1 "$NSTEPS"); do
  rm -rf "$T/at"
  restore_ok "$T/at" --repo s.git --until "$(pitr_at "${TS_US[$s]}")" >/dev/null
  diff <(echo "${TRUTH[$s]}") <(repo_state "$T/at/s.git") >&2 || fail "restore --until step $s differs"
  git -C "$T/at/s.git" fsck --full --no-progress >/dev/null 2>"$T/fsck.err" || fail "fsck at step $s: $(cat "$T/fsck.err")"
done
pass "sha256: restore (latest) and restore --until each of $NSTEPS steps are exact and pass git fsck"

# ---- audit ----
out=$(gitwal audit --read-data --deep --root "$R" 2>&1) || fail "audit: $out"
grep -q 'clean: no problems found' <<<"$out" || fail "audit: $out"
pass "sha256: audit --read-data --deep --root is clean"

# ---- the archiver: segments of 64-hex ids, restored at every step ----
archive_once
grep -q 'event=segment repo=s.git ' "$T/archive.log" && fail "nothing changed, yet a segment: $(cat "$T/archive.log")"
declare -a ATRUTH ATS
for k in 1 2 3; do
  case $k in
    1) commit; w push -q origin main ;;                                   # new objects: a pack in the segment
    2) w push -q origin main:refs/heads/b2; r symbolic-ref HEAD refs/heads/b2 ;;  # no new object, HEAD moved
    3) r symbolic-ref HEAD refs/heads/main; w push -q origin :refs/heads/b2 :refs/tags/v1 ;;  # deletions
  esac
  archive_once
  grep -q 'event=segment repo=s.git ' "$T/archive.log" || fail "step $k: no segment: $(cat "$T/archive.log")"
  ATRUTH[$k]=$(repo_state "$R/s.git")
  ATS[$k]=$(pitr_now_us)
done
for k in 1 2 3; do
  rm -rf "$T/at"
  restore_ok "$T/at" --repo s.git --until "$(pitr_at "${ATS[$k]}")" >/dev/null
  diff <(echo "${ATRUTH[$k]}") <(repo_state "$T/at/s.git") >&2 || fail "restore --until archived step $k differs"
  git -C "$T/at/s.git" fsck --full --no-progress >/dev/null 2>"$T/fsck.err" || fail "fsck at archived step $k: $(cat "$T/fsck.err")"
done
out=$(gitwal audit --read-data --deep --root "$R" 2>&1) || fail "audit after segments: $out"
grep -q 'clean: no problems found' <<<"$out" || fail "audit after segments: $out"
pass "sha256: archived segments (objects, HEAD moves, deletions) restore exactly at each step; audit clean"

# ---- created again as sha1 under the same name, unseen: a new generation, both restorable ----
rm -rf "$R/s.git" "$T/work/s.git"
make_repo s.git 2
archive_once
grep -q 'event=full repo=s.git .*reason=recreated' "$T/archive.log" || fail "no new generation: $(cat "$T/archive.log")"
rm -rf "$T/at"
restore_ok "$T/at" --repo s.git >/dev/null
assert_same_repo "$R/s.git" "$T/at/s.git"
[ "$(git -C "$T/at/s.git" rev-parse --show-object-format)" = sha1 ] || fail "the new generation is not restored as sha1"
rm -rf "$T/at"
restore_ok "$T/at" --repo s.git --until "$(pitr_at "${ATS[3]}")" >/dev/null
diff <(echo "${ATRUTH[3]}") <(repo_state "$T/at/s.git") >&2 || fail "the sha256 generation is no longer restorable"
pass "sha256: a repository created again in sha1 under its name starts a generation; both restore exactly"
