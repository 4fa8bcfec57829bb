# Symlinks inside the root are not followed: two symlinks to the root (a walk that followed
# them would never end: 2^32 paths to depth 32), one to a repository, one to a directory of
# repositories. backup --all, archive --once and the service each finish and archive every
# repository once, under its path without symlinks; a repository named through a symlink is
# refused with the name to use; a name archived before that is now only reachable through a
# symlink is recorded as deleted.
source "$(dirname "$0")/lib.sh"

R=$T/root L=$T/ar.log
make_repo a.git 2
make_repo g/b.git 2
ln -s "$R" "$R/loop1"          # the root, by absolute path
ln -s .. "$R/g/loop2"          # the root, by relative path
ln -s a.git "$R/alias.git"     # a repository
ln -s g "$R/grp"               # a directory of repositories

# stored_repos: the repository names in the store, decoded, sorted, one a line.
stored_repos() {
  ls "$GITWAL_STATE_DIR/store/repos" 2>/dev/null | python3 -c 'import sys, urllib.parse; [print(urllib.parse.unquote(l.strip())) for l in sys.stdin]' | LC_ALL=C sort
}

# ---- backup --all: finishes, each repository once ----
rc=0
timeout 60 "$GITWAL_BIN" backup --all >"$T/all.out" 2>"$T/all.err" || rc=$?
[ $rc -ne 124 ] || fail "backup --all did not finish within 60 s (followed the symlinks?)"
[ $rc -eq 0 ] || fail "backup --all exited $rc: $(cat "$T/all.out" "$T/all.err")"
[ "$(grep -c '^ok ' "$T/all.out")" -eq 2 ] && grep -q '^ok a.git lsn=1 ' "$T/all.out" && grep -q '^ok g/b.git lsn=1 ' "$T/all.out" ||
  fail "backup --all: expected a.git and g/b.git once each: $(cat "$T/all.out")"
[ "$(stored_repos | tr '\n' ' ')" = "a.git g/b.git " ] || fail "store holds: $(stored_repos | tr '\n' ' ')"
pass "backup --all with two symlinks to the root: finished, a.git and g/b.git once each"

# ---- named through a symlink: refused with the real name ----
for via in alias.git loop1/a.git g/loop2/a.git; do
  rc=0
  gitwal backup "$via" >"$T/named.out" 2>"$T/named.err" || rc=$?
  [ $rc -eq 1 ] || fail "backup $via: exit $rc, expected 1"
  grep -q "^failed $via: repository $via is reached through a symlink (.*): gitwal archives a repository once, under its real path: name it a.git$" "$T/named.out" ||
    fail "backup $via: $(cat "$T/named.out")"
done
rc=0
gitwal backup grp/b.git >"$T/named.out" 2>&1 || rc=$?
[ $rc -eq 1 ] && grep -q 'symlink (grp).*name it g/b.git' "$T/named.out" || fail "backup grp/b.git: $(cat "$T/named.out")"
[ "$(stored_repos | tr '\n' ' ')" = "a.git g/b.git " ] || fail "a refused backup stored: $(stored_repos | tr '\n' ' ')"
pass "backup of a repository named through a symlink: refused, naming the real path"

# ---- archive --once: finishes, each repository once ----
rm -rf "$GITWAL_STATE_DIR"
rc=0
timeout 60 "$GITWAL_BIN" archive --once 2>"$T/once.log" >/dev/null || rc=$?
[ $rc -ne 124 ] || fail "archive --once did not finish within 60 s"
[ $rc -eq 0 ] || fail "archive --once exited $rc: $(cat "$T/once.log")"
[ "$(count_log "$T/once.log" 'event=full ')" -eq 2 ] && grep -q 'event=full repo=a.git lsn=1 ' "$T/once.log" &&
  grep -q 'event=full repo=g/b.git lsn=1 ' "$T/once.log" || fail "archive --once: $(cat "$T/once.log")"
[ "$(stored_repos | tr '\n' ' ')" = "a.git g/b.git " ] || fail "store holds: $(stored_repos | tr '\n' ' ')"
pass "archive --once: finished, a.git and g/b.git once each"

# ---- the service: starts, watches each repository once, ignores new symlinks ----
archiver_start "$L" --debounce 20
wait_archived 60 a.git g/b.git || fail "the service does not archive the live state after start-up: $(tail -5 "$L")"
grep -q 'event=error' "$L" && fail "service start-up: $(cat "$L")"
ln -s . "$R/loop3"
ln -s g/b.git "$R/g/alias2.git"
push_commit a.git main
wait_log "$L" 'event=segment repo=a.git ' 1 30 || fail "no segment for a.git: $(tail -5 "$L")"
make_repo g/c.git 1
wait_log "$L" 'event=full repo=g/c.git lsn=1 ' 1 30 || fail "new repository g/c.git not archived: $(tail -5 "$L")"
wait_archived 60 a.git g/b.git g/c.git || fail "the service does not reach the live state"
[ "$(count_log "$L" 'event=full ')" -eq 1 ] && [ "$(count_log "$L" 'event=segment repo=a.git ')" -eq 1 ] ||
  fail "service: one segment of a.git and one full backup of g/c.git expected: $(cat "$L")"
grep -Eq 'repo=[^ ]*(loop|alias|grp)' "$L" && fail "service archived a name through a symlink: $(cat "$L")"
archiver_stop "$L"
[ "$(stored_repos | tr '\n' ' ')" = "a.git g/b.git g/c.git " ] || fail "store holds: $(stored_repos | tr '\n' ' ')"
assert_replay a.git "$R/a.git"
pass "service: started, each change archived once under the real path, new symlinks ignored"

# ---- a name that now leads through a symlink is deleted from the archive's point of view ----
mkdir "$R/x"; git clone -q --bare "$R/a.git" "$R/x/a.git"
arch_once > "$T/run1.log"
grep -q 'event=full repo=x/a.git lsn=1 ' "$T/run1.log" || fail "x/a.git not archived: $(cat "$T/run1.log")"
rm -rf "$R/x"; ln -s . "$R/x"     # x/a.git is now the root's a.git, through a symlink
arch_once > "$T/run2.log"
grep -q 'event=segment repo=x/a.git lsn=2 ' "$T/run2.log" || fail "x/a.git not recorded deleted: $(cat "$T/run2.log")"
assert_replay x/a.git "$T/nowhere"   # DELETED
grep -Eq 'event=(full|segment) repo=a.git' "$T/run2.log" && fail "a.git archived again: $(cat "$T/run2.log")"
pass "a repository now reached only through a symlink is recorded as deleted"
