#!/usr/bin/env bash
# A repository's files beside refs and objects (DESIGN.md 4.5): config, description, info/attributes and
# custom_hooks/ (executables, subdirectories, symlinks, one pointing outside the repository) are kept by
# a full backup and restored exactly, modes included, links as links; the link's target is never read
# nor written. A stored manifest whose files leave the repository ('../x', an absolute path) is refused
# on restore with one line naming the repository and the path, and nothing is written outside.
source "$(dirname "$0")/lib.sh"

R=$T/root/grp/a.git
make_repo grp/a.git 2

# The outside world a link points at: a directory whose content must never be archived nor touched.
mkdir -p "$T/outside"
echo "secret, never archived" > "$T/outside/secret"
mkfifo "$T/outside/fifo" # opening it would block: a backup that followed the link would hang

mkdir -p "$R/custom_hooks/pre-receive.d/sub" "$R/custom_hooks/private"
printf '#!/bin/sh\nexit 0\n' > "$R/custom_hooks/pre-receive.d/check"
chmod 0755 "$R/custom_hooks/pre-receive.d/check"
printf 'not executable\n' > "$R/custom_hooks/pre-receive.d/sub/data.txt"
chmod 0644 "$R/custom_hooks/pre-receive.d/sub/data.txt"
printf '#!/bin/sh\necho post\n' > "$R/custom_hooks/private/hook"
chmod 0700 "$R/custom_hooks/private/hook"
chmod 0750 "$R/custom_hooks/private"
printf '\x00\x01binary\xff' > "$R/custom_hooks/blob"
chmod 0600 "$R/custom_hooks/blob"
ln -s pre-receive.d/check "$R/custom_hooks/post-receive"
ln -s "$T/outside" "$R/custom_hooks/outside"
ln -s "$T/outside/fifo" "$R/custom_hooks/pipe"
git -C "$R" config gitlab.fullpath grp/a
git -C "$R" config core.logAllRefUpdates false
printf 'Project A\n' > "$R/description"
mkdir -p "$R/info"
printf '*.bin binary\n*.c diff=cpp\n' > "$R/info/attributes"

# files_state DIR: every kept path with its mode, type and link target, and every regular file's digest.
files_state() {
  local p
  (cd "$1" && for p in config description info/attributes custom_hooks; do
    if [ -e "$p" ] || [ -L "$p" ]; then find "$p" -printf '%p %m %y %l\n'; find "$p" -type f -exec sha256sum {} +; fi
  done | sort)
}
outside_before=$(cd "$T/outside" && find . -printf '%p %m %y %T@\n' | sort; sha256sum secret)
outside_same() {
  [ "$(cd "$T/outside" && find . -printf '%p %m %y %T@\n' | sort; sha256sum secret)" = "$outside_before" ] ||
    fail "$1: the directory a link points at changed"
}

out=$(backup_ok grp/a.git)
lsn=$(field "$out" lsn)
manifest=$(full_key grp/a.git "$lsn" manifest)
grep -q 'secret' "$manifest" && fail "the link's target was read into the manifest"
outside_same "backup"
pass "a full backup keeps the files without following links"

restore_ok "$T/r1" >/dev/null
D=$T/r1/grp/a.git
diff <(files_state "$R") <(files_state "$D") >&2 || fail "restored files differ"
[ -L "$D/custom_hooks/outside" ] && [ "$(readlink "$D/custom_hooks/outside")" = "$T/outside" ] ||
  fail "the link outside is not restored as the same link"
[ "$(git -C "$D" config gitlab.fullpath)" = grp/a ] || fail "restored config lacks gitlab.fullpath"
assert_same_repo "$R" "$D"
outside_same "restore"
pass "restore gives back config, description, info/attributes and custom_hooks exactly, links as links"

# Point in time: each change (git config, description, info/attributes, hooks added, removed, their
# modes changed, custom_hooks removed) kept by a full backup; restore --until each moment is exact.
step=0
files_state "$R" > "$T/truth.0"
at[0]=$(pitr_now_us)
change() {
  "$@"
  backup_ok grp/a.git >/dev/null
  step=$((step + 1))
  files_state "$R" > "$T/truth.$step"
  at[$step]=$(pitr_now_us)
}
change git -C "$R" config gitlab.fullpath grp/renamed
change git -C "$R" config --add remote.mirror.url https://example.com/a.git
change sh -c "printf 'Renamed project\n' > '$R/description'"
change sh -c "printf '*.png binary\n' > '$R/info/attributes' && rm '$R/custom_hooks/pre-receive.d/sub/data.txt'"
change sh -c "chmod 0700 '$R/custom_hooks/pre-receive.d/check' && mkdir -m 0711 '$R/custom_hooks/update.d' &&
  printf '#!/bin/sh\n' > '$R/custom_hooks/update.d/a' && chmod 0555 '$R/custom_hooks/update.d/a'"
change rm -rf "$R/custom_hooks" "$R/info/attributes"
for i in $(seq 0 "$step"); do
  restore_ok "$T/pitr.$i" --repo grp/a.git --until "$(pitr_at "${at[$i]}")" >/dev/null
  diff "$T/truth.$i" <(files_state "$T/pitr.$i/grp/a.git") >&2 || fail "restore --until step $i: files differ"
