#!/usr/bin/env bash
# Point-in-time restore, safety: damaged and missing segments are detected and
# named, and leave nothing half-made; times before the damage still restore;
# --dry-run changes nothing; bad --until values (and audit --since values) and
# option conflicts are usage errors, one line naming the input; a non-empty target is refused without --force and replaced with it.
source "$(dirname "$0")/lib.sh"

ra() { git --git-dir="$T/root/a.git" "$@"; }
declare -a TS STATE
step() { archive_once; STATE[$1]=$(repo_state "$T/root/a.git"); TS[$1]=$(pitr_rfc "$(pitr_now_us)"); }

# LSN 1: full; 2, 3, 4: pushes (segments with objects); 5: a branch (no objects); 6: a push.
make_repo a.git 2; step 1
push_commit a.git; step 2
push_commit a.git; step 3
push_commit a.git; step 4
ra branch side main~1; step 5
push_commit a.git; step 6
seg() { printf '%s/store/repos/a.git/%020d.seg' "$GITWAL_STATE_DIR" "$1"; }
for l in 2 3 4 5 6; do [ -f "$(seg $l)" ] || fail "segment LSN $l is not in the store"; done

# restore_at N DEST: restore a.git at TS[N] into DEST and compare with STATE[N].
restore_at() {
  restore_ok "$2" --repo a.git --until "${TS[$1]}" >/dev/null
  diff <(echo "${STATE[$1]}") <(repo_state "$2/a.git") >&2 || fail "restore at step $1 differs from the truth"
  git -C "$2/a.git" fsck --full --no-progress >/dev/null 2>&1 || fail "fsck of the restore at step $1"
  assert_single_pack "$2/a.git"
}
# nothing_made DIR: a failed restore left no repository and no temporary directory in DIR.
nothing_made() {
  [ ! -e "$1/a.git" ] || fail "a failed restore left $1/a.git"
  if [ -d "$1" ] && [ -n "$(ls -A "$1")" ]; then fail "a failed restore left $(ls -A "$1") in $1"; fi
  return 0
}
# restore_refused WHAT PATTERN DIR N: a restore of a.git into DIR at TS[N] fails naming PATTERN and makes nothing.
restore_refused() {
  assert_fails "$1" "$2" gitwal restore --to "$3" --repo a.git --until "${TS[$4]}"
  nothing_made "$3"
}
for n in 1 3 6; do restore_at $n "$T/ok$n"; done
pass "restores before any damage"

# ---- --dry-run: the plan, nothing made ----
out=$(gitwal restore --to "$T/dry" --repo a.git --until "${TS[4]}" --dry-run 2>"$T/dry.err") || fail "dry-run: $(cat "$T/dry.err")"
[[ $out =~ ^plan\ a\.git:\ full\ backup\ LSN\ 1\ \([^\)]+\),\ then\ 3\ segments\ to\ LSN\ 4\ \([^\)]+\)\;\ [1-9][0-9]*\ bytes\ to\ read ]] ||
  fail "dry-run output: $out"
[ "$(grep -c '^plan ' <<<"$out")" -eq 1 ] || fail "dry-run printed more than one plan line: $out"
# The refs at the end, from the index alone: exactly the truth at that time.
plan_refs=$(sed -n 's/^  //p' <<<"$out" | awk '$1 == "ref:" && $3 == "HEAD" { print "HEAD " $2; next } { print }' | sort)
diff <(sort <<<"${STATE[4]}") <(echo "$plan_refs") >&2 || fail "dry-run refs differ from the truth at step 4"
[ ! -e "$T/dry" ] || fail "--dry-run created $T/dry"
out=$(gitwal restore --to "$T/dry" --until "${TS[5]}" --dry-run --json 2>"$T/dry.err") || fail "dry-run --json: $(cat "$T/dry.err")"
python3 - "$out" "${STATE[5]}" <<'PY' || fail "dry-run --json output: $out"
import json, sys
lines = sys.argv[1].strip().split("\n")
assert len(lines) == 1, lines
o = json.loads(lines[0])
assert set(o) == {"repository", "full", "lsn", "time", "segments", "refs_count", "refs", "bytes", "gaps"}, o
assert o["repository"] == "a.git" and o["lsn"] == 5 and o["segments"] == 4 and o["refs_count"] == 2, o
assert o["full"]["lsn"] == 1 and o["full"]["time"].endswith("Z"), o
assert o["bytes"] > 0 and o["time"].endswith("Z"), o
truth = {}
for line in sys.argv[2].split("\n"):
    a, b = line.split(" ", 1)
    if a == "HEAD":
        truth["HEAD"] = "ref: " + b if b.startswith("refs/") else b
    else:
        truth[b] = a
