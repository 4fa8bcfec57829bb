# Leftovers of writers killed with kill -9 (DESIGN.md 2.2): backups killed
# mid-write leave temporary files in the file store; the audit reports each
# one (a warning: the archive stays clean) until the next backup writing that
# repository removes them, while a live writer's file (a backup stopped with
# SIGSTOP) is neither reported nor removed. A FIFO, a symlink or a directory
# where a key could be is a problem naming the key.
source "$(dirname "$0")/lib.sh"

STORE=$GITWAL_STATE_DIR/store
DIR=$STORE/repos/big.git

# ~48 MiB that does not compress: the bundle's temporary file lives long enough to be seen.
make_repo big.git 1
head -c $((48 << 20)) /dev/urandom > "$T/work/big.git/blob.bin"
git -C "$T/work/big.git" add blob.bin
git -C "$T/work/big.git" -c core.compression=0 commit -qm blob
git -C "$T/work/big.git" -c pack.compression=0 push -q origin main
make_repo small.git 2
backup_ok small.git >/dev/null

tmp_count() { find "$DIR" -maxdepth 1 -name '.tmp.*' 2>/dev/null | wc -l; }
# start_backup: a backup of big.git in the background, once its temporary file holds data ($BG).
start_backup() {
  local i
  "$GITWAL_BIN" backup big.git >/dev/null 2>&1 &
  BG=$!
  # Its own temporary file (named with its pid), not a change made by its clearing of dead ones.
  for i in $(seq 2000); do
    [ -n "$(find "$DIR" -maxdepth 1 -name ".tmp.*.$BG.*" -size +0 2>/dev/null)" ] && return 0
    kill -0 $BG 2>/dev/null || break
    sleep 0.005
  done
  return 1
}

# Three backups killed mid-write (one that finished first does not count).
killed=0
for attempt in $(seq 10); do
  start_backup || { wait $BG || true; continue; }
  kill -KILL $BG
  rc=0; wait $BG || rc=$?
  [ $rc -eq 137 ] && killed=$((killed + 1))
  [ $killed -ge 3 ] && break
done
[ $killed -ge 3 ] || fail "could not kill a backup mid-write (killed $killed)"
left=$(tmp_count)
[ "$left" -ge 3 ] || fail "killed backups left $left temporary files"
[ -z "$(find "$DIR" -maxdepth 1 -name '*.full.manifest')" ] || fail "a killed backup committed a manifest"
pass "$killed backups killed mid-write left $left temporary files"