done
outside_same "point-in-time restores"
pass "restore --until each change gives the files exactly as they were"

# The archiver's own full backups keep them too.
make_repo grp/d.git 1
mkdir -p "$T/root/grp/d.git/custom_hooks/post-receive.d"
printf '#!/bin/sh\n' > "$T/root/grp/d.git/custom_hooks/post-receive.d/notify"
chmod 0755 "$T/root/grp/d.git/custom_hooks/post-receive.d/notify"
archive_once
restore_ok "$T/arch" --repo grp/d.git >/dev/null
diff <(files_state "$T/root/grp/d.git") <(files_state "$T/arch/grp/d.git") >&2 || fail "archiver: files differ"
pass "the archiver's full backups keep the files"

# A backup taken before any such file existed restores git's skeleton, as before.
make_repo grp/b.git 1
rm -f "$T/root/grp/b.git/description"
backup_ok grp/b.git >/dev/null
restore_ok "$T/r2" --repo grp/b.git >/dev/null
[ -f "$T/r2/grp/b.git/config" ] || fail "grp/b.git restored without a config"
[ ! -e "$T/r2/grp/b.git/custom_hooks" ] || fail "grp/b.git restored with custom_hooks it never had"
pass "a repository without hooks restores without them"

# What gitwal cannot keep is recorded as not archived: the backup succeeds (refs and objects whole),
# and restore names each such path, creating nothing for it.
make_repo grp/c.git 1
mkdir "$T/root/grp/c.git/custom_hooks"
mkfifo "$T/root/grp/c.git/custom_hooks/fifo"
head -c $((1024 * 1024 + 1)) /dev/zero > "$T/root/grp/c.git/custom_hooks/big"
echo kept > "$T/root/grp/c.git/custom_hooks/small"
out=$(backup_ok grp/c.git)
[ "$(field "$out" files_skipped)" = 2 ] || fail "the backup does not count the 2 files it left out: $out"
restore_ok "$T/r3" --repo grp/c.git >"$T/r3.out"
grep -qx 'gitwal: warning: repository grp/c.git: custom_hooks/fifo was not archived (a fifo)' "$T/restore.err" ||
  fail "restore does not name the fifo: $(cat "$T/restore.err")"
grep -qx 'gitwal: warning: repository grp/c.git: custom_hooks/big was not archived (1048577 bytes, above the 1048576 gitwal keeps)' "$T/restore.err" ||
  fail "restore does not name the big file: $(cat "$T/restore.err")"
[ "$(cat "$T/r3/grp/c.git/custom_hooks/small")" = kept ] || fail "the hook beside them is not restored"
[ ! -e "$T/r3/grp/c.git/custom_hooks/fifo" ] && [ ! -e "$T/r3/grp/c.git/custom_hooks/big" ] ||
  fail "restore created something for a path not archived"
assert_same_repo "$T/root/grp/c.git" "$T/r3/grp/c.git"
pass "a file gitwal cannot keep is recorded as not archived: the backup succeeds, restore names it"

# Crafted manifests (on a fresh machine: no index, the store is read and checked): '../x' and an
# absolute path are refused with one line naming the repository and the path; nothing lands outside.
manifest=$(ls "$GITWAL_STATE_DIR/store/repos/$(enc_rel grp/a.git)/"*.full.manifest | tail -1) # the latest
craft() { # craft NAME PATH: a copy of the store whose latest grp/a.git manifest names a file PATH
  local s=$T/$1/store m
  mkdir -p "$T/$1"
  cp -a "$GITWAL_STATE_DIR/store" "$s"
  m=$s/${manifest#"$GITWAL_STATE_DIR/store/"}
  chmod u+w "$m"
  python3 - "$m" "$2" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
f = [e for e in m["files"] if e["path"] == "description"][0]
f["path"] = sys.argv[2]
json.dump(m, open(sys.argv[1], "w"), separators=(",", ":"))
PY
}
for bad in '../x' "$T/escaped" 'custom_hooks/../../x'; do
  craft crafted "$bad"
  rc=0
  gitwal restore --to "$T/crafted/out" --store "file://$T/crafted/store" --index "$T/crafted/index.db" \
    --repo grp/a.git >"$T/crafted.out" 2>"$T/crafted.err" || rc=$?
  [ $rc -ne 0 ] || fail "a manifest naming '$bad' restored"
  grep -q "grp/a.git.*'$bad'" "$T/crafted.out" "$T/crafted.err" ||
    fail "the refusal of '$bad' does not name the repository and the path: $(cat "$T/crafted.out" "$T/crafted.err")"
  [ ! -e "$T/x" ] && [ ! -e "$T/escaped" ] && [ ! -e "$T/crafted/x" ] || fail "'$bad' was written outside the target"
  [ ! -e "$T/crafted/out/grp/a.git" ] || fail "a refused restore left a repository"
  rm -rf "$T/crafted"
done
pass "crafted paths leaving the repository are refused, naming the repository and the path"
