# gitwal expire: the policy applied to a real archive (full backups and segments written by the real
# archiver and backup), the expire record and what it means for the audit, the index, index rebuild
# and restore; an interrupted expire (resumed); a deleted repository expired whole, and the same path
# created again; usage errors and the config keys.
source "$(dirname "$0")/lib.sh"

make_repo a.git 2
make_repo b.git 1
arch_once >/dev/null                       # LSN 1: full backups
push_commit a.git; arch_once >/dev/null    # a: LSN 2
push_commit a.git; arch_once >/dev/null    # a: LSN 3
gitwal backup a.git b.git >/dev/null       # LSN 4 (a), 2 (b)
push_commit a.git; arch_once >/dev/null    # a: LSN 5
t_old=$(pitr_now_us)
repo_state "$T/root/a.git" > "$T/a.old"
gitwal backup a.git >/dev/null             # a: LSN 6
t_start=$(pitr_now_us)                     # the window starts here: after LSN 6, before LSN 7
push_commit a.git; arch_once >/dev/null    # a: LSN 7
t_in=$(pitr_now_us)
repo_state "$T/root/a.git" > "$T/a.in"
# Every expire below sees this same "now", so the window does not slide however slow the machine:
# it starts within a millisecond after t_start (whole milliseconds), before LSN 7 was stamped.
now=$(pitr_now_us)
export GITWAL_TEST_EXPIRE_NOW=$(pitr_at "$now")
window=$(( (now - t_start) / 1000 ))ms

# ---- usage errors (exit 2), and the config keys ----
rc=0; gitwal expire 2>"$T/err" || rc=$?
[ $rc -eq 2 ] && grep -q "no window: give --keep-within" "$T/err" || fail "no window: exit $rc: $(cat "$T/err")"
rc=0; gitwal expire --keep-within 7 2>"$T/err" || rc=$?
[ $rc -eq 2 ] && grep -q "'7' is not a duration" "$T/err" || fail "bad duration: exit $rc: $(cat "$T/err")"
rc=0; gitwal expire --keep-within 1d --json 2>"$T/err" || rc=$?
[ $rc -eq 2 ] && grep -q -- "--json goes with --dry-run" "$T/err" || fail "--json alone: exit $rc: $(cat "$T/err")"
rc=0; gitwal expire --keep-within 1d --keep-full -1 2>"$T/err" || rc=$?
[ $rc -eq 2 ] && grep -q -- "--keep-full" "$T/err" || fail "--keep-full -1: exit $rc: $(cat "$T/err")"
rc=0; gitwal expire --keep-within 1d --repo ../x 2>"$T/err" || rc=$?
[ $rc -eq 2 ] || fail "--repo ../x: exit $rc: $(cat "$T/err")"
mkdir -p "$XDG_CONFIG_HOME/gitwal"
printf '[gitwal]\n\tkeepWithin = 3x\n' > "$XDG_CONFIG_HOME/gitwal/config"
rc=0; gitwal expire --dry-run 2>"$T/err" || rc=$?
[ $rc -eq 2 ] && grep -q "gitwal.keepWithin.*'3x' is not a duration" "$T/err" || fail "bad gitwal.keepWithin: exit $rc: $(cat "$T/err")"
printf '[gitwal]\n\tkeepWithin = 100d\n\tkeepFull = 2\n' > "$XDG_CONFIG_HOME/gitwal/config"
gitwal expire --dry-run --json > "$T/plan.json" 2>"$T/err" || fail "dry run from the config: $(cat "$T/err")"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["keep_within"]=="100d" and d["keep_full"]==2 and d["repositories"]==[], d' "$T/plan.json" ||
  fail "the config's policy: $(cat "$T/plan.json")"
# --keep-full 0 on the command line is given, not unset: it wins over gitwal.keepFull.
gitwal expire --dry-run --json --keep-full 0 > "$T/plan.json" 2>"$T/err" || fail "dry run with --keep-full 0: $(cat "$T/err")"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["keep_full"]==0, d' "$T/plan.json" ||
  fail "--keep-full 0 was overridden by gitwal.keepFull: $(cat "$T/plan.json")"
rm "$XDG_CONFIG_HOME/gitwal/config"
pass "usage errors name the option; gitwal.keepWithin and gitwal.keepFull are read; --keep-full 0 wins over them"

