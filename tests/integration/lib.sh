# Shared helpers for the integration tests: sourced by every tests/integration/test_*.sh.
# Each test runs in its own temporary directory with its own state (store and
# index), uses the real gitwal binary ($GITWAL_BIN) and real git.
set -euo pipefail

: "${GITWAL_BIN:?GITWAL_BIN must point to the gitwal binary}"
GITWAL_SOURCE_DIR=${GITWAL_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
SHARED_DATA=${SHARED_DATA:-$GITWAL_SOURCE_DIR/../shared/data}

T=$(mktemp -d "${TMPDIR:-/tmp}/gitwal-test.XXXXXX")
export GITWAL_STATE_DIR=$T/state
export GITWAL_ROOT=$T/root
unset GITWAL_STORE GITWAL_INDEX GITWAL_CONFIG
export XDG_CONFIG_HOME=$T/xdg
export GIT_AUTHOR_NAME=gitwal GIT_AUTHOR_EMAIL=t@gitwal GIT_COMMITTER_NAME=gitwal GIT_COMMITTER_EMAIL=t@gitwal
export GIT_CONFIG_NOSYSTEM=1 HOME=$T/home
mkdir -p "$T/root" "$T/home"
git config --global init.defaultBranch main
git config --global protocol.file.allow always
git config --global gc.auto 0
trap 'rc=$?; if [ $rc -ne 0 ]; then echo "FAILED (kept $T)" >&2; else chmod -R u+w "$T" 2>/dev/null; rm -rf "$T"; fi' EXIT

gitwal() { "$GITWAL_BIN" "$@"; }

fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { echo "ok: $*"; }

# assert_fails DESCRIPTION PATTERN CMD...: CMD must exit non-zero and print PATTERN (grep -E) on stderr.
assert_fails() {
  local what=$1 pattern=$2; shift 2
  local out rc=0
  out=$("$@" 2>&1 >/dev/null) || rc=$?
  [ $rc -ne 0 ] || fail "$what: expected failure, got success"
  echo "$out" | grep -Eq -- "$pattern" || fail "$what: stderr does not match '$pattern': $out"
  pass "$what"
}

# Make a bare repository $T/root/$1 with $2 commits on main (a working clone in $T/work/$1).
make_repo() {
  local rel=$1 commits=${2:-3} i
  git init -q --bare "$T/root/$rel"
  git clone -q "$T/root/$rel" "$T/work/$rel" 2>/dev/null
  for i in $(seq 1 "$commits"); do
    echo "line $i $RANDOM" >> "$T/work/$rel/file.txt"
    git -C "$T/work/$rel" add file.txt
    git -C "$T/work/$rel" commit -qm "commit $i"
  done
  [ "$commits" -gt 0 ] && git -C "$T/work/$rel" push -q origin main
  return 0
}

# The state a restore must reproduce: refs and HEAD.
repo_state() {
  local dir=$1
  git -C "$dir" for-each-ref --format='%(objectname) %(refname)'
  echo "HEAD $(git -C "$dir" symbolic-ref -q HEAD || git -C "$dir" rev-parse HEAD)"
}

# assert_same_repo SRC RESTORED: same refs and HEAD, and the restored one passes fsck.
assert_same_repo() {
  local src=$1 dst=$2
  diff <(repo_state "$src") <(repo_state "$dst") >&2 || fail "refs or HEAD differ between $src and $dst"
  git -C "$dst" fsck --full --no-progress >/dev/null 2>"$T/fsck.err" || fail "fsck failed in $dst: $(cat "$T/fsck.err")"
}

# ---- helpers for the full backup/restore tests ----

# The store key prefix of REL ('/' and other specials percent-encoded).
enc_rel() { printf '%s' "$1" | sed -e 's/%/%25/g' -e 's,/,%2F,g'; }

# Every file in the store (relative paths, sorted), with its SHA-256.
store_snapshot() {
  local s=$GITWAL_STATE_DIR/store
  [ -d "$s" ] || return 0
  (cd "$s" && find . -type f -print0 | sort -z | xargs -0r sha256sum)
}

# backup_ok REL...: gitwal backup must succeed; prints its stdout (the 'ok' lines).
backup_ok() {
  local out rc=0
  out=$(gitwal backup "$@" 2>"$T/backup.err") || rc=$?
  [ $rc -eq 0 ] || fail "gitwal backup $* exited $rc: $out $(cat "$T/backup.err")"
  echo "$out"
}

# field LINE NAME: the value of NAME=value in a backup/restore line.
field() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<"$1"; }

