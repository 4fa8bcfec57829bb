#!/usr/bin/env bash
# Rewrite the option sections of the man page from the commands' option tables (src/cli/cmd_*.c,
# the common ones in src/cli/common.c), so the page and --help never drift:
#   scripts/man.sh [GITWAL_BIN [OUT]]   (default build/release/gitwal, doc/gitwal.1 in place)
# Between the lines
#   .\" BEGIN gitwal help --man-options CMD
#   .\" END gitwal help --man-options CMD
# goes what that command prints; the rest of the page is left as it is. tests/integration/test_man.sh
# fails when the page in the tree differs from what this writes.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-build/release/gitwal}
out=${2:-doc/gitwal.1}
page=doc/gitwal.1
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
begin='^\.\\" BEGIN gitwal help --man-options '
end='^\.\\" END gitwal help --man-options '
skipping=
while IFS= read -r line; do
  if [[ $line =~ $begin([a-z]+)$ ]]; then
    printf '%s\n' "$line"
    "$bin" help --man-options "${BASH_REMATCH[1]}"
    skipping=1
  elif [[ $line =~ $end ]]; then
    printf '%s\n' "$line"
    skipping=
  elif [ -z "$skipping" ]; then
    printf '%s\n' "$line"
  fi
done < "$page" > "$tmp"
[ -z "$skipping" ] || { echo "scripts/man.sh: $page: a BEGIN line without its END" >&2; exit 1; }
cp "$tmp" "$out"
