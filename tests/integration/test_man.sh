# The man page's option paragraphs are the commands' option tables: doc/gitwal.1 is exactly
# what scripts/man.sh writes from 'gitwal help --man-options' (so the page and --help cannot
# drift), every command has its block, and the hidden option does no other work.
source "$(dirname "$0")/lib.sh"

MAN=$GITWAL_SOURCE_DIR/doc/gitwal.1
"$GITWAL_SOURCE_DIR/scripts/man.sh" "$GITWAL_BIN" "$T/gitwal.1" || fail "scripts/man.sh failed"
diff "$MAN" "$T/gitwal.1" >&2 ||
  fail "doc/gitwal.1 differs from the option tables: run scripts/man.sh (the diff above)"
pass "doc/gitwal.1's option paragraphs are the option tables"

# A block for the common options and for each command 'gitwal --help' lists.
for cmd in common $(gitwal --help | sed -n '/^Commands:/,/^$/s/^  \([a-z][a-z]*\) .*/\1/p'); do
  case $cmd in help|version) continue ;; esac
  grep -qx ".\\\\\" BEGIN gitwal help --man-options $cmd" "$MAN" || fail "doc/gitwal.1 has no option block of $cmd"
  gitwal help --man-options "$cmd" > "$T/man.$cmd" || fail "gitwal help --man-options $cmd"
  # Every option --help lists is in the block (the block may list more: -h, and what --help says elsewhere).
  if [ "$cmd" != common ]; then
    for opt in $(gitwal "$cmd" --help | sed -n '/^Common options/q;p' | grep -oE -- '^  --[a-z][a-z0-9-]*' | sort -u); do
      grep -qF -- "\\fB$(sed 's/-/\\-/g' <<<"$opt")\\fR" "$T/man.$cmd" || fail "$cmd: $opt of --help is not in its man block"
    done
  fi
done
pass "an option block for the common options and every command, with every option --help lists"

# The hidden option is not a command, and touches nothing.
rc=0; gitwal help --man-options bogus >/dev/null 2>"$T/err" || rc=$?
[ $rc -eq 2 ] && grep -q "'bogus' is not a command" "$T/err" || fail "help --man-options bogus: exit $rc: $(cat "$T/err")"
[ ! -e "$GITWAL_STATE_DIR" ] || fail "help --man-options created $GITWAL_STATE_DIR"
pass "help --man-options of an unknown command: a usage error; nothing touched"