# restore_ok DEST ARGS...: gitwal restore --to DEST ARGS must succeed.
restore_ok() {
  local dest=$1 out rc=0; shift
  out=$(gitwal restore --to "$dest" "$@" 2>"$T/restore.err") || rc=$?
  [ $rc -eq 0 ] || fail "gitwal restore --to $dest $* exited $rc: $out $(cat "$T/restore.err")"
  echo "$out"
}

# The stored key of REL's full backup at LSN (KIND: bundle, idx or manifest).
full_key() { printf '%s/repos/%s/%020d.full.%s' "$GITWAL_STATE_DIR/store" "$(enc_rel "$1")" "$2" "$3"; }

# assert_bundle_clones REL LSN SRC: 'git clone --mirror' of the stored bundle has SRC's refs.
assert_bundle_clones() {
  local rel=$1 lsn=$2 src=$3 dst
  dst=$T/bundle-clone.$RANDOM$RANDOM.git
  git clone -q --mirror "$(full_key "$rel" "$lsn" bundle)" "$dst" 2>"$T/clone.err" ||
    fail "git clone --mirror of the bundle of $rel@$lsn: $(cat "$T/clone.err")"
  # A mirror clone of a bundle maps HEAD and symrefs to plain refs: compare names and objects.
  diff <(git -C "$src" for-each-ref --format='%(objectname) %(refname)') \
       <(git -C "$dst" for-each-ref --format='%(objectname) %(refname)') >&2 ||
    fail "bundle clone of $rel@$lsn differs from $src"
  git -C "$dst" fsck --full --no-progress >/dev/null 2>&1 || fail "fsck of the bundle clone of $rel@$lsn"
  rm -rf "$dst"
}

# manifest_refs MANIFEST: "oid name" per ref plus "HEAD <symref or oid>", from the manifest JSON.
manifest_refs() {
  python3 - "$1" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
for r in m["refs"]:
    print(r["oid"], r["name"])
h = m["head"]
print("HEAD", h.get("symbolic") or h.get("oid"))
PY
}

# --- S3 (tests/integration/test_s3_*.sh) ---
# s3_require: skip (exit 77) unless scripts/test.sh started radosgw and set the endpoint.
s3_require() {
  if [ -z "${GITWAL_TEST_S3_ENDPOINT:-}" ]; then
    echo "skipped: GITWAL_TEST_S3_ENDPOINT is not set (scripts/test.sh starts radosgw and sets it)"
    exit 77
  fi
  : "${AWS_ACCESS_KEY_ID:?}" "${AWS_SECRET_ACCESS_KEY:?}"
}

# s3_curl ARGS...: a signed request; the credentials go to curl on stdin, never on its command line.
s3_curl() {
  printf 'user = "%s:%s"\n' "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" |
    curl -sS -K - --aws-sigv4 "aws:amz:${AWS_REGION:-us-east-1}:s3" "$@"
}

EMPTY_SHA256=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855

# s3_bucket [lock]: create a uniquely named bucket (with Object Lock when asked); prints its name.
s3_bucket() {
  local name="gwi-$$-$RANDOM-$(date +%s%N | tail -c 7)" extra=()
  [ "${1:-}" = lock ] && extra=(-H 'x-amz-bucket-object-lock-enabled: true')
  s3_curl -f -o /dev/null -X PUT -H "x-amz-content-sha256: $EMPTY_SHA256" "${extra[@]}" \
    "$GITWAL_TEST_S3_ENDPOINT/$name" || fail "cannot create bucket $name"
  echo "$name"
}

# s3_url BUCKET PREFIX [PARAMS]: the store URL for the local server.
s3_url() {
  echo "s3://$1/$2?endpoint=$GITWAL_TEST_S3_ENDPOINT&region=us-east-1&path_style=true${3:+&$3}"
}

# s3_keys BUCKET: every object name in the bucket (up to 1,000), one a line.
s3_keys() {
  s3_curl -f -H "x-amz-content-sha256: $EMPTY_SHA256" "$GITWAL_TEST_S3_ENDPOINT/$1?list-type=2" |
    python3 -c 'import sys,xml.etree.ElementTree as E; [print(k.text) for k in E.parse(sys.stdin).iter() if k.tag.endswith("}Key") or k.tag=="Key"]'
}
