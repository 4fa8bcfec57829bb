# gitwal archive as a service (inotify): each change becomes a segment within a fraction of a
# second, bursts are coalesced, repositories created and deleted are seen, metrics agree with
# the log, SIGTERM stops it cleanly (exit 0, event=stop).
source "$(dirname "$0")/lib.sh"

A=$T/root/a.git B=$T/root/b.git C=$T/root/grp/c.git L=$T/ar.log
make_repo a.git 2
make_repo b.git 2
git -C "$T/work/b.git" push -q origin main:refs/heads/topic 2>/dev/null

archiver_start "$L" --debounce 50 --metrics-addr 127.0.0.1:0
wait_log "$L" 'event=full .*reason=initial' 2 20 || fail "start-up: no full backups: $(cat "$L")"
port=$(sed -n 's/.*event=metrics .*port=\([0-9]*\).*/\1/p' "$L")
[ -n "$port" ] && [ "$port" -gt 0 ] || fail "no metrics port in the log: $(cat "$L")"
pass "started: full backups of the existing repositories, metrics on port $port"

# step NAME REL CMD...: run CMD (a change to REL), wait for REL's next segment, check its updates.
step() {
  local name=$1 rel=$2 n lsn; shift 2
  n=$(count_log "$L" "event=segment repo=$rel ")
  repo_state "$T/root/$rel" > "$T/before"
  "$@"
  wait_log "$L" "event=segment repo=$rel " $((n + 1)) 30 || fail "$name: no segment within 30 s: $(tail -5 "$L")"
  wait_archived 60 "$rel" || fail "$name: the archive does not reach the live state"
  [ "$(count_log "$L" "event=segment repo=$rel ")" -eq $((n + 1)) ] ||
    fail "$name: one change, more than one segment: $(tail -5 "$L")"
  live_state "$T/root/$rel" > "$T/after"
  lsn=$(last_lsn "$L" "$rel")
  assert_updates "$rel" "$lsn" "$T/before" "$T/after"
  pass "$name: segment $rel@$lsn"
}
step "push" a.git push_commit a.git main
step "branch created by push" a.git push_commit a.git feature
step "tag deleted/created" b.git git -C "$T/work/b.git" push -q origin HEAD:refs/tags/t1 :refs/heads/topic
step "HEAD retargeted" b.git git -C "$B" symbolic-ref HEAD refs/heads/nowhere
step "ref moved in place (update-ref)" a.git git -C "$A" update-ref refs/heads/main refs/heads/main~1
# Deleted as Gitaly deletes: renamed away in one step, then removed. A plain rm -rf is not one
# step: under load the archiver may capture a state on the way (b.git's config gone, its refs
# not yet), a state that did exist and is rightly a segment of its own (test_archive_history
# deletes with rm -rf and checks the states, not the count).
step "repository deleted" b.git mv "$B" "$T/b.git.removed"
rm -rf "$T/b.git.removed"
grep -q 'event=segment repo=b.git .*updates=3 ' "$L" || fail "deletion of b.git: 2 refs + deleted expected: $(grep repo=b.git "$L")"

make_repo grp/c.git 1
wait_log "$L" 'event=full repo=grp/c.git lsn=1 ' 1 30 || fail "created repository: no full backup: $(tail -5 "$L")"
wait_archived 60 grp/c.git || fail "the archive does not reach grp/c.git's live state"
assert_replay grp/c.git "$C"
pass "repository created: full backup (then its push)"

# gc / pack-refs under the watcher: no record of their own. Then a ref is created: its events
# come after theirs, so once it is archived theirs were handled, and the one segment holds
# exactly the new ref (a record of the gc would be a second segment or extra updates).
nf=$(count_log "$L" 'event=full')
git -C "$A" gc -q
git -C "$A" pack-refs --all
step "gc and pack-refs, then a ref created" a.git git -C "$A" update-ref refs/heads/after-gc refs/heads/main
[ "$(count_log "$L" 'event=full')" -eq "$nf" ] || fail "gc wrote a full backup: $(tail -5 "$L")"
pass "gc and pack-refs: no record"

# Lag: every segment of a single watched change is durable within 1 s.
lag_over() { grep 'event=segment' "$1" | awk -v max="$2" '{ for (i = 1; i <= NF; i++) if ($i ~ /^lag_ms=/) { split($i, a, "="); if (a[2] + 0 >= max) print } }'; }
bad=$(lag_over "$L" 1000)
[ -z "$bad" ] || fail "lag of 1 s or more: $bad"
pass "lag_ms below 1000 for every segment"

