# The retention guarantee, and crash safety. A real history (pushes of every kind: commits,
# force-push, branch and tag creation and deletion, HEAD retargeted, full backups between them, a
# repository deleted) over real time, each moment's live state recorded; then:
#  - expire with a window over the later moments: every recorded moment in the window restores
#    exactly (refs, HEAD, fsck), moments before it fail in one line naming the policy;
#  - 22 runs of expire killed (SIGKILL, GITWAL_TEST_EXPIRE_KILL) at chosen points (right after its
#    record, after N keys removed for N across the range) on fresh copies of the archive: after each
#    kill the audit is clean or reports an expire to resume (exit 0), every moment of the window
#    restores exactly, and the next expire finishes (the audit then clean without warnings).
source "$(dirname "$0")/lib.sh"

make_repo a.git 3
make_repo g/b.git 2
make_repo c.git 1
n=0
moment() { # record the live state of every repository now
  n=$((n + 1))
  for r in a.git g/b.git c.git; do live_state "$T/root/$r" > "$T/m$n.$(enc_rel "$r")"; done
  pitr_now_us > "$T/m$n.t"
}
wa=$T/work/a.git wb=$T/work/g/b.git
arch_once >/dev/null; moment
push_commit a.git; push_commit g/b.git feature; arch_once >/dev/null; moment
git -C "$wa" tag v1 HEAD~1; git -C "$wa" push -q origin v1 2>/dev/null; arch_once >/dev/null; moment
gitwal backup a.git g/b.git >/dev/null 2>&1
git -C "$wa" reset -q --hard HEAD~1; echo f > "$wa/f"; git -C "$wa" add f; git -C "$wa" commit -qm forced
git -C "$wa" push -q -f origin main 2>/dev/null; arch_once >/dev/null; moment
git -C "$wb" push -q origin :feature 2>/dev/null; push_commit c.git; arch_once >/dev/null; moment
old=$n
t_cut=$(pitr_now_us)   # the window starts here: after moment $old, before the next backup
gitwal backup a.git g/b.git c.git >/dev/null 2>&1; moment
first_in=$n
push_commit a.git topic; git -C "$T/root/a.git" symbolic-ref HEAD refs/heads/topic; arch_once >/dev/null; moment
git -C "$wa" push -q origin :v1 2>/dev/null; push_commit g/b.git; arch_once >/dev/null; moment
rm -rf "$T/root/c.git"; arch_once >/dev/null; moment
push_commit a.git main; push_commit g/b.git main; arch_once >/dev/null; moment
last=$n
# The expire runs all see the same "now" (GITWAL_TEST_EXPIRE_NOW), so the window stays where it is
# while the test checks it, however long that takes on a loaded machine. In whole milliseconds it
# starts less than one after t_cut, long before the backup that follows was stamped.
now=$(pitr_now_us)
window=$(( (now - t_cut) / 1000 ))ms
export GITWAL_TEST_EXPIRE_NOW=$(pitr_at "$now")

# check_window TAG: every moment from first_in on restores to its recorded state.
check_window() {
  local i r dst
  for i in $(seq "$first_in" "$last"); do
    dst=$T/w.$1.$i
    gitwal restore --until "$(pitr_at "$(cat "$T/m$i.t")")" --to "$dst" >/dev/null 2>"$T/rerr" ||
      fail "$1: restore of moment $i failed: $(cat "$T/rerr")"
    for r in a.git g/b.git c.git; do
      if [ "$(cat "$T/m$i.$(enc_rel "$r")")" = DELETED ]; then
        [ ! -e "$dst/$r" ] || fail "$1: moment $i: $r restored though deleted then"
      else
        assert_state_is "$T/m$i.$(enc_rel "$r")" "$dst/$r"
      fi
    done
    rm -rf "$dst"
  done
}
check_window before
pass "before expire: all $((last - first_in + 1)) moments of the window restore exactly"

# A pristine copy of the archive (store and index) for every kill.
cp -a "$GITWAL_STATE_DIR" "$T/pristine"
gitwal expire --keep-within "$window" --dry-run > "$T/plan" 2>&1 || fail "dry run: $(cat "$T/plan")"
total=$(find "$GITWAL_STATE_DIR/store/repos" -type f | wc -l)
pass "history: $last moments, $total keys; plan: $(grep -c 'would expire' "$T/plan") repositories to expire"

# How many keys the expire removes (a run on a copy), so that the kill points fall among them.
gitwal expire --keep-within "$window" > /dev/null 2>"$T/full.err" || fail "expire: $(cat "$T/full.err")"
removed=$(sed -n 's/.* \([0-9][0-9]*\) keys removed.*/\1/p' "$T/full.err")
[ "${removed:-0}" -gt 5 ] || fail "too little to expire for the test: $(cat "$T/full.err")"
points="record 0 1 $((removed - 1))"
seed=${EXPIRE_CRASH_SEED:-$$}
RANDOM=$seed
for i in $(seq 1 18); do points="$points $((RANDOM % removed))"; done
echo "kill points (seed $seed): $points"
k=0
for p in $points; do
  k=$((k + 1))
  [ "$k" -le 22 ] || break
  rm -rf "$GITWAL_STATE_DIR"; cp -a "$T/pristine" "$GITWAL_STATE_DIR"
  krc=0; GITWAL_TEST_EXPIRE_KILL=$p gitwal expire --keep-within "$window" >/dev/null 2>"$T/kerr" || krc=$?
  # A point past the last removal lets it finish (exit 0); otherwise it died by SIGKILL.
  [ $krc -eq 137 ] || [ $krc -eq 0 ] || fail "kill $k at $p: exit $krc: $(cat "$T/kerr")"
  rc=0; gitwal audit > "$T/audit" 2>&1 || rc=$?
  [ $rc -eq 0 ] || fail "kill $k at $p: audit exit $rc: $(cat "$T/audit")"
  grep -Eq '^problem' "$T/audit" && fail "kill $k at $p: an interrupted expire looks like damage: $(cat "$T/audit")"
  check_window "kill$k"
  gitwal expire --keep-within "$window" > "$T/again" 2>&1 || fail "kill $k at $p: the next expire: $(cat "$T/again")"
  gitwal audit --json > "$T/audit.json" 2>&1 || fail "kill $k at $p: audit after finishing: $(cat "$T/audit.json")"
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["clean"] and not [w for w in d["warnings"] if w["kind"]!="unenforced"], d["warnings"]' "$T/audit.json" ||
    fail "kill $k at $p: not finished: $(cat "$T/audit.json")"
  echo "ok: kill $k at $p (exit $krc): window restores, audit clean or resumable, the next run finishes"
done
check_window after
pass "22 kills: every moment of the window restored after each; the next run finished each time"

# Moments before the window: restored exactly while the full backup kept for the window's start
# still covers them, else a one-line error naming the policy and the date (the first one, at least).
expired=0
for i in $(seq 1 "$old"); do
  rc=0; gitwal restore --until "$(pitr_at "$(cat "$T/m$i.t")")" --repo a.git --to "$T/o$i" >/dev/null 2>"$T/err" || rc=$?
  if [ $rc -eq 0 ]; then
    assert_state_is "$T/m$i.a.git" "$T/o$i/a.git"
  else
    [ $rc -eq 1 ] && [ "$(grep -c 'was expired by policy keep-within=' "$T/err")" -eq 1 ] || fail "moment $i: exit $rc: $(cat "$T/err")"
    expired=$((expired + 1))
  fi
done
[ $expired -ge 1 ] || fail "no moment before the window was expired"
pass "moments before the window: $expired expired (a one-line error naming the policy and date), the others exact"
