# A full backup taken while a push is being written holds some of the push's loose objects
# (git writes objects before it moves a ref) but not all. When the ref then moves, the
# segment must carry what the full backup missed: an object of the full backup is trusted to
# reach only archived objects when it is an archived ref's value or came in a whole pack.
source "$(dirname "$0")/lib.sh"

make_repo a.git 2
A=$T/root/a.git
# The push in flight: its commit and tree are written, its blob not yet, main not moved.
blob=$(echo "in flight $RANDOM" | git -C "$A" hash-object -w --stdin)
tree=$( (git -C "$A" ls-tree main; printf '100644 blob %s\tinflight.txt\n' "$blob") | git -C "$A" mktree)
commit=$(git -C "$A" commit-tree "$tree" -p main -m "in flight")
mv "$A/objects/${blob:0:2}/${blob:2}" "$T/blob.hidden"

arch_once > "$T/run1.log"
grep -q 'event=full repo=a.git lsn=1 ' "$T/run1.log" || fail "no full backup: $(cat "$T/run1.log")"
# Now the push completes: the blob lands, then the ref moves.
mv "$T/blob.hidden" "$A/objects/${blob:0:2}/${blob:2}"
git -C "$A" update-ref refs/heads/main "$commit"
arch_once > "$T/run2.log"
grep -q 'event=segment repo=a.git lsn=2 ' "$T/run2.log" || fail "no segment: $(cat "$T/run2.log")"

restore_ok "$T/out" --repo a.git >/dev/null
git -C "$T/out/a.git" cat-file -e "$blob" || fail "the restored repository lacks the blob the full backup missed"
assert_same_repo "$A" "$T/out/a.git"
pass "a push in flight during the full backup: the segment carries what the full backup missed"

# The same after a restart (the proof of closure is kept in memory only): a second push of
# the same kind, with the archiver's state reloaded from the store.
blob2=$(echo "in flight 2 $RANDOM" | git -C "$A" hash-object -w --stdin)
tree2=$( (git -C "$A" ls-tree main; printf '100644 blob %s\tinflight2.txt\n' "$blob2") | git -C "$A" mktree)
commit2=$(git -C "$A" commit-tree "$tree2" -p main -m "in flight 2")
mv "$A/objects/${blob2:0:2}/${blob2:2}" "$T/blob2.hidden"
gitwal backup a.git >/dev/null 2>"$T/b.err" || fail "backup: $(cat "$T/b.err")"
mv "$T/blob2.hidden" "$A/objects/${blob2:0:2}/${blob2:2}"
git -C "$A" update-ref refs/heads/main "$commit2"
arch_once > "$T/run3.log"
grep -q 'event=segment repo=a.git ' "$T/run3.log" || fail "no segment: $(cat "$T/run3.log")"
rm -rf "$T/out"
restore_ok "$T/out" --repo a.git >/dev/null
assert_same_repo "$A" "$T/out/a.git"
pass "the same with a manual full backup (gitwal backup) between archiver runs"
