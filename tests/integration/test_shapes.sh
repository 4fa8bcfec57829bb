# Full backup and restore round trip for every repository shape gitwal must
# handle: empty, packed/loose refs, thousands of refs, symbolic refs, detached
# HEAD, annotated tags (and a tag of a tag), overlapping packs (duplicates),
# loose objects (also duplicated in a pack), packs + loose, gc'd, and
# restoring an older LSN exactly.
source "$(dirname "$0")/lib.sh"

# commit_push REL N [BRANCH]: N new commits in the working clone of REL, pushed.
commit_push() {
  local rel=$1 n=$2 branch=${3:-main} i w=$T/work/$1
  git -C "$w" checkout -q -B "$branch" 2>/dev/null
  for i in $(seq 1 "$n"); do
    printf 'commit %s on %s %s\n%s\n' "$i" "$branch" "$RANDOM" "$(seq 1 $((i * 7)))" >> "$w/file-${branch//\//_}.txt"
    echo "$RANDOM$RANDOM" > "$w/other-$i.txt"
    git -C "$w" add -A
    git -C "$w" commit -qm "$branch $i"
  done
  git -C "$w" push -q origin "$branch" 2>/dev/null
}

# roundtrip REL [CHECK_BUNDLE=1]: back up REL (must be LSN 1), restore it alone into
# a fresh directory, compare with the source; clone the bundle with stock git.
# Prints the backup line.
roundtrip() {
  local rel=$1 check_bundle=${2:-1} line lsn
  line=$(backup_ok "$rel")
  grep -q "^ok $rel lsn=[0-9]* objects=[0-9]* refs=[0-9]* bytes=[0-9]* duplicates=[0-9]* loose=[0-9]* seconds=" <<<"$line" ||
    fail "$rel: backup line: $line"
  lsn=$(field "$line" lsn)
  restore_ok "$T/restored-$lsn-${rel//\//_}" --repo "$rel" >/dev/null
  assert_same_repo "$T/root/$rel" "$T/restored-$lsn-${rel//\//_}/$rel"
  [ "$check_bundle" = 1 ] && assert_bundle_clones "$rel" "$lsn" "$T/root/$rel"
  # The objects count is the number of distinct objects in the source.
  local have
  have=$(git -C "$T/root/$rel" cat-file --batch-all-objects --batch-check='%(objectname)' | sort -u | wc -l)
  [ "$(field "$line" objects)" = "$have" ] || fail "$rel: objects=$(field "$line" objects), the source has $have"
  echo "$line"
}
R() { echo "$T/restored-1-${1//\//_}/$1"; }

# make_repo_unpack REL N LIMIT: make_repo REL N, then receive.unpackLimit LIMIT (1: every push
# stays a pack; 100000: every push is unpacked into loose objects).
make_repo_unpack() {
  make_repo "$1" "$2"
  git -C "$T/root/$1" config receive.unpackLimit "$3"
}

# roundtrip_saw REL FIELD WHAT: roundtrip REL; its backup line's FIELD (duplicates, loose) is
# above 0, so the backup met the shape WHAT is about; pass WHAT.
roundtrip_saw() {
  local rel=$1 name=$2 what=$3 line
  line=$(roundtrip "$rel")
  [ "$(field "$line" "$name")" -gt 0 ] || fail "$what: $name=0 in: $line"
  pass "$what ($name=$(field "$line" "$name"))"
}

# --- empty: no commits at all ---------------------------------------------
git init -q --bare "$T/root/empty.git"
line=$(roundtrip empty.git 0)
[ "$(field "$line" refs)" = 0 ] || fail "empty: refs=$(field "$line" refs)"
[ "$(git -C "$(R empty.git)" symbolic-ref HEAD)" = refs/heads/main ] ||
  fail "empty: restored HEAD is $(cat "$(R empty.git)/HEAD"), expected ref: refs/heads/main"
[ -z "$(git -C "$(R empty.git)" for-each-ref)" ] || fail "empty: restored repo has refs"
git -C "$(R empty.git)" rev-parse --is-bare-repository | grep_all -qx true || fail "empty: restored repo not bare"
# An empty restored repository accepts a push.
git clone -q "$(R empty.git)" "$T/empty-clone" 2>/dev/null
git -C "$T/empty-clone" commit -q --allow-empty -m x && git -C "$T/empty-clone" push -q origin HEAD:main 2>/dev/null ||
  fail "empty: cannot push into the restored empty repository"
pass "empty repository"

# --- packed refs only --------------------------------------------------------
make_repo packed.git 4
commit_push packed.git 2 topic
git -C "$T/work/packed.git" tag light main && git -C "$T/work/packed.git" push -q origin --tags
git -C "$T/root/packed.git" pack-refs --all
[ -z "$(find "$T/root/packed.git/refs" -type f)" ] || fail "setup: loose refs remain"
roundtrip packed.git >/dev/null
pass "packed refs only"