assert o["refs"] == truth, (o["refs"], truth)
PY
[ ! -e "$T/dry" ] || fail "--dry-run --json created $T/dry"
pass "--dry-run and --dry-run --json print the plan and create nothing"

# ---- usage errors: exit 2, naming the option ----
usage_error() { # usage_error WHAT PATTERN ARGS...
  local what=$1 pattern=$2 rc=0 err; shift 2
  err=$(gitwal restore --to "$T/usage" "$@" 2>&1 >/dev/null) || rc=$?
  [ $rc -eq 2 ] || fail "$what: exit $rc, expected 2: $err"
  grep -Eq -- "$pattern" <<<"$err" || fail "$what: message does not match '$pattern': $err"
  [ ! -e "$T/usage" ] || fail "$what: created $T/usage"
}
usage_error "--until garbage" "--until" --until garbage
usage_error "--until month 13" "--until" --until 2026-13-01T00:00:00Z
usage_error "--until day 32" "--until" --until 2026-01-32T00:00:00Z
usage_error "--until without a zone" "--until" --until 2026-11-25T14:02:00
usage_error "--until empty" "--until" --until ""
usage_error "--until @ without digits" "--until" --until @
usage_error "--until with --lsn" "--until|--lsn" --repo a.git --lsn 1 --until "${TS[2]}"
pass "bad --until values and --until with --lsn exit 2"

# Strict times (restore --until, audit --since): exactly one line naming the input and what is wrong, exit 2.
time_error() { # time_error CMD OPTION INPUT REASON
  local rc=0 err
  if [ "$1" = restore ]; then err=$(gitwal restore --to "$T/usage" --repo a.git --until "$3" 2>&1 >/dev/null) || rc=$?
  else err=$(gitwal audit --since "$3" 2>&1 >/dev/null) || rc=$?; fi
  [ $rc -eq 2 ] || fail "$1 $2 $3: exit $rc, expected 2: $err"
  [ "$(wc -l <<<"$err")" -eq 1 ] || fail "$1 $2 $3: not one line: $err"
  grep -qF -- "gitwal $1: option $2: time '$3'" <<<"$err" || fail "$1 $2 $3: the input is not named: $err"
  grep -qF -- "$4" <<<"$err" || fail "$1 $2 $3: no '$4' in: $err"
  [ ! -e "$T/usage" ] || fail "$1 $2 $3: created $T/usage"
}
time_error restore --until 2026-02-31T00:00:00Z "day 31 is not a day of February 2026"
time_error restore --until 2026-02-29T00:00:00Z "day 29 is not a day of February 2026"
time_error restore --until @99999999999999999999 "out of range"
time_error restore --until 2026-01-01T24:00:00Z "hour 24 is not 00 to 23"
time_error restore --until 2026-01-01T00:00:00+14:30 "offset +14:30 is not between -12:00 and +14:00"
time_error restore --until 2026-06-29T23:59:60Z "leap second"
time_error restore --until "@-5 " "unexpected ' ' after the seconds"
time_error restore --until "" "is empty"
time_error audit --since 2026-02-31T00:00:00Z "day 31 is not a day of February 2026"
time_error audit --since @99999999999999999999 "out of range"
# The edges that are valid are times like any other: before the first backup, an error for the repository (exit 1).
for t in 2024-02-29T00:00:00Z 2024-02-29T10:00:00+14:00 2024-02-28T12:00:00-12:00 2016-12-31T23:59:60Z @-1.5; do
  rc=0; err=$(gitwal restore --to "$T/edge" --repo a.git --until "$t" 2>&1 >/dev/null) || rc=$?
  [ $rc -eq 1 ] && grep -q "before its first full backup" <<<"$err" || fail "restore --until $t: exit $rc: $err"