# The audit reports every one, as a warning: exit 0, clean.
rc=0; gitwal audit > "$T/audit.out" 2>&1 || rc=$?
[ $rc -eq 0 ] || fail "audit with leftovers exited $rc: $(cat "$T/audit.out")"
grep -q '^clean: no problems found' "$T/audit.out" || fail "no clean line: $(cat "$T/audit.out")"
[ "$(grep -c '^warning repo=big.git lsn=1 key=repos/big.git/00000000000000000001.full.[a-z]* kind=leftover detail="temporary file repos/big.git/.tmp.' "$T/audit.out")" -eq "$left" ] ||
  fail "expected $left leftover warnings: $(cat "$T/audit.out")"
grep -q 'on this host, gone: the next backup or archive writing there removes it"' "$T/audit.out" ||
  fail "the warning does not say whose and what happens: $(cat "$T/audit.out")"
grep -q "^$left warnings: leftovers of writers that died" "$T/audit.out" || fail "no warnings summary: $(cat "$T/audit.out")"
gitwal audit --json > "$T/audit.json" || fail "audit --json with leftovers exited non-zero"
python3 - "$T/audit.json" "$left" <<'PY' || fail "JSON warnings"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["clean"] is True and d["problems"] == [], d
w = d["warnings"]
assert len(w) == int(sys.argv[2]) and all(x["kind"] == "leftover" and x["repository"] == "big.git" for x in w), w
PY
# Not in another repository's audit; nor removed by a writer elsewhere.
gitwal audit --repo small.git > "$T/audit.out" 2>&1 || fail "audit --repo small.git: $(cat "$T/audit.out")"
! grep -q '^warning' "$T/audit.out" || fail "leftovers of big.git reported for small.git: $(cat "$T/audit.out")"
git -C "$T/work/small.git" commit -q --allow-empty -m more && git -C "$T/work/small.git" push -q origin main
backup_ok small.git >/dev/null
[ "$(tmp_count)" -eq "$left" ] || fail "a backup of small.git touched big.git's directory"
pass "audit reports each leftover once, as a warning (exit 0), in its repository only"

# A live writer (stopped, not dead) beside them: not reported, not removed.
start_backup || fail "no temporary file from the backup to stop"
kill -STOP $BG
live=$(find "$DIR" -maxdepth 1 -name "*.$BG.*" | head -1)
[ -n "$live" ] || fail "the stopped backup's temporary file does not name its pid $BG"
gitwal audit > "$T/audit.out" 2>&1 || fail "audit: $(cat "$T/audit.out")"
! grep -q "\.$BG\." "$T/audit.out" || fail "a live writer's file was reported: $(cat "$T/audit.out")"

# The next backup of big.git removes the dead writers' files, and only those.
backup_ok big.git >/dev/null
[ -f "$live" ] || fail "the live writer's temporary file was removed"
[ "$(tmp_count)" -ge 1 ] && [ -z "$(find "$DIR" -maxdepth 1 -name '.tmp.*' ! -name "*.$BG.*")" ] ||
  fail "dead writers' files remain: $(ls -a "$DIR")"
kill -CONT $BG
wait $BG || fail "the stopped backup failed once continued"
[ "$(tmp_count)" -eq 0 ] || fail "temporary files remain: $(ls -a "$DIR")"
gitwal audit > "$T/audit.out" 2>&1 || fail "audit after the cleanup: $(cat "$T/audit.out")"
! grep -q '^warning' "$T/audit.out" || fail "warnings after the cleanup: $(cat "$T/audit.out")"
restore_ok "$T/r1" --repo big.git >/dev/null
assert_same_repo "$T/root/big.git" "$T/r1/big.git"
pass "the next backup removed the dead writers' files, not the live one's; the stopped backup then finished"

# Names that are not regular files where a key could be: one problem each, naming the key.
S=$(printf '%s/%020d.seg' "$DIR" 97)
mkfifo "$DIR/$(printf '%020d' 97).seg"
ln -s /etc/passwd "$DIR/$(printf '%020d' 98).seg"
mkdir "$DIR/$(printf '%020d' 99).seg"
rc=0; timeout 60 "$GITWAL_BIN" audit > "$T/audit.out" 2>&1 || rc=$?
[ $rc -eq 1 ] || fail "audit with a FIFO, a symlink and a directory exited $rc: $(cat "$T/audit.out")"
for n in 97:FIFO 98:symlink 99:directory; do
  k=$(printf 'repos/big.git/%020d.seg' "${n%%:*}")
  [ "$(grep -c "key=$k kind=not-a-file detail=\"a ${n#*:} where a key could be" "$T/audit.out")" -eq 1 ] ||
    fail "no single not-a-file problem for the ${n#*:} at $k: $(cat "$T/audit.out")"
done
[ "$(grep -c '^problem' "$T/audit.out")" -eq 3 ] || fail "expected 3 problems: $(cat "$T/audit.out")"
rm -r "$S" "$DIR/$(printf '%020d' 98).seg" "$DIR/$(printf '%020d' 99).seg"
pass "a FIFO, a symlink and a directory where a key could be: one not-a-file problem each"

# Restores killed mid-write leave their scratch directories beside the target; the next restore
# there removes them (and not a live restore's, stopped with SIGSTOP).
scratch_count() { find "$T/r2" -maxdepth 1 -name '.gitwal-restore.*' 2>/dev/null | wc -l; }
# start_restore: a restore of big.git into $T/r2 in the background, once its scratch pack holds data ($BG).
start_restore() {
  local i
  "$GITWAL_BIN" restore --force --repo big.git --to "$T/r2" >/dev/null 2>&1 &
  BG=$!
  # Its own scratch directory (named with its pid), not a change made by its clearing of dead ones.
  for i in $(seq 2000); do
    [ -n "$(find "$T/r2" -path "*/.gitwal-restore.*.$BG.*/objects/pack/*" -size +0 2>/dev/null)" ] && return 0
    kill -0 $BG 2>/dev/null || break
    sleep 0.005
  done
  return 1
}
# Each killed restore leaves its scratch directory; the next one removes it before it starts its own.
killed=0 prev=
for attempt in $(seq 10); do
  start_restore || { wait $BG || true; continue; }
  kill -KILL $BG
  rc=0; wait $BG || rc=$?
  [ $rc -eq 137 ] || continue
  killed=$((killed + 1))
  [ "$(scratch_count)" -eq 1 ] || fail "after $killed killed restores: $(ls -a "$T/r2")"
  cur=$(find "$T/r2" -maxdepth 1 -name '.gitwal-restore.*')
  [ "$cur" != "$prev" ] || fail "the killed restore's scratch directory is the previous one"
  prev=$cur
  [ $killed -ge 2 ] && break
done
[ $killed -ge 2 ] || fail "could not kill a restore mid-write (killed $killed)"
pass "$killed restores killed mid-write: each left its scratch directory, the next removed it"

start_restore || fail "no scratch pack from the restore to stop"
kill -STOP $BG
live=$(find "$T/r2" -maxdepth 1 -name ".gitwal-restore.*.$BG.*")
[ -n "$live" ] || fail "the stopped restore's scratch directory does not name its pid $BG: $(ls -a "$T/r2")"
restore_ok "$T/r2" --force --repo big.git >/dev/null
[ -d "$live" ] || fail "the live restore's scratch directory was removed"
[ "$(scratch_count)" -eq 1 ] && [ ! -d "$prev" ] || fail "dead restores' scratch directories remain: $(ls -a "$T/r2")"
# Continued, it finds the target made meanwhile (it was absent when it started): it fails, and cleans up.
kill -CONT $BG
wait $BG || true
[ "$(scratch_count)" -eq 0 ] || fail "scratch directories remain: $(ls -a "$T/r2")"
assert_same_repo "$T/root/big.git" "$T/r2/big.git"
pass "the next restore removed the dead restores' scratch directories, not the live one's"
