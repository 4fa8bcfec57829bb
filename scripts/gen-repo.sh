#!/usr/bin/env bash
# Generate a bare repository for benchmarks: scripts/gen-repo.sh DEST.git
#
# The shape is what a hosting server holds after a while, not one tidy pack:
#  - a history on main written by `git fast-import` (scripts/gen-history.py):
#    GEN_COMMITS commits (default 32000) over a tree of 64 x 64 text files, each
#    editing 4 files, so about 10 objects per commit (commits, trees, blobs) and
#    320k+ objects for the default; `checkpoint`s split it into 4 packs
#    (40%, 30%, 20%, 10% of the history);
#  - a "push" pack: `git pack-objects` of the last 18% of the history, so its
#    objects duplicate those of the two newest fast-import packs (as packs kept
#    by receive-pack --fix-thin duplicate bases), with OFS deltas against bases
#    that a splicer must drop;
#  - loose objects: 300 blobs (`git hash-object -w`), 100 trees (`git mktree`)
#    and 50 commits (`git commit-tree`) on the branch loose-work;
#  - about 360 refs: branches feature/* and annotated tags v*, most in
#    packed-refs, some loose; HEAD -> refs/heads/main.
# Deterministic (fixed seed and dates). Takes about a minute on 2 cores.
# DEST is rebuilt only if it lacks a stamp matching these parameters, so
# callers can cache it (scripts/bench-full.sh does, under BENCH_DIR).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
dest=${1:?usage: scripts/gen-repo.sh DEST.git}
commits=${GEN_COMMITS:-32000}
stamp="gitwal-bench generated repo v1 commits=$commits"

if [[ -f "$dest/gitwal-bench-stamp" && "$(cat "$dest/gitwal-bench-stamp")" == "$stamp" ]]; then
  exit 0
fi

export GIT_AUTHOR_NAME=Bench GIT_AUTHOR_EMAIL=bench@example.com GIT_AUTHOR_DATE='1700000000 +0000'
export GIT_COMMITTER_NAME=Bench GIT_COMMITTER_EMAIL=bench@example.com GIT_COMMITTER_DATE='1700000000 +0000'

mkdir -p "$(dirname "$dest")"
tmp="$dest.tmp.$$"
rm -rf "$tmp" "$dest"
trap 'rm -rf "$tmp"' EXIT
git init -q --bare --initial-branch=main "$tmp"
git -C "$tmp" config gc.auto 0

echo "gen-repo: fast-import of $commits commits" >&2
python3 "$here/gen-history.py" --commits "$commits" --checkpoints 0.4,0.7,0.9 |
  git -C "$tmp" fast-import --quiet --depth=50

echo "gen-repo: push pack (duplicates)" >&2
dup=$((commits * 18 / 100))
git -C "$tmp" rev-list --objects "main~$dup..main" |
  git -C "$tmp" pack-objects -q --delta-base-offset "$tmp/objects/pack/pack" >/dev/null

git -C "$tmp" pack-refs --all

echo "gen-repo: loose objects" >&2
scratch="$tmp/scratch"
mkdir "$scratch"
python3 - "$scratch" <<'EOF'
import os, random, sys
rnd = random.Random(7)
d = sys.argv[1]
for i in range(300):
    with open(os.path.join(d, "b%03d" % i), "w") as f:
        for _ in range(rnd.randint(5, 200)):
            f.write("%d %x %s\n" % (i, rnd.getrandbits(64), "x" * rnd.randint(0, 60)))
EOF
printf '%s\n' "$scratch"/b* >"$tmp/names"
git -C "$tmp" hash-object -w --stdin-paths <"$tmp/names" >"$tmp/blobs"
mapfile -t blobs <"$tmp/blobs"
# 50 "notes" trees, the k-th holding the first 6(k+1) blobs, then 50 root trees:
# main's tree plus notes/.
{
  for ((k = 0; k < 50; k++)); do
    for ((i = 0; i < 6 * (k + 1); i++)); do
      printf '100644 blob %s\tnote%03d.txt\n' "${blobs[i]}" "$i"
    done
    echo
  done
} | git -C "$tmp" mktree --batch >"$tmp/notes"
mapfile -t notes <"$tmp/notes"
base=$(git -C "$tmp" ls-tree main)
{
  for ((k = 0; k < 50; k++)); do
    printf '%s\n040000 tree %s\tnotes\n\n' "$base" "${notes[k]}"
  done
} | git -C "$tmp" mktree --batch >"$tmp/roots"
mapfile -t roots <"$tmp/roots"
parent=$(git -C "$tmp" rev-parse main)
for ((k = 0; k < 50; k++)); do
  parent=$(echo "notes $k" | git -C "$tmp" commit-tree "${roots[k]}" -p "$parent")
done
git -C "$tmp" update-ref refs/heads/loose-work "$parent"
git -C "$tmp" update-ref refs/heads/feature/latest main
rm -rf "$scratch" "$tmp/names" "$tmp/blobs" "$tmp/notes" "$tmp/roots"

echo "$stamp" >"$tmp/gitwal-bench-stamp"
mv "$tmp" "$dest"
trap - EXIT
git -C "$dest" count-objects -v | sed 's/^/gen-repo: /' >&2