done
pass "bad times are refused in one line naming them (exit 2); leap days, extreme offsets and leap seconds are times"

# ---- a target that exists and is not empty ----
mkdir -p "$T/busy/a.git"; echo keep > "$T/busy/a.git/mine"
assert_fails "restore --until into a non-empty target" "not empty|--force" \
  gitwal restore --to "$T/busy" --repo a.git --until "${TS[3]}"
[ "$(cat "$T/busy/a.git/mine")" = keep ] && [ "$(ls -A "$T/busy/a.git")" = mine ] || fail "the refused target was touched"
restore_ok "$T/busy" --repo a.git --until "${TS[3]}" --force >/dev/null
[ ! -e "$T/busy/a.git/mine" ] || fail "--force did not replace the target"
diff <(echo "${STATE[3]}") <(repo_state "$T/busy/a.git") >&2 || fail "--force restore differs from the truth"
git -C "$T/busy/a.git" fsck --full --no-progress >/dev/null 2>&1 || fail "fsck after --force"
pass "a non-empty target is refused without --force and replaced with it"

# ---- a damaged segment (a byte flipped in its pack) ----
f=$(seg 4)
size=$(stat -c %s "$f")
pitr_flip "$f" $((size - 200))   # in the pack or its index, well before the 48-byte trailer
restore_refused "restore after a damaged segment" "0*4\.seg|LSN 4" "$T/bad4" 4
restore_refused "restore after a damaged segment (later time)" "0*4\.seg|LSN 4" "$T/bad6" 6
restore_at 3 "$T/before4"
restore_at 1 "$T/before4b"
pitr_flip "$f" $((size - 200))   # undo
restore_at 4 "$T/fixed4"
pass "a damaged segment is named, leaves nothing, and earlier times still restore"

# ---- a damaged full backup under segments (its pack streams in beside them) ----
full=$GITWAL_STATE_DIR/store/repos/a.git/$(printf '%020d' 1).full
for part in bundle idx; do
  size=$(stat -c %s "$full.$part")
  pitr_flip "$full.$part" $((size / 2))
  restore_refused "restore after a damaged full backup $part" "full\.$part.*(SHA-256|corrupt)|(SHA-256|corrupt).*full\.$part" "$T/badfull-$part" 6
  pitr_flip "$full.$part" $((size / 2))   # undo
done
restore_at 6 "$T/fullfixed"
pass "a damaged full backup is named (key), leaves nothing, and restores once mended"

# ---- a segment missing in the middle of the chain ----
mv "$(seg 3)" "$T/seg3.aside"
# With the index still listing it: the restore must fail naming it.
restore_refused "restore after a missing segment (indexed)" "0*3\.seg|LSN 3" "$T/gap-a" 4
# With an index rebuilt from the store alone: a gap, named by its LSN.
rm -f "$GITWAL_STATE_DIR/index.db"
restore_refused "restore after a missing segment (gap)" "LSN 3.*(missing|gap)|(missing|gap).*LSN 3" "$T/gap-b" 4
restore_refused "restore after a missing segment (gap, latest)" "LSN 3" "$T/gap-c" 6
# Before the segment that precedes the gap, nothing is in doubt.
restore_at 1 "$T/gap-ok1"
# Every repository at once: the failure is reported and the exit status is 1.
rc=0; out=$(gitwal restore --to "$T/gap-all" --until "${TS[6]}" 2>"$T/gap-all.err") || rc=$?
[ $rc -eq 1 ] || fail "restore of every repository with a gap: exit $rc, expected 1: $out $(cat "$T/gap-all.err")"
grep -q "LSN 3" <<<"$out$(cat "$T/gap-all.err")" || fail "restore of every repository with a gap does not name LSN 3: $out"
nothing_made "$T/gap-all"
mv "$T/seg3.aside" "$(seg 3)"
restore_at 6 "$T/gap-fixed"
pass "a missing segment is named (LSN, gap), leaves nothing, and earlier times still restore"