# ---- the plan (dry run): nothing written ----
store_snapshot > "$T/snap"
gitwal expire --keep-within "$window" --dry-run --json > "$T/plan.json" 2>"$T/err" || fail "dry run: $(cat "$T/err")"
python3 - "$T/plan.json" <<'PY' || fail "dry-run plan: $(cat "$T/plan.json")"
import json, sys
d = json.load(open(sys.argv[1]))
r = {x["repository"]: x for x in d["repositories"]}
assert set(r) == {"a.git", "b.git"}, r
assert (r["a.git"]["lsn_from"], r["a.git"]["lsn_to"], r["a.git"]["kept_lsn"]) == (1, 5, 6), r
assert (r["b.git"]["lsn_from"], r["b.git"]["lsn_to"], r["b.git"]["kept_lsn"]) == (1, 1, 2), r
assert r["a.git"]["action"] == "prefix" and r["a.git"]["restorable_from"]
PY
store_snapshot | diff "$T/snap" - >&2 || fail "a dry run wrote to the store"
gitwal expire --keep-within "$window" --keep-full 2 --dry-run > "$T/plan.txt" 2>&1 || fail "dry run keep-full"
grep -q "would expire a.git lsn=1..3 kept_lsn=4" "$T/plan.txt" || fail "keep-full 2: $(cat "$T/plan.txt")"
grep -q "b.git" "$T/plan.txt" && fail "keep-full 2 keeps all of b.git: $(cat "$T/plan.txt")"
pass "dry run: the plan (text and JSON, keep-full), nothing written"

# ---- an interrupted expire: killed after 2 keys ----
rc=0; GITWAL_TEST_EXPIRE_KILL=2 gitwal expire --keep-within "$window" --repo a.git >/dev/null 2>&1 || rc=$?
[ $rc -eq 137 ] || fail "the kill point did not fire (exit $rc)"
[ -e "$GITWAL_STATE_DIR/store/repos/a.git/00000000000000000005.expire" ] || fail "no expire record: $(arch_keys a.git)"
rc=0; gitwal audit > "$T/audit.txt" 2>&1 || rc=$?
[ $rc -eq 0 ] || fail "audit of an interrupted expire: exit $rc: $(cat "$T/audit.txt")"
grep -q "kind=expire-resume" "$T/audit.txt" || fail "no expire to resume reported: $(cat "$T/audit.txt")"
grep -Eq "^problem" "$T/audit.txt" && fail "an interrupted expire looks like damage: $(cat "$T/audit.txt")"
gitwal restore --until "$(pitr_at "$t_in")" --repo a.git --to "$T/r0" >/dev/null 2>&1 || fail "restore in the window after the kill"
assert_state_is "$T/a.in" "$T/r0/a.git"
pass "killed after 2 keys: the window restores, audit says: an expire to resume"

# ---- the expire itself (it finishes a.git's record first) ----
gitwal expire --keep-within "$window" > "$T/out" 2>"$T/err" || fail "expire: $(cat "$T/err")"
grep -q "expired a.git lsn=1..5 kept_lsn=6 .*resumed" "$T/out" || fail "a.git not resumed: $(cat "$T/out")"
grep -q "expired b.git lsn=1..1 kept_lsn=2 .*record=repos/b.git/00000000000000000001.expire" "$T/out" || fail "b.git: $(cat "$T/out")"
[ "$(arch_keys a.git | tr '\n' ' ')" = "00000000000000000005.expire 00000000000000000006.full.bundle 00000000000000000006.full.idx 00000000000000000006.full.manifest 00000000000000000006.seg 00000000000000000007.seg " ] ||
  fail "a.git keys after expire: $(arch_keys a.git)"
gitwal audit --json > "$T/audit.json" || fail "audit after expire: $(cat "$T/audit.json")"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["clean"] and not d["warnings"] and d["checked"]["expire_records"]==2, d' "$T/audit.json" ||
  fail "audit: $(cat "$T/audit.json")"
pass "expire removes what only serves earlier times; the audit is clean, naming 2 expire records"

# ---- restore: in the window exactly, before it a one-line error naming the policy ----
gitwal restore --until "$(pitr_at "$t_in")" --repo a.git --to "$T/r1" >/dev/null 2>&1 || fail "restore in the window"
assert_state_is "$T/a.in" "$T/r1/a.git"
rc=0; gitwal restore --until "$(pitr_at "$t_old")" --repo a.git --to "$T/r2" >/dev/null 2>"$T/err" || rc=$?
[ $rc -eq 1 ] || fail "restore of an expired time: exit $rc"
grep -q "repository a.git: its state at .* was expired by policy keep-within=$window keep-full=0, expired .* (record repos/a.git/00000000000000000005.expire): the archive restores it from" "$T/err" ||
  fail "expired time: $(cat "$T/err")"
