#!/usr/bin/env bash
# Progress of backup, restore and audit on stderr: on a terminal it is shown
# (repositories or records done of all, bytes, rate, time left), redrawn at
# most ten times a second and erased at the end, so the terminal shows the
# output alone; nothing without a terminal or with --quiet (stdout
# unchanged); --progress forces it as plain lines, at most one a second; the
# last of --progress and --quiet wins; --help documents both. The terminal
# is a pseudo-terminal (pty_run.py), and what it shows is checked as it
# would be rendered.
source "$(dirname "$0")/lib.sh"

PTY=$GITWAL_SOURCE_DIR/tests/integration/pty_run.py
N=12

# pty NAME ARGS... -- CMD...: run CMD under a terminal, its description (JSON) in $T/NAME.json.
pty() {
  local name=$1; shift
  python3 "$PTY" "$@" >"$T/$name.json" || fail "pty_run.py $name"
}

# check NAME CMD shown|none RC: what the terminal saw of gitwal CMD (see pty_run.py).
check() {
  python3 - "$T/$1.json" "$2" "$3" "$4" <<'PY' || fail "$1: the terminal's view is wrong (above)"
import json, re, sys
d = json.load(open(sys.argv[1]))
cmd, expect, rc = sys.argv[2], sys.argv[3], int(sys.argv[4])
line = re.compile(r"^gitwal %s: (?:(\d+)/(\d+) [a-z ]+|starting|listing the store), [0-9.]+ [kMGTP]?B, "
                  r"[0-9.]+ [kMGTP]?B/s(, (?:\d+s|\d+m\d\ds|\d+h\d\dm) left)?$" % cmd)
def bad(msg):
    sys.exit("%s (rc %d, %.2f s, %d draws)\n%r" % (msg, d["rc"], d["elapsed"], len(d["draws"]), d["raw"][-3000:]))
if d["rc"] != rc:
    bad("exit %d, expected %d" % (d["rc"], rc))
draws = d["draws"]
if expect == "shown":
    if not draws:
        bad("no progress shown on a terminal")
    for t in draws:
        m = line.match(t)
        if not m:
            bad("not a progress line: %r" % t)
        # Between the first unit done and the last, the time left is known.
        if m.group(1) and 0 < int(m.group(1)) < int(m.group(2)) and not m.group(3):
            bad("no time left in %r" % t)
    # At most ten redraws a second: the first at once, then one a tick (100 ms) at most.
    if len(draws) > 2 + d["elapsed"] * 10:
        bad("%d redraws in %.2f s: more than ten a second" % (len(draws), d["elapsed"]))
    if d["elapsed"] > 1.0 and len(draws) < 2:
        bad("not redrawn in %.2f s" % d["elapsed"])
else:
    if draws or "\r" in d["raw"].replace("\r\n", "\n"):
        bad("progress shown")
# Erased before every line of output and at the end: the terminal shows the output alone.
if d["tail"]:
    bad("left on the terminal at the end: %r" % d["tail"])
for l in d["rendered"]:
    if line.match(l) or re.match(r"^gitwal %s: \d+/\d+ " % cmd, l):
        bad("progress left in the output: %r" % l)
print("%s: %d draws in %.2f s" % (sys.argv[1].rsplit("/", 1)[-1], len(draws), d["elapsed"]))
PY
}
# json NAME EXPR: a value of $T/NAME.json (d is the document).
json() { python3 -c 'import json, re, sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$T/$1.json" "$2"; }

# Repositories of 2 MB each, enough for several redraws of a run over all of them.
make_repo r1.git 1
head -c 2000000 /dev/urandom >"$T/work/r1.git/blob"
git -C "$T/work/r1.git" add blob && git -C "$T/work/r1.git" commit -qm blob && git -C "$T/work/r1.git" push -q origin main
for i in $(seq 2 $N); do cp -r "$T/root/r1.git" "$T/root/r$i.git"; done

# ---- --help documents both options ----
for cmd in backup restore audit; do
  gitwal $cmd --help >"$T/help" || fail "$cmd --help"
  grep -q -- '--progress' "$T/help" && grep -q -- '--quiet' "$T/help" || fail "$cmd --help does not document --progress and --quiet"
  grep -q -- 'at most ten times a second' "$T/help" || fail "$cmd --help does not say how often progress is redrawn"
done
pass "backup, restore and audit --help document --progress and --quiet"

# ---- backup ----
pty backup -- "$GITWAL_BIN" backup --all --jobs 1
check backup backup shown 0
[ "$(json backup 'sum(1 for l in d["stdout"].splitlines() if l.startswith("ok r"))')" -eq $N ] ||
  fail "backup on a terminal: stdout is not the $N ok lines: $(json backup 'd["stdout"]')"
[ "$(json backup 'd["rendered"]')" = "['gitwal backup: $N repositories, 0 failed, store file://$GITWAL_STATE_DIR/store']" ] ||
  fail "backup on a terminal shows more than its summary on stderr: $(json backup 'd["rendered"]')"
python3 -c 'import json, re, sys; d = json.load(open(sys.argv[1]))
assert any(re.match(r"^gitwal backup: [0-9]+/%s repositories, [0-9.]+ [kMG]?B, " % sys.argv[2], t) for t in d["draws"]), d["draws"]' \
  "$T/backup.json" $N || fail "backup: no draw counting repositories and bytes"
pass "backup on a terminal: progress redrawn at most ten times a second, erased, stdout unchanged"

# A failure's lines, on stdout and stderr, start on a clean line too.
mkdir -p "$T/root2" && cp -r "$T/root/r1.git" "$T/root2/" && git init -q --bare "$T/root2/bad.git"
git -C "$T/root2/bad.git" config core.repositoryformatversion 1
git -C "$T/root2/bad.git" config extensions.frobnicate true
pty failing --stdout-tty -- "$GITWAL_BIN" backup --root "$T/root2" --all --jobs 1
check failing backup shown 1
python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); r = d["rendered"]
assert len(r) == 4 and r[0].startswith("failed bad.git: ") and r[1].startswith("gitwal backup: ") and "bad.git" in r[1] \
  and r[2].startswith("ok r1.git lsn=") and r[3].startswith("gitwal backup: 2 repositories, 1 failed"), r' \
  "$T/failing.json" || fail "backup with a failure on a terminal: $(json failing 'd["rendered"]')"