# --- loose refs only ------------------------------------------------------------
make_repo loose-refs.git 3
commit_push loose-refs.git 2 feature/x
[ ! -e "$T/root/loose-refs.git/packed-refs" ] || fail "setup: packed-refs exists"
roundtrip loose-refs.git >/dev/null
pass "loose refs only"

# --- thousands of refs (half packed, half loose), names sorting tricky ---------
make_repo many.git 5
mapfile -t oids < <(git -C "$T/root/many.git" rev-list main)
{
  for i in $(seq 1 1500); do echo "create refs/heads/b/$i ${oids[$((i % 5))]}"; done
  for i in $(seq 1 1500); do echo "create refs/tags/t-$i ${oids[$((i % 3))]}"; done
} | git -C "$T/root/many.git" update-ref --stdin
git -C "$T/root/many.git" pack-refs --all
{
  for i in $(seq 1 200); do echo "create refs/heads/z/loose-$i ${oids[$((i % 4))]}"; done
  echo "create refs/heads/b/1-after ${oids[0]}"
  echo "create refs/heads/b.dot ${oids[1]}"
  echo "update refs/heads/b/7 ${oids[4]}"   # loose ref overriding a packed one
} | git -C "$T/root/many.git" update-ref --stdin
line=$(roundtrip many.git)
[ "$(field "$line" refs)" = "$(git -C "$T/root/many.git" for-each-ref | wc -l)" ] || fail "many refs: $line"
[ "$(git -C "$(R many.git)" rev-parse refs/heads/b/7)" = "${oids[4]}" ] || fail "many refs: loose-over-packed ref lost"
pass "3400 refs"

# --- symbolic refs ---------------------------------------------------------------
make_repo sym.git 3
commit_push sym.git 2 dev
git -C "$T/root/sym.git" symbolic-ref HEAD refs/heads/dev
git -C "$T/root/sym.git" update-ref refs/remotes/origin/main main
git -C "$T/root/sym.git" symbolic-ref refs/remotes/origin/HEAD refs/remotes/origin/main
roundtrip sym.git >/dev/null
[ "$(git -C "$(R sym.git)" symbolic-ref HEAD)" = refs/heads/dev ] || fail "symrefs: HEAD not -> refs/heads/dev"
[ "$(git -C "$(R sym.git)" symbolic-ref refs/remotes/origin/HEAD 2>&1)" = refs/remotes/origin/main ] ||
  fail "symrefs: refs/remotes/origin/HEAD is not a symref to refs/remotes/origin/main in the restore"
pass "symbolic refs"

# --- detached HEAD -------------------------------------------------------------------
make_repo detached.git 4
old=$(git -C "$T/root/detached.git" rev-parse main~2)
git -C "$T/root/detached.git" update-ref --no-deref HEAD "$old"
roundtrip detached.git >/dev/null
git -C "$(R detached.git)" symbolic-ref -q HEAD >/dev/null && fail "detached: restored HEAD is symbolic"
[ "$(git -C "$(R detached.git)" rev-parse HEAD)" = "$old" ] || fail "detached: HEAD differs"
pass "detached HEAD"

# --- annotated tags, a tag of a tag, a tag of a tree and of a blob -------------------
make_repo tags.git 3
w=$T/work/tags.git
git -C "$w" tag -a v1 -m "annotated v1" main~1
git -C "$w" tag -a v1-signed-off -m "tag of a tag" v1 2>/dev/null
git -C "$w" tag -a tree-tag -m "tag of a tree" 'main^{tree}'
git -C "$w" tag blob-tag "$(git -C "$w" rev-parse main:file.txt)"
git -C "$w" push -q origin --tags
[ "$(git -C "$T/root/tags.git" cat-file -t refs/tags/v1-signed-off)" = tag ] || fail "setup: no tag of a tag"
roundtrip tags.git >/dev/null
r=$(R tags.git)
[ "$(git -C "$r" cat-file -p refs/tags/v1-signed-off | sed -n 's/^object //p')" = "$(git -C "$r" rev-parse refs/tags/v1)" ] ||
  fail "tags: the tag of a tag does not point at the v1 tag object"
[ "$(git -C "$r" rev-parse 'v1-signed-off^{commit}')" = "$(git -C "$T/root/tags.git" rev-parse main~1)" ] || fail "tags: peel"
pass "annotated tags, tag of a tag"

# --- several packs holding the same objects (thin pushes, repack without -d) -----------
make_repo_unpack dups.git 2 1
for b in main side main side main; do commit_push dups.git 3 "$b"; done
git -C "$T/root/dups.git" repack -a -q        # a new all-in-one pack; the old ones stay
commit_push dups.git 2 main
git -C "$T/root/dups.git" repack -a -q
npacks=$(ls "$T/root/dups.git/objects/pack/"*.pack | wc -l)
[ "$npacks" -ge 3 ] || fail "setup: only $npacks packs"
roundtrip_saw dups.git duplicates "overlapping packs ($npacks packs)"

