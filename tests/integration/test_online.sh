# Online backups: while a background loop pushes (new commits, force-pushes,
# branch creation and deletion, tags), gc's, repacks and packs refs, repeated
# backups of the repository must each be a consistent snapshot: every LSN
# restores, passes git fsck --full, and has exactly the refs its manifest lists.
source "$(dirname "$0")/lib.sh"

DURATION=${GITWAL_ONLINE_SECONDS:-15}
MIN_BACKUPS=10

make_repo live.git 20
git -C "$T/root/live.git" config receive.unpackLimit 3   # small pushes loose, bigger ones packs
w=$T/work/live.git

churn() {
  local end=$((SECONDS + DURATION)) n=0 op
  cd "$w"
  while [ $SECONDS -lt $end ]; do
    n=$((n + 1))
    op=$((RANDOM % 10))
    case $op in
      0|1|2) # new commits on main, some with enough objects to arrive as a pack
        for i in $(seq 1 $((RANDOM % 4 + 1))); do
          echo "$n $i $RANDOM" >> file.txt; head -c 3000 /dev/urandom | base64 > "f-$n-$i"
          git add -A && git commit -qm "c $n $i"
        done
        git push -q origin main 2>/dev/null ;;
      3) # force-push: rewrite the tip of main
        git reset -q --hard HEAD~1 2>/dev/null; echo "rewrite $n" > rewrite.txt
        git add -A && git commit -qm "rewrite $n" && git push -qf origin main 2>/dev/null ;;
      4) # create a branch (and a tag) with its own commit
        git checkout -q -b "b$n" main && echo "$n" > "branch-$n" && git add -A && git commit -qm "b$n" &&
          git push -q origin "b$n" "HEAD:refs/tags/t$n" 2>/dev/null
        git checkout -q main ;;
      5) # delete a branch
        b=$(git -C "$T/root/live.git" for-each-ref --format='%(refname:short)' refs/heads/b* | head -1)
        [ -n "$b" ] && git push -q origin --delete "$b" 2>/dev/null ;;
      6) git -C "$T/root/live.git" gc -q --prune=now 2>/dev/null ;;
      7) git -C "$T/root/live.git" repack -adq 2>/dev/null ;;
      8) git -C "$T/root/live.git" pack-refs --all 2>/dev/null ;;
      9) git -C "$T/root/live.git" repack -q 2>/dev/null ;;    # loose into a new pack, keeping them
    esac
    git pull -q --rebase=false origin main 2>/dev/null || git reset -q --hard origin/main 2>/dev/null || true
  done
  echo "$n" > "$T/churn.ops"
}

churn > "$T/churn.log" 2>&1 &
churn_pid=$!
trap 'kill $churn_pid 2>/dev/null || true' INT TERM

backups=0 failures=0
while kill -0 $churn_pid 2>/dev/null || { [ $backups -lt $MIN_BACKUPS ] && [ $failures -lt 5 ]; }; do
  rc=0
  gitwal backup live.git >"$T/b.out" 2>"$T/b.err" || rc=$?
  cat "$T/b.out" >> "$T/backups.log"
  if [ $rc -ne 0 ]; then
    failures=$((failures + 1))
    echo "backup failed (exit $rc): $(cat "$T/b.out" "$T/b.err")" >&2
  else
    backups=$((backups + 1))
  fi
  sleep 0.$((RANDOM % 5 + 5))     # about one backup a second
done
wait $churn_pid || true
[ -s "$T/churn.ops" ] || fail "the churn loop did not finish: $(tail -5 "$T/churn.log")"
echo "churn: $(cat "$T/churn.ops") operations; $backups backups, $failures failed"
[ $failures -eq 0 ] || fail "$failures backups failed while the repository changed"
[ $backups -ge $MIN_BACKUPS ] || fail "only $backups backups"

# One backup more of the quiet repository: it must equal the source exactly.
final=$(field "$(backup_ok live.git)" lsn)
restore_ok "$T/final" --repo live.git --lsn "$final" >/dev/null
assert_same_repo "$T/root/live.git" "$T/final/live.git"
pass "backup of the repository at rest"

# Every LSN: restore, fsck, exactly the manifest's refs and HEAD.
lsns=$(sed -n 's/^ok live.git lsn=\([0-9]*\) .*/\1/p' "$T/backups.log")
[ "$(echo "$lsns" | sort -n | uniq | wc -l)" -eq "$backups" ] || fail "LSNs are not distinct: $lsns"
distinct=0 prev=
for lsn in $lsns; do
  d=$T/r/$lsn
  restore_ok "$d" --repo live.git --lsn "$lsn" >/dev/null
  git -C "$d/live.git" fsck --full --no-progress >/dev/null 2>"$T/fsck.err" ||
    fail "LSN $lsn: fsck: $(head -5 "$T/fsck.err")"
  manifest_refs "$(full_key live.git "$lsn" manifest)" > "$T/want"
  diff "$T/want" <(repo_state "$d/live.git") >&2 || fail "LSN $lsn: restored refs differ from the manifest"
  cur=$(md5sum < "$T/want")
  [ "$cur" != "$prev" ] && distinct=$((distinct + 1))
  prev=$cur
  rm -rf "$d"
done
[ "$distinct" -ge 3 ] || fail "only $distinct distinct states among $backups backups: the churn did not interleave"
pass "$backups online backups restore consistently ($distinct distinct states)"

# The bundle of a backup taken mid-churn clones with stock git, with the manifest's refs.
mid=$(echo "$lsns" | sed -n "$(( (backups + 1) / 2 ))p")
git clone -q --mirror "$(full_key live.git "$mid" bundle)" "$T/mid.git" 2>"$T/clone.err" || fail "clone of LSN $mid: $(cat "$T/clone.err")"
git -C "$T/mid.git" fsck --full --no-progress >/dev/null 2>&1 || fail "fsck of the bundle clone of LSN $mid"
diff <(manifest_refs "$(full_key live.git "$mid" manifest)" | grep -v '^HEAD ') \
     <(git -C "$T/mid.git" for-each-ref --format='%(objectname) %(refname)') >&2 || fail "bundle clone of LSN $mid"
pass "mid-churn bundle clones with git clone --mirror"
