#!/usr/bin/env bash
# The running service archives changes to a repository's own files (DESIGN.md 4.5): config (git
# config), description, info/attributes and custom_hooks/ (hooks added, changed, their modes, new
# subdirectories and files in them, links, removals) each become a segment carrying the whole set,
# with no ref update when no ref moved; restore --until each moment gives them back exactly, links
# as links; `index rebuild` on a fresh index gives the same; info and log show the changes; the
# audit is clean. An index whose record of the files is not the segment's is refused on restore, a
# fifo in custom_hooks/ is archived as not archived (log shows it), and log names a generation whose manifest is gone.
source "$(dirname "$0")/lib.sh"

R=$T/root/grp/a.git L=$T/ar.log
make_repo grp/a.git 2
mkdir -p "$T/outside"
echo "never archived" > "$T/outside/secret"

# files_state DIR: every kept path with its mode, type and link target, and every regular file's digest.
files_state() {
  local p
  (cd "$1" && for p in config description info/attributes custom_hooks; do
    if [ -e "$p" ] || [ -L "$p" ]; then
      find "$p" -printf "$p/%P %m %y %l\n"
      find "$p" -type f -exec sha256sum {} +
    fi
  done | sort)
}

# caught_up: until the archive's newest state (a restore of the store, read back) has the live files
# and refs: then every segment of the change is stored and nothing more comes until the next one.
caught_up() {
  local i
  files_state "$R" > "$T/live.files"
  repo_state "$R" > "$T/live.refs"
  for i in $(seq 1 300); do
    rm -rf "$T/probe"
    if gitwal restore --to "$T/probe" --repo grp/a.git >/dev/null 2>&1 &&
      diff -q "$T/live.files" <(files_state "$T/probe/grp/a.git") >/dev/null &&
      diff -q "$T/live.refs" <(repo_state "$T/probe/grp/a.git") >/dev/null; then
      return 0
    fi
    kill -0 "$AR_PID" 2>/dev/null || fail "the archiver died: $(tail -20 "$L")"
    sleep 0.1
  done
  fail "the archive did not reach the live files: $(diff "$T/live.files" <(files_state "$T/probe/grp/a.git"); tail -20 "$L")"
}

archiver_start "$L" --debounce 50
wait_log "$L" 'event=ready' 1 60 || fail "start-up: $(cat "$L")"
wait_log "$L" 'event=full repo=grp/a.git ' 1 60 || fail "no first full backup: $(cat "$L")"

step=0
files_state "$R" > "$T/truth.0"
repo_state "$R" > "$T/refs.0"
at[0]=$(pitr_now_us)
# change DESCRIPTION COMMAND...: run it, wait for its segment and for the archive to catch up.
change() {
  local what=$1 n; shift
  n=$(count_log "$L" 'event=segment repo=grp/a.git ')
  "$@"
  wait_log "$L" 'event=segment repo=grp/a.git ' $((n + 1)) 60 || fail "$what: no segment: $(tail -20 "$L")"
  caught_up
  step=$((step + 1))
  files_state "$R" > "$T/truth.$step"
  repo_state "$R" > "$T/refs.$step"
  what_at[$step]=$what
  at[$step]=$(pitr_now_us)
}
# put MODE PATH TEXT: a hook written whole (beside it, then renamed), as deployment tools do.
put() { printf '%s\n' "$3" > "$R/.tmp-hook" && chmod "$1" "$R/.tmp-hook" && mv "$R/.tmp-hook" "$R/$2"; }

