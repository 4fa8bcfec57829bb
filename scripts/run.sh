#!/usr/bin/env bash
# Set up and run gitwal on the embedded default (file store + local index).
#   scripts/run.sh [ROOT]
# Installs dependencies, builds, then backs up every bare repository under ROOT
# (default: a demo root made from ../shared/data/libgit2.bundle when present, or
# generated), restores them into a scratch directory, checks them with git fsck,
# and prints what the store holds.
set -euo pipefail
cd "$(dirname "$0")/.."
src=$(pwd)

scripts/deps.sh
scripts/build.sh release
bin=$src/build/release/gitwal

state=${GITWAL_STATE_DIR:-$src/out/state}
export GITWAL_STATE_DIR=$state
root=${1:-}
if [ -z "$root" ]; then
  root=$src/out/demo-root
  if [ ! -d "$root" ]; then
    mkdir -p "$root/demo"
    if [ -f "$src/../shared/data/libgit2.bundle" ]; then
      git clone -q --mirror "$src/../shared/data/libgit2.bundle" "$root/demo/libgit2.git"
    fi
    git init -q --bare "$root/demo/small.git"
    w=$(mktemp -d)
    git -C "$w" init -q -b main
    for i in 1 2 3; do echo "$i" > "$w/f"; git -C "$w" add f
      git -C "$w" -c user.name=demo -c user.email=demo@example.com commit -qm "demo $i"; done
    git -C "$w" push -q "$root/demo/small.git" main
    rm -rf "$w"
  fi
fi

echo "== gitwal backup --all (root $root, state $state)"
"$bin" backup --root "$root" --all
restore_dir=$(mktemp -d "${TMPDIR:-/tmp}/gitwal-restore.XXXXXX")
echo "== gitwal restore --to $restore_dir"
"$bin" restore --to "$restore_dir"
for repo in $(cd "$restore_dir" && find . -name '*.git' -type d -prune | sed 's|^\./||'); do
  git -C "$restore_dir/$repo" fsck --full --no-progress >/dev/null && echo "fsck ok: $repo"
done
echo "== gitwal info"
"$bin" info
