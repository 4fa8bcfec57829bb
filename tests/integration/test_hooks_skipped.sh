#!/usr/bin/env bash
# What gitwal cannot keep among a repository's own files never costs a push (DESIGN.md 4.5): with a
# fifo and a 2 MiB file in custom_hooks/, the running service takes the repository's full backup
# (both recorded as not archived, with why) and captures every push as a segment; restore --until
# each moment has the exact refs and the hooks it could keep, names the fifo and the big file on
# stderr, counts them, creates nothing for them and exits 0; a later change to what it cannot keep
# is a segment that log shows; `gitwal backup` of the repository succeeds likewise.
source "$(dirname "$0")/lib.sh"

R=$T/root/grp/h.git L=$T/ar.log
make_repo grp/h.git 2
mkdir -p "$R/custom_hooks/pre-receive.d"
printf '#!/bin/sh\nexit 0\n' > "$R/custom_hooks/pre-receive.d/check"
chmod 0750 "$R/custom_hooks/pre-receive.d/check"
git -C "$R" config gitlab.fullpath grp/h
mkfifo "$R/custom_hooks/queue"
head -c $((2 * 1024 * 1024)) /dev/urandom > "$R/custom_hooks/big.bin"

# kept_state DIR: every path gitwal keeps (all but the fifos and the big file), with mode, type,
# link target and digest.
kept_state() {
  local p
  (cd "$1" && for p in config description info/attributes custom_hooks; do
    if [ -e "$p" ] || [ -L "$p" ]; then
      find "$p" ! -type p ! -name big.bin -printf "$p/%P %m %y %l\n"
      find "$p" -type f ! -name big.bin -exec sha256sum {} +
    fi
  done | sort)
}

# index_lsn: the highest LSN the service's index records for grp/h.git (full backups and segments).
index_lsn() {
  python3 - "$GITWAL_STATE_DIR/index.db" <<'PY'
import sqlite3, sys
try:
    db = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True, timeout=10)
    q = "SELECT MAX(lsn) FROM %s WHERE repo_id = (SELECT id FROM repos WHERE path = 'grp/h.git')"
    print(max(db.execute(q % t).fetchone()[0] or 0 for t in ("fulls", "segments")))
except sqlite3.OperationalError:
    print(0)  # not created yet
PY
}

# wait_index_lsn N: until the index records LSN N or later (generous: the machine may be loaded).
wait_index_lsn() {
  local i
  for i in $(seq 1 1200); do
    [ "$(index_lsn)" -ge "$1" ] && return 0
    kill -0 "$AR_PID" 2>/dev/null || fail "the archiver died: $(tail -20 "$L")"
    sleep 0.05
  done
  fail "the index did not reach LSN $1 (at $(index_lsn)): $(tail -20 "$L")"
}

# mark N: once the index records LSN N and the archive's newest state is the live one, the live refs
# and kept files as moment $n, with the LSN it ends at.
n=0
mark() {
  wait_index_lsn "$1"
  wait_archived 120 grp/h.git || fail "the archive did not catch up with the live repository: $(tail -20 "$L")"
  repo_state "$R" > "$T/refs.$n"
  kept_state "$R" > "$T/files.$n"
  at[$n]=$(pitr_now_us)
  lsn[$n]=$(index_lsn)
  n=$((n + 1))
}

archiver_start "$L" --debounce 50
wait_log "$L" 'event=ready' 1 60 || fail "start-up: $(cat "$L")"
wait_log "$L" 'event=full repo=grp/h.git .* files_skipped=2' 1 60 || fail "no full backup with 2 files skipped: $(cat "$L")"
grep -Eq 'event=(refused|error)' "$L" && fail "the repository was refused: $(grep -E 'event=(refused|error)' "$L")"
mark 1
pass "the service takes the full backup of a repository with a fifo and a 2 MiB hook"

push_commit grp/h.git
mark 2
push_commit grp/h.git feature
mark 3
git -C "$T/work/grp/h.git" push -q origin --delete feature
mark 4
[ "$(count_log "$L" 'event=segment repo=grp/h.git ')" -ge 3 ] || fail "the pushes are not segments: $(cat "$L")"
grep -Eq 'event=(refused|error)' "$L" && fail "a push was not captured: $(grep -E 'event=(refused|error)' "$L")"
pass "each push is captured as a segment"

