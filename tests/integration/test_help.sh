# Help and usage: every command's --help exits 0 on stdout and names its
# options; unknown commands and options are usage errors (exit 2).
source "$(dirname "$0")/lib.sh"

# help_ok "CMD..." OPTION...: `gitwal CMD... --help` exits 0, prints usage on stdout, nothing on stderr.
help_ok() {
  local cmd=$1 rc=0 opt; shift
  # shellcheck disable=SC2086
  gitwal $cmd --help >"$T/help.out" 2>"$T/help.err" || rc=$?
  [ $rc -eq 0 ] || fail "gitwal $cmd --help exited $rc"
  [ ! -s "$T/help.err" ] || fail "gitwal $cmd --help wrote to stderr: $(cat "$T/help.err")"
  grep -q '^usage: gitwal' "$T/help.out" || fail "gitwal $cmd --help: no usage line"
  for opt in "$@"; do
    grep -q -e "$opt" "$T/help.out" || fail "gitwal $cmd --help does not mention $opt"
  done
  pass "gitwal $cmd --help"
}
common=(--root --store --index --config GITWAL_ROOT GITWAL_STORE GITWAL_INDEX GITWAL_CONFIG)
help_ok "" backup restore info index help version "${common[@]}"
help_ok backup --all --jobs REL "${common[@]}"
help_ok restore --to --repo --lsn --force --jobs "${common[@]}"
help_ok info --json --repo "${common[@]}"
help_ok index rebuild "${common[@]}"

# -h and 'gitwal help COMMAND' are the same text.
gitwal backup --help > "$T/a"; gitwal backup -h > "$T/b" || fail "backup -h"
cmp -s "$T/a" "$T/b" || fail "backup -h differs from --help"
if gitwal help restore > "$T/c" 2>/dev/null; then
  cmp -s "$T/c" <(gitwal restore --help) || fail "'gitwal help restore' differs from 'gitwal restore --help'"
  pass "gitwal help restore"
else
  fail "'gitwal help restore' failed"
fi
gitwal help > "$T/d" 2>/dev/null || fail "'gitwal help' failed"
cmp -s "$T/d" <(gitwal --help) || fail "'gitwal help' differs from 'gitwal --help'"
gitwal version | grep_all -Eq '[0-9]+\.[0-9]+' || fail "gitwal version"
pass "help, -h, version"

# --help does no work: no store, no index, no state directory.
for cmd in backup restore info index; do gitwal $cmd --help >/dev/null; done
[ ! -e "$GITWAL_STATE_DIR" ] || fail "--help created $GITWAL_STATE_DIR: $(find "$GITWAL_STATE_DIR")"
pass "--help touches nothing"

# usage_error DESCRIPTION PATTERN CMD...: exit 2, PATTERN on stderr, nothing on stdout.
usage_error() {
  local what=$1 pattern=$2 rc=0; shift 2
  "$@" >"$T/u.out" 2>"$T/u.err" || rc=$?
  [ $rc -eq 2 ] || fail "$what: exit $rc, expected 2 (stderr: $(cat "$T/u.err"))"
  grep -Eq -- "$pattern" "$T/u.err" || fail "$what: stderr does not match '$pattern': $(cat "$T/u.err")"
  [ ! -s "$T/u.out" ] || fail "$what: wrote to stdout: $(cat "$T/u.out")"
  pass "$what"
}
usage_error "unknown command" "'bogus'" gitwal bogus
usage_error "no command" 'usage|command' gitwal
usage_error "unknown global option" "'--bogus'|bogus" gitwal --bogus
usage_error "backup: unknown option" "'--frobnicate'" gitwal backup --frobnicate x.git
usage_error "restore: unknown option" "'--frobnicate'" gitwal restore --frobnicate --to "$T/x"
usage_error "info: unknown option" "'--frobnicate'" gitwal info --frobnicate
usage_error "index: unknown option" "'--frobnicate'" gitwal index --frobnicate rebuild
usage_error "index: unknown subcommand" 'rebuild' gitwal index frob
usage_error "index: no subcommand" 'rebuild' gitwal index
usage_error "restore: missing --to" '--to' gitwal restore
usage_error "backup: option without its value" "'--store'" gitwal backup --store
[ ! -e "$GITWAL_STATE_DIR" ] || fail "a usage error created $GITWAL_STATE_DIR"
pass "usage errors touch nothing"
# An option after the repositories is an option, not a repository named '--jobs'.
out=$(gitwal backup x.git --jobs 2 2>&1) && fail "backup of a missing repository succeeded"
echo "$out" | grep_all -q "repository x.git not found" || fail "option after REL: $out"
if echo "$out" | grep_all -q -- "--jobs not found"; then fail "option after REL taken as a repository: $out"; fi
pass "backup: option after REL"
