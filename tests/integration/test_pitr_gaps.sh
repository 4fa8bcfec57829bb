#!/usr/bin/env bash
# Archiver gaps in point-in-time restore. While the archiver is not running,
# changes happen that it never sees; the next segment records the window it
# could not observe. Restore must say so: at a time inside the window it
# restores the last state archived before it and prints a note naming the
# window; after the window the note says which states were unknown; the
# dry-run JSON lists the gap with covers_until set accordingly.
source "$(dirname "$0")/lib.sh"

make_repo a.git 2
archive_once
BEFORE=$(repo_state "$T/root/a.git")
push_commit a.git
INSIDE=$(pitr_rfc "$(pitr_now_us)")   # a state the archiver never saw
push_commit a.git
archive_once                          # the gap segment
AFTER_STATE=$(repo_state "$T/root/a.git")
AFTER=$(pitr_rfc "$(pitr_now_us)")

# Inside the window: the last state archived before it, and a note naming the window.
out=$(restore_ok "$T/r1" --repo a.git --until "$INSIDE")
diff <(echo "$BEFORE") <(repo_state "$T/r1/a.git") >&2 || fail "restore inside the gap is not the last state archived before it"
grep -q "^note a.git: the time asked for lies between [0-9T:.Z-]* and [0-9T:.Z-]*, when the archiver did not observe" <<<"$out" ||
  fail "restore inside the gap printed no note naming the window: $out"
pass "a time inside an archiver gap restores the last archived state and names the window"

# After the window: the state after it, and the window reported as unknown states.
out=$(restore_ok "$T/r2" --repo a.git --until "$AFTER")
diff <(echo "$AFTER_STATE") <(repo_state "$T/r2/a.git") >&2 || fail "restore after the gap differs from the truth"
grep -q "^note a.git: states between .* are unknown" <<<"$out" || fail "restore across a gap did not report it: $out"
pass "a restore across an archiver gap reports the window"

# The dry-run JSON: one gap, covering the time asked for or not.
for t in "$INSIDE:true" "$AFTER:false"; do
  out=$(gitwal restore --to "$T/dry" --repo a.git --until "${t%:*}" --dry-run --json 2>"$T/dry.err") ||
    fail "dry-run --json: $(cat "$T/dry.err")"
  python3 - "$out" "${t##*:}" <<'PY' || fail "dry-run --json gaps at ${t%:*}: $out"
import json, sys
o = json.loads(sys.argv[1])
gaps = o["gaps"]
assert len(gaps) == 1, gaps
g = gaps[0]
assert g["covers_until"] == (sys.argv[2] == "true"), g
assert g["unknown_from"] < g["unknown_to"] and g["lsn"] >= 2, g
PY
done
[ ! -e "$T/dry" ] || fail "--dry-run created $T/dry"
pass "--dry-run --json lists the gap and whether it covers the time asked for"