# restore_at I: restore --until moment I: exact refs and kept files, the two named, exit 0.
restore_at() {
  local i=$1 d=$T/pitr.$1 out rc=0
  out=$(gitwal restore --to "$d" --repo grp/h.git --until "$(pitr_at "${at[$i]}")" 2>"$d.err") || rc=$?
  [ $rc -eq 0 ] || fail "restore --until moment $i exited $rc: $out $(cat "$d.err")"
  diff "$T/refs.$i" <(repo_state "$d/grp/h.git") >&2 || fail "restore --until moment $i: refs differ"
  diff "$T/files.$i" <(kept_state "$d/grp/h.git") >&2 || fail "restore --until moment $i: the kept files differ"
  [ "$(git -C "$d/grp/h.git" config gitlab.fullpath)" = grp/h ] || fail "moment $i: the repository's config is not restored"
  [ ! -e "$d/grp/h.git/custom_hooks/queue" ] && [ ! -e "$d/grp/h.git/custom_hooks/big.bin" ] ||
    fail "moment $i: something was created for a path not archived: $(ls -la "$d/grp/h.git/custom_hooks")"
  grep -qx "gitwal: warning: repository grp/h.git: custom_hooks/queue was not archived (a fifo)" "$d.err" ||
    fail "moment $i: the fifo is not named: $(cat "$d.err")"
  grep -qx "gitwal: warning: repository grp/h.git: custom_hooks/big.bin was not archived (2097152 bytes, above the 1048576 gitwal keeps)" "$d.err" ||
    fail "moment $i: the big file is not named: $(cat "$d.err")"
  [ "$(field "$out" files_not_restored)" = 2 ] || fail "moment $i: the ok line does not count them: $out"
  [ "$(field "$out" lsn)" = "${lsn[$i]}" ] || fail "moment $i: restored LSN $(field "$out" lsn), expected ${lsn[$i]}"
  grep -q '^gitwal restore: 1 repositories, 0 failed, 0 skipped, 0 damaged keys, 2 files not restored, into ' "$d.err" ||
    fail "moment $i: the summary does not count them: $(cat "$d.err")"
  git -C "$d/grp/h.git" fsck --no-progress >/dev/null 2>&1 || fail "moment $i: the restore does not pass fsck"
}
for i in $(seq 0 $((n - 1))); do restore_at "$i"; done
pass "restore --until each moment: exact refs and hooks, the fifo and the big file named, exit 0"

# What it cannot keep changes: a second fifo is a change of the set, archived as a segment that log shows.
before=$(index_lsn)
mkfifo "$R/custom_hooks/queue2"
wait_index_lsn $((before + 1))
gitwal log --repo grp/h.git > "$T/log.txt" || fail "gitwal log"
grep -qx '  file custom_hooks/queue2 not-archived (a fifo)' "$T/log.txt" || fail "log does not show the new fifo: $(cat "$T/log.txt")"
gitwal log --repo grp/h.git --json | python3 -c '
import json, sys
recs = json.load(sys.stdin)["records"]
changes = [c for r in recs for c in r.get("files", [])]
if {"path": "custom_hooks/queue2", "change": "not-archived", "reason": "a fifo"} not in changes:
    sys.exit("FAIL: log --json lacks the fifo: %s" % changes)' || fail "log --json (above)"
out=$(gitwal restore --to "$T/r2" --repo grp/h.git 2>"$T/r2.err") || fail "restore after the second fifo: $(cat "$T/r2.err")"
[ "$(field "$out" files_not_restored)" = 3 ] || fail "the second fifo is not counted: $out"
grep -q 'custom_hooks/queue2 was not archived (a fifo)' "$T/r2.err" || fail "the second fifo is not named: $(cat "$T/r2.err")"
archiver_stop "$L"
grep -Eq 'event=(refused|error)' "$L" && fail "the service refused or failed: $(grep -E 'event=(refused|error)' "$L")"
pass "a new fifo is a segment of its own; log shows it as not archived"

# gitwal backup of it succeeds likewise, counting what it left out, and restores the same way.
out=$(gitwal backup grp/h.git 2>"$T/backup.err") || fail "gitwal backup failed: $out $(cat "$T/backup.err")"
[ "$(field "$out" files_skipped)" = 3 ] || fail "the backup does not count the files it left out: $out"
grep -q 'gitwal: warning: repository grp/h.git: 3 of its files not archived' "$T/backup.err" ||
  fail "the backup does not warn: $(cat "$T/backup.err")"
out=$(gitwal restore --to "$T/r3" --repo grp/h.git --lsn "$(field "$out" lsn)" 2>"$T/r3.err") ||
  fail "restore --lsn of the backup: $(cat "$T/r3.err")"
assert_same_repo "$R" "$T/r3/grp/h.git"
diff <(kept_state "$R") <(kept_state "$T/r3/grp/h.git") >&2 || fail "the backup's kept files differ"
[ "$(grep -c 'was not archived' "$T/r3.err")" = 3 ] || fail "restore of the backup does not name all three: $(cat "$T/r3.err")"
gitwal audit >"$T/audit.out" 2>&1 || fail "audit: $(head -20 "$T/audit.out")"
pass "gitwal backup succeeds, counts and warns; its restore names them; audit clean"
