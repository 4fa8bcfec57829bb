#!/usr/bin/env bash
# A repository whose directory cannot be read (only searched: mode 0311) fails the walk of its own
# files as a whole (DESIGN.md 4.5), and still loses no push: the service captures the refs, logs one
# event=warning line naming the repository and why, and keeps the files it archived last (no change
# of files recorded); a restore then has the exact refs and those files; `gitwal backup` of it
# succeeds. gitwal runs as another user than the files' owner (nobody, when the test runs as root:
# root reads any directory).
source "$(dirname "$0")/lib.sh"

# as_user CMD...: CMD as a user the repository's directory refuses reading to.
as_user() {
  if [ "$(id -u)" = 0 ]; then
    setpriv --reuid=65534 --regid=65534 --clear-groups env HOME="$T/uhome" "$@"
  else
    "$@"
  fi
}

chmod 0755 "$T"
U=$T/uroot R=$T/uroot/u.git S=$T/ustate
mkdir -p "$U" "$S" "$T/uhome"
git init -q --bare "$R"
git clone -q "$R" "$T/uwork" 2>/dev/null
echo one > "$T/uwork/f" && git -C "$T/uwork" add f && git -C "$T/uwork" commit -qm one && git -C "$T/uwork" push -q origin main
git -C "$R" config gitlab.fullpath u
mkdir "$R/custom_hooks" && printf '#!/bin/sh\nexit 0\n' > "$R/custom_hooks/pre-receive" && chmod 0755 "$R/custom_hooks/pre-receive"
[ "$(id -u)" = 0 ] && chown -R 65534:65534 "$S" "$T/uhome"
chmod -R a+rX "$U"
export GITWAL_STATE_DIR=$S GITWAL_ROOT=$U

as_user "$GITWAL_BIN" archive --once 2>"$T/once.1" || fail "the first archive --once: $(cat "$T/once.1")"
grep -q 'event=full repo=u.git ' "$T/once.1" || fail "no full backup: $(cat "$T/once.1")"

# Unreadable now; a push and a changed hook meanwhile.
chmod 0311 "$R"
echo two >> "$T/uwork/f" && git -C "$T/uwork" commit -qam two && git -C "$T/uwork" push -q origin main
printf '#!/bin/sh\nexit 1\n' > "$R/custom_hooks/pre-receive"
chmod -R a+rX "$R/objects" "$R/refs"
as_user "$GITWAL_BIN" archive --once 2>"$T/once.2" || fail "archive --once with the directory unreadable: $(cat "$T/once.2")"
grep -Eq 'event=(error|refused)' "$T/once.2" && fail "the repository failed: $(cat "$T/once.2")"
[ "$(grep -c 'event=warning repo=u.git reason=".*u.git: cannot read its directory .*Permission denied; its files as last archived are kept"' "$T/once.2")" = 1 ] ||
  fail "not one warning naming the repository and why: $(cat "$T/once.2")"
grep -q 'event=spooled repo=u.git lsn=2 updates=1 ' "$T/once.2" || fail "the push is not captured: $(cat "$T/once.2")"
grep -q 'event=spooled .* files=1' "$T/once.2" && fail "a change of files was recorded from a walk that saw nothing"
pass "the directory unreadable: the push is captured, one warning names the repository, the files stand"

gitwal restore --to "$T/r1" --repo u.git >"$T/r1.out" 2>"$T/r1.err" || fail "restore: $(cat "$T/r1.err")"
chmod 0755 "$R"
assert_same_repo "$R" "$T/r1/u.git"
[ "$(cat "$T/r1/u.git/custom_hooks/pre-receive")" = "$(printf '#!/bin/sh\nexit 0')" ] ||
  fail "the hook is not the one archived last: $(cat "$T/r1/u.git/custom_hooks/pre-receive")"
[ "$(git -C "$T/r1/u.git" config gitlab.fullpath)" = u ] || fail "the config archived last is not restored"
pass "the restore has the exact refs and the files as archived last"

chmod 0311 "$R"
out=$(as_user "$GITWAL_BIN" backup u.git 2>"$T/backup.err") || fail "gitwal backup with the directory unreadable: $out $(cat "$T/backup.err")"
grep -q '^ok u.git lsn=3 ' <<<"$out" || fail "the backup: $out"
chmod 0755 "$R"
pass "gitwal backup of it succeeds"
