# Retention in the running archive service: with gitwal.keepWithin (and gitwal.expireEvery) in the
# config, 'gitwal archive' applies the policy on a thread of its own (event=expire key=value lines),
# goes on archiving meanwhile, and every moment of the window still restores; a bad value is a usage
# error at start-up.
source "$(dirname "$0")/lib.sh"

L=$T/ar.log
make_repo a.git 2
mkdir -p "$XDG_CONFIG_HOME/gitwal"
printf '[gitwal]\n\tkeepWithin = 3x\n' > "$XDG_CONFIG_HOME/gitwal/config"
rc=0; gitwal archive 2>"$T/err" || rc=$?
[ $rc -eq 2 ] && grep -q "gitwal.keepWithin.*'3x' is not a duration" "$T/err" || fail "bad gitwal.keepWithin: exit $rc: $(cat "$T/err")"
rc=0; gitwal archive --keep-within 1h --expire-every 0s 2>"$T/err" || rc=$?
[ $rc -eq 2 ] && grep -q -- "--expire-every" "$T/err" || fail "bad --expire-every: exit $rc: $(cat "$T/err")"
pass "a bad retention setting stops the service at start-up (exit 2), naming it"

printf '[gitwal]\n\tkeepWithin = 2s\n\texpireEvery = 1s\n' > "$XDG_CONFIG_HOME/gitwal/config"
archiver_start "$L" --debounce 20
grep -q "event=expire_policy keep_within=2s keep_full=0 every=1s" "$L" || fail "no policy line: $(cat "$L")"
wait_log "$L" 'event=full repo=a.git .*reason=initial' 1 30 || fail "no initial full backup: $(cat "$L")"
push_commit a.git
wait_log "$L" 'event=segment repo=a.git ' 1 30 || fail "no segment: $(tail -5 "$L")"
gitwal backup a.git >/dev/null 2>&1 || fail "backup beside the service"
push_commit a.git
wait_log "$L" 'event=segment repo=a.git ' 2 30 || fail "no second segment: $(tail -5 "$L")"
wait_archived 60 a.git || fail "the archive does not reach the live state"
t_in=$(pitr_now_us)
repo_state "$T/root/a.git" > "$T/a.in"
# Once the backup is older than the window, the service's next run removes LSNs 1 and 2.
wait_log "$L" 'event=expire repo=a.git action=prefix lsn_from=1 lsn_to=2 kept_lsn=3 keys_removed=[0-9]+ ' 1 60 ||
  fail "no expire by the service: $(grep -E 'expire' "$L")"
grep -Eq 'event=expire_done repositories=[0-9]+ records=[0-9]+ keys_removed=[0-9]+ bytes=[0-9]+ ' "$L" || fail "no expire_done line: $(grep expire "$L")"
arch_keys a.git | grep_all -q '^00000000000000000002.expire$' || fail "no expire record: $(arch_keys a.git)"
pass "the service applies the policy on its own: event=expire, event=expire_done"

# It goes on archiving, and the window restores.
push_commit a.git
wait_log "$L" 'event=segment repo=a.git ' 3 30 || fail "no segment after the expire: $(tail -5 "$L")"
gitwal restore --until "$(pitr_at "$t_in")" --repo a.git --to "$T/r1" >/dev/null 2>&1 || fail "restore in the window"
assert_state_is "$T/a.in" "$T/r1/a.git"
wait_archived 60 a.git || fail "the archive does not reach the live state after the expire"
archiver_stop "$L"
grep -q 'event=expire_error' "$L" && fail "expire errors: $(grep expire_error "$L")"
gitwal audit >/dev/null 2>"$T/err" || fail "audit after the service's expire: $(gitwal audit 2>&1)"
pass "archiving goes on; the window restores; the audit is clean; SIGTERM stops both"