change "git config" git -C "$R" config gitlab.fullpath grp/a
change "description" sh -c "printf 'Project A\n' > '$R/description'"
change "info/attributes" sh -c "printf '*.bin binary\n' > '$R/info/attributes'"
change "custom_hooks/ with a hook" sh -c "mkdir -p '$R/custom_hooks/pre-receive.d' && printf '#!/bin/sh\nexit 0\n' > '$T/h' && chmod 0755 '$T/h' && mv '$T/h' '$R/custom_hooks/pre-receive.d/check'"
change "a hook's mode" chmod 0700 "$R/custom_hooks/pre-receive.d/check"
change "a hook's content" put 0700 custom_hooks/pre-receive.d/check '#!/bin/sh
exit 1'
change "a link in custom_hooks" ln -s pre-receive.d/check "$R/custom_hooks/post-receive"
change "a link leading outside" ln -s "$T/outside" "$R/custom_hooks/outside"
change "a new subdirectory" mkdir -p "$R/custom_hooks/update.d/deep"
change "a file in the new subdirectory" put 0640 custom_hooks/update.d/deep/data 'deep data'
change "the same file again" sh -c "printf 'more\n' >> '$R/custom_hooks/update.d/deep/data'"
change "a directory's mode" chmod 0711 "$R/custom_hooks/update.d"
change "a push" push_commit grp/a.git
change "a hook removed" rm "$R/custom_hooks/pre-receive.d/check"
change "git config again" git -C "$R" config --unset gitlab.fullpath
change "custom_hooks removed" rm -rf "$R/custom_hooks"
archiver_stop "$L"
grep -q 'event=error' "$L" && fail "the service logged an error: $(grep 'event=error' "$L")"
[ "$(cat "$T/outside/secret")" = "never archived" ] || fail "the link's target was touched"
pass "$step changes, each archived by the service as it happened"

# Each change is one segment carrying the whole set; those that moved no ref have no update.
gitwal log --repo grp/a.git --json > "$T/log.json" || fail "gitwal log"
nfiles=$(python3 - "$T/log.json" "$step" <<'PY'
import json, sys
recs = json.load(open(sys.argv[1]))["records"]
segs = [r for r in recs if r["kind"] == "segment"]
files = [r for r in segs if "files" in r]
# Every change but the push; one made of several writes may take more than one segment under load.
if len(files) < int(sys.argv[2]) - 1:
    sys.exit("FAIL: %d segments carry files, expected %d: %s" % (len(files), int(sys.argv[2]) - 1, segs))
if any(not r["files"] for r in files):
    sys.exit("FAIL: a segment carries the files unchanged: %s" % files)
first = files[0]
if first["updates"] or first["files"] != [{"path": "config", "change": "changed"}]:
    sys.exit("FAIL: the git config segment: %s" % first)
pushed = [r for r in segs if r["updates"]]
if len(pushed) != 1 or "files" in pushed[0]:
    sys.exit("FAIL: the push is not one segment without files: %s" % pushed)
last = files[-1]["files"]
if not last or any(c["change"] != "removed" or not c["path"].startswith("custom_hooks") for c in last):
    sys.exit("FAIL: custom_hooks removed: %s" % last)
print(len(files))
PY
) || fail "the segments' files (above)"
gitwal log --repo grp/a.git > "$T/log.txt" || fail "gitwal log (text)"
grep -q '^  file description changed$' "$T/log.txt" || fail "log does not name the description's change: $(cat "$T/log.txt")"
grep -q '^  file custom_hooks/update.d/deep added$' "$T/log.txt" || fail "log does not name the new subdirectory"
out=$(gitwal info --repo grp/a.git) || fail "gitwal info"
grep -q "files changed in $nfiles segments" <<<"$out" || fail "info does not count the changes: $out"
[ "$(gitwal info --repo grp/a.git --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["repositories"][0]["file_changes"])')" = "$nfiles" ] ||
  fail "info --json does not count the changes"
pass "log shows each segment's changed paths (no ref update for a files-only change); info counts them"