# Without a terminal: nothing but the summary on stderr.
gitwal backup r1.git r2.git >"$T/plain.out" 2>"$T/plain.err" || fail "backup without a terminal: $(cat "$T/plain.err")"
[ "$(cat "$T/plain.err")" = "gitwal backup: 2 repositories, 0 failed, store file://$GITWAL_STATE_DIR/store" ] ||
  fail "backup without a terminal wrote more than its summary: $(cat -A "$T/plain.err")"
[ "$(grep -c '^ok r[12].git lsn=' "$T/plain.out")" -eq 2 ] || fail "backup stdout: $(cat "$T/plain.out")"
# --quiet on a terminal: nothing either; and the last of --progress and --quiet wins.
pty quiet -- "$GITWAL_BIN" backup --quiet r1.git r2.git
check quiet backup none 0
pty quiet2 -- "$GITWAL_BIN" backup --progress --quiet r1.git r2.git
check quiet2 backup none 0
[ "$(json quiet 'sum(1 for l in d["stdout"].splitlines() if l.startswith("ok r"))')" -eq 2 ] || fail "backup --quiet changed stdout"
pass "backup: no progress without a terminal or with --quiet"

# --progress without a terminal: plain lines, at most one a second (and the last one), then the summary.
t0=$EPOCHREALTIME
gitwal backup --quiet --progress --all --jobs 1 >"$T/forced.out" 2>"$T/forced.err" || fail "backup --progress: $(cat "$T/forced.err")"
t1=$EPOCHREALTIME
python3 - "$T/forced.err" "$t0" "$t1" "$N" <<'PY' || fail "backup --progress without a terminal: $(cat -A "$T/forced.err")"
import re, sys
text = open(sys.argv[1]).read()
assert "\r" not in text, "a carriage return without a terminal"
lines = text.splitlines()
assert lines[-1].startswith("gitwal backup: %s repositories, 0 failed" % sys.argv[4]), lines[-1]
progress = lines[:-1]
elapsed = float(sys.argv[3]) - float(sys.argv[2])
assert len(progress) >= 2, progress  # the first at once, the last at the end
assert len(progress) <= 2 + elapsed, "%d lines in %.2f s" % (len(progress), elapsed)
for l in progress:
    assert re.match(r"^gitwal backup: \d+/%s repositories, [0-9.]+ [kMG]?B, [0-9.]+ [kMG]?B/s(, \S+ left)?$" % sys.argv[4], l), l