rc=0; gitwal restore --lsn 4 --repo a.git --to "$T/r3" >/dev/null 2>"$T/err" || rc=$?
[ $rc -eq 1 ] && grep -q "LSN 4 was expired by policy" "$T/err" || fail "restore --lsn 4: exit $rc: $(cat "$T/err")"
pass "restore: the window exact; an expired time or LSN names the policy and the date"

# ---- a fresh machine: index rebuild reads the records ----
rm -f "$GITWAL_STATE_DIR/index.db"*
gitwal index rebuild >/dev/null || fail "index rebuild"
rc=0; gitwal restore --until "$(pitr_at "$t_old")" --repo a.git --to "$T/r4" >/dev/null 2>"$T/err" || rc=$?
[ $rc -eq 1 ] && grep -q "was expired by policy" "$T/err" || fail "after rebuild: exit $rc: $(cat "$T/err")"
gitwal restore --until "$(pitr_at "$t_in")" --repo a.git --to "$T/r5" >/dev/null 2>&1 || fail "restore in the window after rebuild"
assert_state_is "$T/a.in" "$T/r5/a.git"
gitwal audit >/dev/null || fail "audit after rebuild"
# Nothing to do now; a record the rebuilt index does not know as done costs one listing, no removal.
gitwal expire --keep-within "$window" > "$T/out" 2>"$T/err" || fail "second expire: $(cat "$T/err")"
grep -q "keys=[1-9]" "$T/out" && fail "a second expire removed keys: $(cat "$T/out")"
pass "index rebuild on a fresh machine reads the expire records"

# ---- a key missing without a record is still damage ----
seg7=$GITWAL_STATE_DIR/store/repos/a.git/00000000000000000007.seg
mv "$seg7" "$T/seg7"
rc=0; gitwal audit > "$T/audit.txt" 2>&1 || rc=$?
[ $rc -eq 1 ] && grep -q "kind=missing" "$T/audit.txt" || fail "a lost segment: exit $rc: $(cat "$T/audit.txt")"
mv "$T/seg7" "$seg7"
pass "a key missing without an expire record is damage (exit 1)"

# ---- a deleted repository: kept for the window after its deletion, then whole ----
rm -rf "$T/root/b.git"
arch_once >/dev/null                                   # b: LSN 3 deletes it
t_del=$(pitr_now_us)
unset GITWAL_TEST_EXPIRE_NOW                           # from here on, the clock
rc=0; gitwal restore --until "$(pitr_at "$t_in")" --repo b.git --to "$T/rb0" >/dev/null 2>&1 || rc=$?
[ $rc -eq 0 ] || fail "b.git before its deletion"
gitwal expire --keep-within 100d --repo b.git > "$T/out" 2>&1 || fail "expire b: $(cat "$T/out")"
grep -q "expired b.git" "$T/out" && fail "b.git expired inside the window: $(cat "$T/out")"
# A window that starts after the deletion (the expire above took more than a millisecond of it).
now=$(pitr_now_us)
GITWAL_TEST_EXPIRE_NOW=$(pitr_at "$now") gitwal expire --keep-within "$(( (now - t_del) / 1000 ))ms" --repo b.git > "$T/out" 2>&1 ||
  fail "expire b whole: $(cat "$T/out")"
grep -q "expired b.git whole: deleted .* lsn=2..3" "$T/out" || fail "b.git not whole: $(cat "$T/out")"
[ "$(arch_keys b.git | tr '\n' ' ')" = "00000000000000000001.expire 00000000000000000003.expire " ] || fail "b.git keys: $(arch_keys b.git)"
gitwal restore --to "$T/rb1" > "$T/out" 2>&1 || fail "restore all after b's whole expiry: $(cat "$T/out")"
grep -q "b.git" "$T/out" || fail "b.git not listed as skipped: $(cat "$T/out")"
[ ! -e "$T/rb1/b.git" ] || fail "b.git restored after its deletion"
rc=0; gitwal restore --until "$(pitr_at "$t_in")" --repo b.git --to "$T/rb2" >/dev/null 2>"$T/err" || rc=$?
[ $rc -eq 1 ] && grep -q "was deleted at .* and its archive removed whole" "$T/err" || fail "b.git before deletion: exit $rc: $(cat "$T/err")"
# The same path again: a new history, at an LSN after the records (never reused).
rm -rf "$T/work/b.git"
make_repo b.git 1
arch_once > "$T/once.log"
grep -q "event=full repo=b.git lsn=4 " "$T/once.log" || fail "b.git created again: $(cat "$T/once.log")"
gitwal restore --repo b.git --to "$T/rb3" >/dev/null 2>&1 || fail "restore b.git created again"
assert_state_is <(repo_state "$T/root/b.git") "$T/rb3/b.git"
pass "a deleted repository: kept for the window after its deletion, then whole; its path starts again after it"