# thin packs alone (no repack): each push's pack is completed by index-pack --fix-thin
make_repo_unpack thin.git 3 1
for i in 1 2 3 4; do commit_push thin.git 2 main; commit_push thin.git 1 "br$i"; done
roundtrip_saw thin.git duplicates "fixed thin packs (they repeat their bases)"

# --- loose objects only, then loose objects also present in a pack ---------------------
make_repo_unpack loose.git 0 100000
commit_push loose.git 5 main
commit_push loose.git 3 side
[ ! -e "$T/root/loose.git/objects/pack" ] || [ -z "$(ls "$T/root/loose.git/objects/pack")" ] || fail "setup: packs"
roundtrip_saw loose.git loose "loose objects only"
make_repo_unpack loosedup.git 0 100000
commit_push loosedup.git 4 main
git -C "$T/root/loosedup.git" repack -q       # packs the loose objects, keeps them loose
nl=$(find "$T/root/loosedup.git/objects" -path '*/objects/??/*' -type f | wc -l)
[ "$nl" -gt 0 ] || fail "setup: no loose objects"
roundtrip_saw loosedup.git duplicates "loose objects also in a pack"

# --- a mix of packs and loose objects ----------------------------------------------------
make_repo_unpack mix.git 0 1
commit_push mix.git 6 main
commit_push mix.git 3 a
git -C "$T/root/mix.git" config receive.unpackLimit 100000
commit_push mix.git 3 main
commit_push mix.git 2 b
git -C "$T/root/mix.git" config receive.unpackLimit 1
commit_push mix.git 2 a
roundtrip_saw mix.git loose "packs and loose objects"

# --- a gc'd repository (one pack with deltas, unreachable objects pruned) ---------------
make_repo gcd.git 12
commit_push gcd.git 5 side
git -C "$T/work/gcd.git" push -q origin --delete side
git -C "$T/root/gcd.git" gc -q --prune=now --aggressive
[ "$(ls "$T/root/gcd.git/objects/pack/"*.pack | wc -l)" = 1 ] || fail "setup: gc left several packs"
line=$(roundtrip gcd.git)
[ "$(field "$line" duplicates)" = 0 ] && [ "$(field "$line" loose)" = 0 ] || fail "gc'd: $line"
pass "gc'd repository"

# --- restore --lsn N gives the older backup exactly -------------------------------------
make_repo hist.git 3
backup_ok hist.git | grep_all -q '^ok hist.git lsn=1 ' || fail "history: first backup is not LSN 1"
repo_state "$T/root/hist.git" > "$T/state-1"
commit_push hist.git 2 main
commit_push hist.git 2 newbranch
git -C "$T/work/hist.git" push -q -f origin main~3:main    # rewrite main
git -C "$T/root/hist.git" symbolic-ref HEAD refs/heads/newbranch
git -C "$T/root/hist.git" gc -q --prune=now
backup_ok hist.git | grep_all -q '^ok hist.git lsn=2 ' || fail "history: second backup is not LSN 2"
repo_state "$T/root/hist.git" > "$T/state-2"
cmp -s "$T/state-1" "$T/state-2" && fail "setup: states equal"
restore_ok "$T/at1" --repo hist.git --lsn 1 | grep_all -q '^ok hist.git lsn=1 ' || fail "restore --lsn 1 line"
diff "$T/state-1" <(repo_state "$T/at1/hist.git") >&2 || fail "restore --lsn 1 is not the state at LSN 1"
git -C "$T/at1/hist.git" fsck --full --no-progress 2>/dev/null || fail "fsck at LSN 1"
restore_ok "$T/at2" --repo hist.git --lsn 2 >/dev/null
diff "$T/state-2" <(repo_state "$T/at2/hist.git") >&2 || fail "restore --lsn 2"
restore_ok "$T/latest" --repo hist.git | grep_all -q '^ok hist.git lsn=2 ' || fail "restore without --lsn takes the latest"
diff "$T/state-2" <(repo_state "$T/latest/hist.git") >&2 || fail "restore latest"
assert_fails "restore --lsn 3 (no such backup)" 'hist.git.*3|3.*hist.git' gitwal restore --to "$T/at3" --repo hist.git --lsn 3
[ ! -e "$T/at3/hist.git" ] || fail "restore of a missing LSN created the target"
pass "restore --lsn N"

# --- all at once: restore everything into one directory --------------------------------
restore_ok "$T/all" >/dev/null
for rel in empty.git packed.git loose-refs.git many.git sym.git detached.git tags.git dups.git thin.git \
           loose.git loosedup.git mix.git gcd.git; do
  assert_same_repo "$T/root/$rel" "$T/all/$rel"
done
pass "restore of every repository"