# A burst: 20 ref moves in a tight loop (objects already archived), then 20 concurrent pushes
# of new commits to one repository.
wa=$T/work/a.git
git -C "$wa" checkout -q main; git -C "$wa" reset -q --hard origin/main
for i in $(seq 1 20); do
  echo "burst $i" > "$wa/burst.txt"; git -C "$wa" add burst.txt; git -C "$wa" commit -qm "burst $i"
done
for i in $(seq 1 20); do
  git -C "$wa" checkout -q -b "b$i" main~20; echo "branch $i" > "$wa/br.txt"; git -C "$wa" add br.txt; git -C "$wa" commit -qm "branch $i"
done
git -C "$wa" checkout -q main
git -C "$wa" push -q origin main:refs/heads/staging-all 2>/dev/null
wait_log "$L" 'event=segment repo=a.git .*objects=60 ' 1 30 || fail "staging push not archived: $(tail -3 "$L")"
wait_archived 60 a.git || fail "the archive does not reach a.git's live state"
cp "$L" "$T/before-burst.log"
n=$(count_log "$L" 'event=segment repo=a.git ')
# 20 transactions from one process: the ref moves within a few milliseconds, well inside the
# 50 ms debounce, so they coalesce into a segment or two (a few under heavy load).
for i in $(seq 19 -1 0); do printf 'start\nupdate refs/heads/main %s\ncommit\n' "$(git -C "$wa" rev-parse "main~$i")"; done > "$T/moves"
git -C "$A" update-ref --stdin < "$T/moves" > /dev/null
wait_archived 60 a.git || fail "the ref moves were not archived"
moves=$(( $(count_log "$L" 'event=segment repo=a.git ') - n ))
echo "burst: 20 ref moves -> $moves segments"
[ "$moves" -ge 1 ] || fail "the ref moves were not archived"
[ "$moves" -le 5 ] || fail "the burst of ref moves was not coalesced: $moves segments for 20 moves"
# 20 concurrent pushes: how many land within one debounce depends on the machine's load, but
# never more segments than changes.
n=$(count_log "$L" 'event=segment repo=a.git ')
pids=()
for i in $(seq 1 20); do git -C "$wa" push -q origin "b$i:refs/heads/burst/$i" 2>/dev/null & pids+=($!); done
for p in "${pids[@]}"; do wait "$p" || fail "a concurrent push failed"; done
wait_archived 60 a.git || fail "the burst was not archived"
pushes=$(( $(count_log "$L" 'event=segment repo=a.git ') - n ))
echo "burst: 20 concurrent pushes -> $pushes segments"
[ "$pushes" -ge 1 ] && [ "$pushes" -le 20 ] || fail "20 concurrent pushes gave $pushes segments"
segs=$((moves + pushes))
assert_replay a.git "$A"
assert_replay b.git "$B"
assert_replay grp/c.git "$C"
# Within a burst the debounce gives way to the 1 s maximum delay: lag is at most that plus the write.
bad=$(lag_over "$L" 2000)
[ -z "$bad" ] || fail "lag of 2 s or more in a burst: $bad"
grep -q 'event=error' "$L" && fail "errors logged: $(grep event=error "$L")"
pass "burst coalesced ($segs segments for 40 changes), final state archived"

# Metrics agree with the log.
m=$(curl -sf "http://127.0.0.1:$port/metrics") || fail "GET /metrics failed"
msegs=$(awk '$1 == "gitwal_segments_written_total" { print $2 }' <<<"$m")
mfull=$(awk '$1 == "gitwal_full_backups_total" { print $2 }' <<<"$m")
[ "$msegs" = "$(count_log "$L" 'event=segment')" ] || fail "gitwal_segments_written_total=$msegs but $(count_log "$L" 'event=segment') segment lines"
[ "$mfull" = "$(count_log "$L" 'event=full')" ] || fail "gitwal_full_backups_total=$mfull but $(count_log "$L" 'event=full') full lines"
pass "metrics: $msegs segments, $mfull full backups, as logged"

archiver_stop "$L"
pass "SIGTERM: exit 0, event=stop"