assert progress[-1].startswith("gitwal backup: %s/%s repositories, " % (sys.argv[4], sys.argv[4])), progress[-1]
print("%d lines in %.2f s" % (len(progress), elapsed))
PY
pass "backup --progress without a terminal: plain lines, at most one a second"

# ---- restore (stdout on the terminal too: each output line starts on a clean line) ----
pty restore --stdout-tty -- "$GITWAL_BIN" restore --to "$T/rs" --jobs 1
check restore restore shown 0
[ "$(json restore 'sum(1 for l in d["rendered"] if re.match(r"^ok r[0-9]+\.git lsn=", l))')" -eq $N ] ||
  fail "restore on a terminal: the terminal does not show the $N ok lines: $(json restore 'd["rendered"]')"
grep -q "^gitwal restore: $N repositories, 0 failed" <<<"$(json restore 'd["rendered"][-1]')" || fail "restore summary: $(json restore 'd["rendered"]')"
for i in $(seq 1 $N); do assert_same_repo "$T/root/r$i.git" "$T/rs/r$i.git"; done
pass "restore on a terminal: progress redrawn at most ten times a second, each output line clean, erased"

gitwal restore --to "$T/rs2" --repo r1.git >"$T/plain.out" 2>"$T/plain.err" || fail "restore: $(cat "$T/plain.err")"
[ "$(cat "$T/plain.err")" = "gitwal restore: 1 repositories, 0 failed, 0 skipped, 0 damaged keys, into $T/rs2" ] ||
  fail "restore without a terminal wrote more than its summary: $(cat -A "$T/plain.err")"
pty rquiet -- "$GITWAL_BIN" restore --quiet --to "$T/rs3" --repo r1.git
check rquiet restore none 0
gitwal restore --progress --to "$T/rs4" --repo r1.git --repo r2.git >/dev/null 2>"$T/forced.err" || fail "restore --progress"
grep -q $'\r' "$T/forced.err" && fail "restore --progress without a terminal wrote a carriage return"
grep -Eq '^gitwal restore: 2/2 repositories, [0-9.]+ [kMG]?B, ' "$T/forced.err" || fail "restore --progress: $(cat "$T/forced.err")"
pass "restore: nothing without a terminal or with --quiet; --progress forces plain lines"

# ---- audit ----
pty audit -- "$GITWAL_BIN" audit --read-data --deep --jobs 1
check audit audit shown 0
grep -q '^clean: no problems found' <<<"$(json audit 'd["stdout"]')" || fail "audit stdout: $(json audit 'd["stdout"]')"
[ "$(json audit 'd["rendered"]')" = "[]" ] || fail "audit on a terminal left something on stderr: $(json audit 'd["rendered"]')"
gitwal audit >"$T/plain.out" 2>"$T/plain.err" || fail "audit: $(cat "$T/plain.err")"
[ ! -s "$T/plain.err" ] || fail "audit without a terminal wrote to stderr: $(cat -A "$T/plain.err")"
pty aquiet -- "$GITWAL_BIN" audit --quiet
check aquiet audit none 0
gitwal audit --read-data --progress >/dev/null 2>"$T/forced.err" || fail "audit --progress"
grep -q $'\r' "$T/forced.err" && fail "audit --progress without a terminal wrote a carriage return"
grep -Eq "^gitwal audit: [0-9]+/[0-9]+ records, [0-9.]+ [kMG]?B, " "$T/forced.err" || fail "audit --progress: $(cat "$T/forced.err")"
pass "audit: progress on a terminal, none without or with --quiet, plain lines with --progress"