# restore_each LABEL INDEX: restore --until every moment, exact (files with modes, links, refs).
restore_each() {
  local i d
  for i in $(seq 0 "$step"); do
    d=$T/pitr.$1.$i
    restore_ok "$d" --repo grp/a.git --until "$(pitr_at "${at[$i]}")" --index "$2" >/dev/null
    diff "$T/truth.$i" <(files_state "$d/grp/a.git") >&2 || fail "restore --until after '${what_at[$i]:-start}' ($1 index): files differ"
    diff "$T/refs.$i" <(repo_state "$d/grp/a.git") >&2 || fail "restore --until after '${what_at[$i]:-start}': refs differ"
  done
  [ -L "$T/pitr.$1.8/grp/a.git/custom_hooks/outside" ] || fail "the link outside is not restored as a link"
  git -C "$d/grp/a.git" fsck --no-progress >/dev/null 2>&1 || fail "the last restore does not pass fsck"
}
restore_each service "$GITWAL_STATE_DIR/index.db"
pass "restore --until each moment gives the files exactly, links as links"

gitwal index rebuild --index "$T/fresh.db" >/dev/null 2>"$T/rebuild.err" || fail "index rebuild: $(cat "$T/rebuild.err")"
restore_each rebuilt "$T/fresh.db"
[ "$(gitwal info --repo grp/a.git --index "$T/fresh.db" --no-sync | grep -c "files changed in $nfiles segments")" = 1 ] ||
  fail "the rebuilt index does not count the changes"
gitwal audit >"$T/audit.out" 2>&1 || fail "audit: $(head -20 "$T/audit.out")"
pass "index rebuild from the store gives the same restores; audit clean"

# The index's record of a segment's files must be what the segment holds: else restore refuses.
python3 - "$T/fresh.db" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("UPDATE segments SET files = ? WHERE lsn = (SELECT MAX(lsn) FROM segments WHERE files != '')", ("0" * 64,))
db.commit()
PY
assert_fails "an index recording other files" "grp/a.git.*does not hold the files the index recorded" \
  gitwal restore --to "$T/bad" --repo grp/a.git --index "$T/fresh.db"
[ ! -e "$T/bad/grp/a.git" ] || fail "a refused restore left a repository"
pass "a segment whose files are not those the index recorded is refused"

# log names a generation whose full backup's manifest is gone, and goes on.
cp -a "$GITWAL_STATE_DIR/store" "$T/lost"
chmod -R u+w "$T/lost"
rm "$T/lost/repos/$(enc_rel grp/a.git)/"*.full.manifest
rc=0
gitwal log --repo grp/a.git --store "file://$T/lost" --index "$T/lost.db" >"$T/lost.out" 2>"$T/lost.err" || rc=$?
[ $rc -eq 1 ] || fail "log of a store without the manifest exited $rc"
grep -q 'damaged grp/a.git: the full backup at LSN 1' "$T/lost.err" || fail "log does not name the lost full backup: $(cat "$T/lost.err")"
grep -q '^  file config added$' "$T/lost.out" || fail "log does not list the files of a generation it cannot compare"
pass "log names a generation whose manifest is lost"

# A file the service cannot keep (a fifo) is archived as such, never refusing the repository: its
# segment names it (restore warns), and its removal is archived too.
archiver_start "$L" --debounce 50
wait_log "$L" 'event=ready' 1 60 || fail "restart: $(cat "$L")"
n=$(count_log "$L" 'event=spooled repo=grp/a.git .*files_skipped=1')
mkdir "$R/custom_hooks"
mkfifo "$R/custom_hooks/fifo"
wait_log "$L" 'event=spooled repo=grp/a.git .*files_skipped=1' $((n + 1)) 60 || fail "the fifo is not archived as skipped: $(tail -20 "$L")"
rm "$R/custom_hooks/fifo"
caught_up
archiver_stop "$L"
grep -q 'event=refused' "$L" && fail "the fifo refused the repository: $(grep 'event=refused' "$L")"
gitwal log --repo grp/a.git | grep_all -qx '  file custom_hooks/fifo not-archived (a fifo)' || fail "log does not show the fifo"
pass "a fifo in custom_hooks/ is archived as not archived, never refusing the repository"
