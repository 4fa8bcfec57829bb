#!/usr/bin/env bash
# Point-in-time restore does not depend on the local index: it is a cache of
# the store. The same restores must give the same results after the index is
# deleted, after 'gitwal index rebuild', and from a fresh state directory that
# is given only the store (--store file://...).
source "$(dirname "$0")/lib.sh"

REPOS=(a.git g/b.git)
declare -A TRUTH   # "step rel" -> repo_state or ABSENT
declare -a TS
NSTEPS=0
snap() {
  local rel
  NSTEPS=$((NSTEPS + 1))
  archive_once
  for rel in "${REPOS[@]}"; do
    if [ -d "$T/root/$rel" ]; then TRUTH["$NSTEPS $rel"]=$(repo_state "$T/root/$rel"); else TRUTH["$NSTEPS $rel"]=ABSENT; fi
  done
  TS[$NSTEPS]=$(pitr_rfc "$(pitr_now_us)")
}
push() { # push REL REFSPEC...
  local rel=$1; shift
  echo "change $RANDOM" >> "$T/work/$rel/file.txt"
  git -C "$T/work/$rel" commit -qam change
  git -C "$T/work/$rel" push -q origin "$@"
}

make_repo a.git 2; snap                                              # 1: a full
make_repo g/b.git 1; push a.git main main:refs/heads/dev; snap       # 2: b full, a segment
git --git-dir="$T/root/a.git" symbolic-ref HEAD refs/heads/dev
git --git-dir="$T/root/a.git" tag v1 main; push g/b.git main; snap   # 3
git --git-dir="$T/root/a.git" pack-refs --all; push a.git -f main~1:refs/heads/main; snap  # 4: force-push
rm -rf "$T/root/g/b.git"; snap                                       # 5: b deleted
push a.git main; snap                                                # 6

# check LABEL [OPTION...]: restore every repository at each step's time and compare with the truth.
check() {
  local label=$1 k rel out dst; shift
  for k in 1 3 4 5 6; do
    dst=$T/$label.$k
    out=$(gitwal restore --to "$dst" --until "${TS[$k]}" "$@" 2>"$T/restore.err") ||
      fail "$label: restore --until step $k: $out $(cat "$T/restore.err")"
    for rel in "${REPOS[@]}"; do
      if [ "${TRUTH["$k $rel"]}" = ABSENT ]; then
        grep -Eq "^skipped $rel: .*(deleted|before its first full backup)" <<<"$out" || fail "$label: step $k: $rel should be skipped (absent then): $out"
        [ ! -e "$dst/$rel" ] || fail "$label: step $k: deleted $rel was restored"
      else
        [ "$(repo_state "$dst/$rel")" = "${TRUTH["$k $rel"]}" ] || fail "$label: step $k: $rel differs from the truth"
        git -C "$dst/$rel" fsck --full --no-progress >/dev/null 2>&1 || fail "$label: step $k: fsck of $rel"
        assert_single_pack "$dst/$rel"
      fi
    done
  done
  # The plan is the same too.
  gitwal restore --to "$T/$label.dry" --until "${TS[4]}" --dry-run --json "$@" 2>"$T/dry.err" | sort > "$T/$label.plan" ||
    fail "$label: --dry-run --json: $(cat "$T/dry.err")"
  [ "$(grep -c '"repository"' "$T/$label.plan")" -eq 2 ] || fail "$label: --dry-run --json: $(cat "$T/$label.plan")"
  [ ! -e "$T/$label.dry" ] || fail "$label: --dry-run created its target"
  pass "$label"
}

check "with the index"
cp "$T/with the index.plan" "$T/plan.ref"
rm -f "$GITWAL_STATE_DIR/index.db"
check "without the index"
[ -f "$GITWAL_STATE_DIR/index.db" ] || fail "restore did not recreate the index"
diff "$T/plan.ref" "$T/without the index.plan" >&2 || fail "the plan differs without the index"
gitwal index rebuild >/dev/null 2>"$T/rebuild.err" || fail "gitwal index rebuild: $(cat "$T/rebuild.err")"
check "after index rebuild"
diff "$T/plan.ref" "$T/after index rebuild.plan" >&2 || fail "the plan differs after index rebuild"

# An index that missed a segment below its last LSN (a crash between the store and the index):
# restore --repo looks only past the last indexed LSN first, finds the hole in its plan, then
# lists the repository in full and restores the same state.
python3 - "$GITWAL_STATE_DIR/index.db" <<'PY' || fail "could not remove a segment row from the index"
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
(rid,) = db.execute("SELECT id FROM repos WHERE path='a.git'").fetchone()
(lsn,) = db.execute("SELECT min(lsn) FROM segments WHERE repo_id=?", (rid,)).fetchone()
assert lsn is not None and db.execute("SELECT count(*) FROM segments WHERE repo_id=? AND lsn>?", (rid, lsn)).fetchone()[0] > 0
db.execute("DELETE FROM segments WHERE repo_id=? AND lsn=?", (rid, lsn))
db.execute("DELETE FROM updates WHERE repo_id=? AND lsn=?", (rid, lsn))
# As the index records it when LSN lsn never arrived: the next segment does not link.
db.execute("UPDATE segments SET linked=0 WHERE repo_id=? AND lsn=?", (rid, lsn + 1))
db.commit()
PY
for k in 6 5 4 3; do [ "${TRUTH["$k a.git"]}" != ABSENT ] && break; done
restore_ok "$T/hole" --repo a.git --until "${TS[$k]}" >/dev/null
[ "$(repo_state "$T/hole/a.git")" = "${TRUTH["$k a.git"]}" ] || fail "restore after the index lost a segment differs from the truth"
pass "an index missing a segment below its last LSN is repaired from the store by restore"

# A fresh machine: an empty state directory and only the store (a copy of it, to be sure).
cp -a "$GITWAL_STATE_DIR/store" "$T/store-copy"
export GITWAL_STATE_DIR=$T/fresh-state
check "fresh state with --store" --store "file://$T/store-copy"
diff "$T/plan.ref" "$T/fresh state with --store.plan" >&2 || fail "the plan differs from a fresh state"
[ -z "$(ls -A "$T/store-copy" | grep -v '^repos$')" ] || fail "restore wrote into the store: $(ls -A "$T/store-copy")"
