# The man page and the install: every option any 'gitwal COMMAND --help' names is in
# doc/gitwal.1 (so a new option cannot ship undocumented), every command has its section,
# and 'cmake --install' into a DESTDIR puts the binary, the man page and the systemd unit
# in place, the unit running the installed binary.
source "$(dirname "$0")/lib.sh"

MAN=$GITWAL_SOURCE_DIR/doc/gitwal.1
BUILD=${GITWAL_BUILD_DIR:-$(dirname "$GITWAL_BIN")}
[ -f "$MAN" ] || fail "no man page at $MAN"

# The page's text as a reader sees it: roff's \- is a hyphen, font changes vanish.
sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' "$MAN" > "$T/man.txt"

# The commands, from 'gitwal --help' (so a new command is covered without touching this test).
gitwal --help | sed -n '/^Commands:/,/^$/s/^  \([a-z][a-z]*\) .*/\1/p' > "$T/commands"
[ "$(wc -l < "$T/commands")" -ge 7 ] || fail "could not read the commands from gitwal --help: $(cat "$T/commands")"
missing=
while read -r cmd; do
  case $cmd in help|version) grep -q "^\.SS gitwal help \[COMMAND\], gitwal version" "$MAN" || missing+=" section:$cmd"; continue ;; esac
  grep -q "^\.SS gitwal $cmd\b" "$MAN" || missing+=" section:$cmd"
  gitwal "$cmd" --help > "$T/help.$cmd" || fail "gitwal $cmd --help"
  for opt in $(grep -oE -- '--[a-z][a-z0-9-]*' "$T/help.$cmd" | sort -u); do
    grep -qe "$opt\b" "$T/man.txt" || missing+=" $cmd:$opt"
  done
done < "$T/commands"
for opt in $(gitwal --help | grep -oE -- '--[a-z][a-z0-9-]*' | sort -u); do
  grep -qe "$opt\b" "$T/man.txt" || missing+=" gitwal:$opt"
done
[ -z "$missing" ] || fail "doc/gitwal.1 does not document:$missing"
pass "every command and every --help option is in doc/gitwal.1 ($(wc -l < "$T/commands") commands)"

# It renders without a warning where groff is installed (man-db depends on it).
if command -v groff >/dev/null; then
  groff -man -ww -z "$MAN" 2> "$T/groff.err" || fail "groff cannot render doc/gitwal.1: $(cat "$T/groff.err")"
  [ ! -s "$T/groff.err" ] || fail "groff warns about doc/gitwal.1: $(cat "$T/groff.err")"
  pass "doc/gitwal.1 renders without a warning"
fi

# cmake --install into a DESTDIR, at a prefix chosen at install time.
[ -f "$BUILD/cmake_install.cmake" ] || fail "no cmake_install.cmake in $BUILD (GITWAL_BUILD_DIR)"
DESTDIR=$T/dest cmake --install "$BUILD" --prefix /usr > "$T/install.out" 2>&1 ||
  fail "cmake --install failed: $(cat "$T/install.out")"
D=$T/dest/usr
[ -x "$D/bin/gitwal" ] || fail "no executable bin/gitwal: $(cd "$T/dest" && find . -type f)"
[ "$("$D/bin/gitwal" version)" = "$(gitwal version)" ] || fail "the installed gitwal is not the one built"
cmp -s "$MAN" "$D/share/man/man1/gitwal.1" || fail "share/man/man1/gitwal.1 differs from doc/gitwal.1"
U=$D/lib/systemd/system/gitwal-archive.service
[ -f "$U" ] || fail "no lib/systemd/system/gitwal-archive.service: $(cd "$T/dest" && find . -type f)"
grep -q '^ExecStart=/usr/bin/gitwal archive' "$U" || fail "the unit does not run the installed binary: $(grep ExecStart "$U")"
diff <(grep -v '^ExecStart=' "$GITWAL_SOURCE_DIR/scripts/gitwal-archive.service") <(grep -v '^ExecStart=' "$U") >&2 ||
  fail "the installed unit differs from scripts/gitwal-archive.service beyond ExecStart"
n=$(cd "$T/dest" && find . -type f | wc -l)
[ "$n" -eq 3 ] || fail "cmake --install put $n files, expected 3: $(cd "$T/dest" && find . -type f)"
pass "cmake --install: bin/gitwal, share/man/man1/gitwal.1, lib/systemd/system/gitwal-archive.service"
