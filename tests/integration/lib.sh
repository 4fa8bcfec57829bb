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

# grep_all ARGS...: grep ARGS over all of its standard input, read to the end first. The end of a
# pipeline instead of grep -q: grep -q exits at its first match, and with pipefail a writer still
# writing after it (echo of several lines, ls, git show-index) then fails with SIGPIPE and so does
# the whole condition (seen once in a soak: assert_fails on a matching two-line stderr).
grep_all() {
  local input
  input=$(cat)
  grep "$@" <<<"$input"
}

# assert_fails DESCRIPTION PATTERN CMD...: CMD must exit non-zero and print PATTERN (grep -E) on stderr.
assert_fails() {
  local what=$1 pattern=$2; shift 2
  local out rc=0
  out=$("$@" 2>&1 >/dev/null) || rc=$?
  [ $rc -ne 0 ] || fail "$what: expected failure, got success"
  grep -Eq -- "$pattern" <<<"$out" || fail "$what: stderr does not match '$pattern': $out"
  pass "$what"
}

# Make a bare repository $T/root/$1 with $2 commits on main (a working clone in $T/work/$1).
# GITWAL_TEST_OBJECT_FORMAT=sha256 makes sha256 ones (git 2.39 cannot clone an empty
# sha256 repository into a sha256 one: the working copy is made with init and a remote).
make_repo() {
  local rel=$1 commits=${2:-3} i
  if [ "${GITWAL_TEST_OBJECT_FORMAT:-sha1}" = sha1 ]; then
    git init -q --bare "$T/root/$rel"
    git clone -q "$T/root/$rel" "$T/work/$rel" 2>/dev/null
  else
    git init -q --bare --object-format="$GITWAL_TEST_OBJECT_FORMAT" "$T/root/$rel"
    git init -q --object-format="$GITWAL_TEST_OBJECT_FORMAT" "$T/work/$rel"
    git -C "$T/work/$rel" remote add origin "$T/root/$rel"
  fi
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
    curl -sS --max-time 120 -K - --aws-sigv4 "aws:amz:${AWS_REGION:-us-east-1}:s3" "$@"
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

# --- expire on S3 (tests/integration/test_s3_expire*.sh) ---
# s3_versions BUCKET PREFIX: "key version-id" for every version and delete marker under PREFIX.
s3_versions() {
  s3_curl -f -H "x-amz-content-sha256: $EMPTY_SHA256" "$GITWAL_TEST_S3_ENDPOINT/$1?prefix=${2//\//%2F}&versions=" |
    python3 -c '
import sys, xml.etree.ElementTree as E
for e in E.parse(sys.stdin).getroot():
    tag = e.tag.split("}")[-1]
    if tag in ("Version", "DeleteMarker"):
        f = {c.tag.split("}")[-1]: c.text for c in e}
        print(f["Key"], f.get("VersionId"), tag)'
}

# expire_history STORE NAME: in a state of its own (state.NAME), a.git's history on STORE: full
# backups at LSN 1, 3 and 5 with segments between. Sets t_old (before LSN 5's full backup, outside
# the window), t_in (after LSN 6, inside it), a.git's state at t_in in $T/a.in.NAME, and a window
# that starts just after LSN 5's full backup, at a "now" fixed for expire (GITWAL_TEST_EXPIRE_NOW):
# the plan is always LSN 1..4, however slow the machine (t_cut: when LSN 5 was written).
expire_history() {

  export GITWAL_STORE=$1 GITWAL_STATE_DIR=$T/state.$2
  arch_once >/dev/null                       # LSN 1: full backup
  push_commit a.git; arch_once >/dev/null    # 2
  gitwal backup a.git >/dev/null             # 3: full backup
  push_commit a.git; arch_once >/dev/null    # 4
  t_old=$(pitr_now_us)
  gitwal backup a.git >/dev/null             # 5: full backup
  t_cut=$(pitr_now_us)
  push_commit a.git; arch_once >/dev/null    # 6
  t_in=$(pitr_now_us)
  repo_state "$T/root/a.git" > "$T/a.in.$2"
  expire_window "$t_cut"
}

# expire_window T_US: window and GITWAL_TEST_EXPIRE_NOW (now) so that the window starts at or just after T_US.
expire_window() {
  local now
  now=$(pitr_now_us)
  window=$(( (now - $1) / 1000 ))ms
  GITWAL_TEST_EXPIRE_NOW=$(pitr_at "$now")
  export GITWAL_TEST_EXPIRE_NOW
}

# expire_restore_exact NAME: restore --until t_in gives a.git's state at t_in, fsck-clean.
expire_restore_exact() {
  rm -rf "$T/r.$1"
  gitwal restore --until "$(pitr_at "$t_in")" --repo a.git --to "$T/r.$1" >/dev/null 2>"$T/restore.err" ||
    fail "restore --until t_in on $1: $(cat "$T/restore.err")"
  assert_state_is "$T/a.in.$1" "$T/r.$1/a.git"
}

# s3_trace_requests FILE [METHOD]: the requests a GITWAL_S3_TRACE=1 run made (first attempts), of METHOD.
s3_trace_requests() { grep -c "^s3_trace method=${2:-[A-Z]*} .* attempt=1 " "$1" || true; }

# --- the fault-injecting proxy (tests/faultproxy.py) between gitwal and the test radosgw ---
FP_DIR= FP_ENDPOINT=
# fp_start: start the proxy (directory $T/faultproxy; killed on exit); sets FP_ENDPOINT.
fp_start() {
  FP_DIR=$T/faultproxy
  mkdir -p "$FP_DIR"
  python3 "$GITWAL_SOURCE_DIR/tests/faultproxy.py" "${GITWAL_TEST_S3_ENDPOINT#http://}" "$FP_DIR" 2>>"$FP_DIR/stderr" &
  AR_PIDS="${AR_PIDS:-} $!"
  for _ in $(seq 600); do [ -s "$FP_DIR/port" ] && break; sleep 0.05; done
  [ -s "$FP_DIR/port" ] || fail "the fault proxy did not start: $(cat "$FP_DIR/stderr")"
  FP_ENDPOINT=http://127.0.0.1:$(cat "$FP_DIR/port")
}
# fp_rules JSON: switch the proxy's rules (see tests/faultproxy.py), atomically.
fp_rules() { printf '%s\n' "$1" > "$FP_DIR/rules.tmp" && mv "$FP_DIR/rules.tmp" "$FP_DIR/rules.json"; }
# fp_count PATTERN: lines of the proxy's log matching PATTERN (grep -E).
fp_count() { grep -Ec -- "$1" "$FP_DIR/log" 2>/dev/null || true; }

# fault_archive KIND=RULE...: the archive service on an Object Lock bucket through the proxy,
# with short time limits; for each KIND, once the archive holds the live state, RULE is set
# and pushes are driven and recorded (tests/integration/pitr_check.py drive: each waits
# until the archive holds it), then the rule is cleared. The fault must have happened. Then: the service logged no writer
# conflict (a lost answer taken for another writer's object), every recorded state
# restores exactly with `restore --until`, and the audit is clean (no key has a second
# version).
fault_archive() {
  local check="python3 $GITWAL_SOURCE_DIR/tests/integration/pitr_check.py" spec kind rule before bucket rc=0
  s3_require
  fp_start
  bucket=$(s3_bucket lock)
  export GITWAL_STORE="s3://$bucket/p?endpoint=$FP_ENDPOINT&region=us-east-1&path_style=true&lock=governance&retain=1h&retries=2&connect_timeout=1s&stall_timeout=1s&first_byte_timeout=1s&deadline=20s"
  make_repo a.git 2
  make_repo g/b.git 2
  archiver_start "$T/ar.log" --debounce 20
  wait_log "$T/ar.log" 'event=full .*reason=initial' 2 60 || fail "start-up: $(cat "$T/ar.log")"
  for spec in "$@"; do
    kind=${spec%%=*} rule=${spec#*=}
    before=$(fp_count ' fault ')
    # The rule takes effect once the archive holds the starting state, before the pushes.
    printf '%s\n' "$rule" > "$FP_DIR/rules.next"
    PITR_SEED=$RANDOM PITR_BEFORE_STEPS="mv '$FP_DIR/rules.next' '$FP_DIR/rules.json'" \
      $check drive "$T/root" "$T/work.drive" 3 60 "$T/cp.$kind.json" ||
      fail "$kind: the archive did not follow the pushes: $(tail -20 "$T/ar.log")"
    fp_rules '[]'
    [ "$(fp_count ' fault ')" -gt "$before" ] || fail "$kind: the proxy never injected the fault"
    pass "$kind: pushes during the fault archived ($(grep -o '"what"' "$T/cp.$kind.json" | wc -l) checkpoints)"
  done
  archiver_stop "$T/ar.log"
  grep 'event=writer_conflict' "$T/ar.log" && fail "a lost answer was taken for another writer (above)"
  python3 -c 'import json, sys; json.dump([c for f in sys.argv[2:] for c in json.load(open(f))], open(sys.argv[1], "w"))' \
    "$T/cp.all.json" "$T"/cp.*.json
  $check verify "$T/cp.all.json" "$T/restore" 0 1 || fail "point-in-time restores of the states recorded during faults"
  gitwal audit >"$T/audit.out" 2>&1 || rc=$?
  [ $rc -eq 0 ] || fail "audit exit $rc: $(head -20 "$T/audit.out")"
  grep -i 'version' "$T/audit.out" && fail "the audit reports versions (above)"
  pass "every recorded state restores exactly, no second version, audit clean"
}

# --- point-in-time restore (tests/integration/test_pitr_*.sh) ---
# pitr_now_us: the current time in microseconds since the epoch (the archiver's clock).
pitr_now_us() { echo "${EPOCHREALTIME//[^0-9]/}"; }

# pitr_at US: "@seconds.micro" for a time in microseconds.
pitr_at() { printf '@%d.%06d' $(($1 / 1000000)) $(($1 % 1000000)); }

# pitr_rfc US [OFFSET_MINUTES]: RFC 3339 with microseconds, in UTC (Z) or at that offset.
pitr_rfc() {
  local us=$1 off=${2:-0} sign=+ a day
  TZ=UTC0 printf -v day '%(%Y-%m-%dT%H:%M:%S)T' $((us / 1000000 + off * 60))
  if [ "$off" -eq 0 ]; then
    printf '%s.%06dZ' "$day" $((us % 1000000))
  else
    if [ "$off" -lt 0 ]; then sign=-; a=$((-off)); else a=$off; fi
    printf '%s.%06d%s%02d:%02d' "$day" $((us % 1000000)) "$sign" $((a / 60)) $((a % 60))
  fi
}

# archive_once: one 'gitwal archive --once' run that must succeed; its log goes to $T/archive.log.
archive_once() {
  local rc=0
  gitwal archive --once 2>"$T/archive.log" >/dev/null || rc=$?
  [ $rc -eq 0 ] || fail "gitwal archive --once exited $rc: $(cat "$T/archive.log")"
  grep -q 'event=error' "$T/archive.log" && fail "gitwal archive --once logged an error: $(cat "$T/archive.log")"
  return 0
}

# log_records REL...: "rel lsn kind time_us" per archived record of each REL, in LSN order
# (from gitwal log --json; one python3 for all: starting it can be slow).
log_records() {
  local rel
  for rel in "$@"; do gitwal log --repo "$rel" --json > "$T/log.$(enc_rel "$rel").json" || fail "gitwal log --repo $rel"; done
  for rel in "$@"; do echo "$T/log.$(enc_rel "$rel").json"; done | python3 -c '
import json, sys
for path in sys.stdin.read().split("\n"):
    if path:
        d = json.load(open(path))
        for r in d["records"]:
            print(d["repository"], r["lsn"], r["kind"], r["time_us"])'
}

# assert_single_pack DIR: the restored repository has exactly one pack (consolidated).
assert_single_pack() {
  local n
  n=$(find "$1/objects/pack" -maxdepth 1 -name 'pack-*.pack' | wc -l)
  [ "$n" -eq 1 ] || fail "$1 has $n packs in objects/pack, expected 1: $(ls "$1/objects/pack")"
}

# assert_state_is FILE DIR: DIR's refs and HEAD equal the recorded repo_state in FILE; fsck passes.
assert_state_is() {
  local want=$1 dst=$2
  diff "$want" <(repo_state "$dst") >&2 || fail "refs or HEAD of $dst differ from the truth in $want"
  git -C "$dst" fsck --full --no-progress >/dev/null 2>"$T/fsck.err" || fail "fsck failed in $dst: $(cat "$T/fsck.err")"
}

# ---- helpers for the archiver tests (test_archive_*.sh) ----

# arch_once [ARGS]: 'gitwal archive --once' must succeed; prints its stderr log (the event lines).
arch_once() {
  local rc=0
  gitwal archive --once "$@" 2>"$T/once.err" || rc=$?
  [ $rc -eq 0 ] || fail "gitwal archive --once $* exited $rc: $(cat "$T/once.err")"
  cat "$T/once.err"
}

# arch_keys REL: the store keys of REL (file names under repos/<enc>/, sorted).
arch_keys() {
  local d=$GITWAL_STATE_DIR/store/repos/$(enc_rel "$1")
  [ -d "$d" ] || return 0
  (cd "$d" && ls -1 | LC_ALL=C sort)
}

# arch_log REL: 'gitwal log --repo REL --json', which must succeed.
arch_log() {
  gitwal log --repo "$1" --json 2>"$T/log.err" || fail "gitwal log --repo $1 --json: $(cat "$T/log.err")"
}

# live_state DIR: repo_state of DIR, or "DELETED" when DIR is not there.
live_state() { if [ -d "$1" ]; then repo_state "$1"; else echo DELETED; fi; }

# gw_archpy SUBCOMMAND ARGS: the archive checker (python3).
#  replay REL DEST STATES  restore REL's full backups and replay its segments in LSN order into
#                          DEST/REL (the restored full, then each segment's bundle unbundled and its
#                          updates applied with old-value checks); writes STATES/<lsn>.state (the
#                          repo_state after each record, or DELETED) and STATES/final.state.
#                          Checks every segment: magic, trailer length and SHA-256, bundle v2 with
#                          prerequisites that were archived before, bundle refs == new ref values,
#                          pack objects == the log's count == the index's, and none of them archived
#                          before (a segment carries only new objects). LSNs must be 1..N.
#  bundle SEG OUT          write the bundle of segment file SEG to OUT (exit 3 when it has none).
gw_archpy() {
  python3 - "$@" <<'PY'
import hashlib, json, os, struct, subprocess, sys

def die(msg):
    sys.stderr.write("FAIL: %s\n" % msg)
    sys.exit(1)

def git(repo, *args, inp=None, check=True):
    p = subprocess.run(["git", "-C", repo] + list(args), input=inp, capture_output=True, text=True)
    if check and p.returncode != 0:
        die("git %s in %s: %s" % (" ".join(args), repo, p.stderr.strip()))
    return p

def parse_segment(path, what):
    d = open(path, "rb").read()
    if len(d) < 20 + 48 or d[:6] != b"GWSEG\0":
        die("%s: not a segment (magic/size)" % what)
    ver, flags, h, raw = struct.unpack(">HIII", d[6:20])
    if ver != 1:
        die("%s: version %d" % (what, ver))
    b, i = struct.unpack(">QQ", d[-48:-32])
    if 20 + h + b + i + 48 != len(d):
        die("%s: 20+H(%d)+B(%d)+I(%d)+48 != size %d" % (what, h, b, i, len(d)))
    if hashlib.sha256(d[:-32]).digest() != d[-32:]:
        die("%s: trailer SHA-256 does not match the content" % what)
    return d[20 + h:20 + h + b], d[20 + h + b:20 + h + b + i]

def parse_bundle(bundle, what):
    end = bundle.find(b"\n\n")
    if not bundle.startswith(b"# v2 git bundle\n") or end < 0:
        die("%s: not a v2 bundle: %r" % (what, bundle[:40]))
    prereq, refs = [], {}
    for line in bundle[16:end].decode().split("\n"):
        if not line:
            continue
        if line.startswith("-"):
            prereq.append(line[1:].split(" ")[0])
        else:
            oid, name = line.split(" ", 1)
            if name in refs:
                die("%s: ref %s listed twice in the bundle" % (what, name))
            refs[name] = oid
    pack = bundle[end + 2:]
    if pack[:4] != b"PACK" or len(pack) < 32:
        die("%s: no pack after the bundle header" % what)
    if hashlib.sha1(pack[:-20]).digest() != pack[-20:]:
        die("%s: pack trailer SHA-1 mismatch" % what)
    return prereq, refs, struct.unpack(">I", pack[8:12])[0], pack

def idx_oids(idx, what):
    if idx[:8] != b"\377tOc\0\0\0\2":
        die("%s: pack index is not v2" % what)
    n = struct.unpack(">I", idx[8 + 255 * 4:8 + 256 * 4])[0]
    base = 8 + 1024
    return [idx[base + 20 * k:base + 20 * k + 20].hex() for k in range(n)]

def state(repo):
    out = git(repo, "for-each-ref", "--format=%(objectname) %(refname)").stdout
    p = git(repo, "symbolic-ref", "-q", "HEAD", check=False)
    head = p.stdout.strip() if p.returncode == 0 else git(repo, "rev-parse", "HEAD").stdout.strip()
    return out + "HEAD %s\n" % head

def replay(rel, dest, states):
    gw = os.environ["GITWAL_BIN"]
    store = os.path.join(os.environ["GITWAL_STATE_DIR"], "store")
    p = subprocess.run([gw, "log", "--repo", rel, "--json"], capture_output=True, text=True)
    if p.returncode != 0:
        die("gitwal log --repo %s --json: %s" % (rel, p.stderr))
    try:
        doc = json.loads(p.stdout)
    except ValueError as e:
        die("gitwal log --json is not JSON: %s" % e)
    recs = doc["records"]
    if doc["repository"] != rel:
        die("log repository %r != %r" % (doc["repository"], rel))
    lsns = [r["lsn"] for r in recs]
    if lsns != list(range(1, len(recs) + 1)):
        die("%s: LSNs are not 1..N: %s" % (rel, lsns))
    if not recs or recs[0]["kind"] != "full":
        die("%s: the first record is not a full backup" % rel)
    repo = os.path.join(dest, rel)
    os.makedirs(states, exist_ok=True)
    deleted = False
    tmpb = os.path.join(dest, ".seg.bundle")
    for r in recs:
        what = "%s@%d" % (rel, r["lsn"])
        if r["kind"] == "full":
            p = subprocess.run([gw, "restore", "--to", dest, "--repo", rel, "--lsn", str(r["lsn"]), "--force"],
                               capture_output=True, text=True)
            if p.returncode != 0:
                die("restore %s: %s" % (what, p.stderr))
            deleted = False
        else:
            if deleted:
                die("%s: a segment after the repository was deleted" % what)
            ups = r["updates"]
            if not ups:
                die("%s: a segment without updates" % what)
            bundle, idx = parse_segment(os.path.join(store, r["key"]), what)
            newvals = {u["ref"]: u["new"] for u in ups if u["kind"] == "ref" and u["new"]}
            if bundle:
                prereq, brefs, nobj, pack = parse_bundle(bundle, what)
                if nobj != r["objects"]:
                    die("%s: pack has %d objects, log says %d" % (what, nobj, r["objects"]))
                oids = idx_oids(idx, what) if idx else []
                if len(oids) != nobj:
                    die("%s: index lists %d objects, pack has %d" % (what, len(oids), nobj))
                if idx and idx[-40:-20] != pack[-20:]:
                    die("%s: index's pack checksum differs from the pack's" % what)
                # A detached HEAD's new value may be listed as "HEAD" or not at all.
                if "HEAD" in brefs and brefs["HEAD"] != newvals.get("HEAD"):
                    die("%s: bundle lists HEAD %s, the update says %s" % (what, brefs["HEAD"], newvals.get("HEAD")))
                if {k: v for k, v in brefs.items() if k != "HEAD"} != {k: v for k, v in newvals.items() if k != "HEAD"}:
                    die("%s: bundle refs %s != new values of the updates %s" % (what, brefs, newvals))
                if prereq:
                    out = git(repo, "cat-file", "--batch-check", inp="\n".join(prereq) + "\n").stdout
                    if "missing" in out:
                        die("%s: a prerequisite was never archived: %s" % (what, out))
                if oids:
                    out = git(repo, "cat-file", "--batch-check", inp="\n".join(oids) + "\n").stdout
                    dup = [l.split()[0] for l in out.splitlines() if not l.endswith("missing")]
                    if dup:
                        die("%s: %d object(s) were archived before (a segment carries only new objects): %s"
                            % (what, len(dup), dup[:5]))
                with open(tmpb, "wb") as f:
                    f.write(bundle)
                git(repo, "bundle", "unbundle", tmpb)
                os.unlink(tmpb)
            else:
                if r["objects"] != 0 or newvals:
                    die("%s: no bundle but objects=%d, new values %s" % (what, r["objects"], newvals))
            dels = [u for u in ups if u["kind"] == "ref" and not u["new"] and u["ref"] != "HEAD"]
            sets = [u for u in ups if u["kind"] == "ref" and u["new"] and u["ref"] != "HEAD"]
            z = "0" * 40
            if dels:
                git(repo, "update-ref", "--stdin", inp="".join("delete %s %s\n" % (u["ref"], u["old"] or z) for u in dels))
            if sets:
                git(repo, "update-ref", "--stdin",
                    inp="".join("update %s %s %s\n" % (u["ref"], u["new"], u["old"] or z) for u in sets))
            for u in ups:
                if u["kind"] == "symref":
                    if u.get("new_target"):
                        git(repo, "symbolic-ref", u["ref"], u["new_target"])
                elif u["kind"] == "ref" and u["ref"] == "HEAD" and u["new"]:
                    git(repo, "update-ref", "--no-deref", "HEAD", u["new"])
                elif u["kind"] == "deleted":
                    deleted = True
                elif u["kind"] not in ("ref", "created"):
                    die("%s: unknown update kind %r" % (what, u["kind"]))
            if deleted:
                if git(repo, "for-each-ref").stdout:
                    die("%s: 'deleted' but refs remain after applying the segment" % what)
        st = "DELETED\n" if deleted else state(repo)
        open(os.path.join(states, "%d.state" % r["lsn"]), "w").write(st)
    open(os.path.join(states, "final.state"), "w").write(st)
    if not deleted:
        p = git(repo, "fsck", "--full", "--no-progress", check=False)
        if p.returncode != 0:
            die("%s: git fsck --full of the replayed repository: %s" % (rel, p.stderr))
    print(len(recs))

cmd = sys.argv[1]
if cmd == "replay":
    replay(sys.argv[2], sys.argv[3], sys.argv[4])
elif cmd == "bundle":
    b, _ = parse_segment(sys.argv[2], sys.argv[2])
    if not b:
        sys.exit(3)
    open(sys.argv[3], "wb").write(b)
else:
    die("gw_archpy: unknown command " + cmd)
PY
}

# assert_replay REL LIVE: replaying REL's archive (full + segments) gives LIVE's refs and HEAD
# (or DELETED when LIVE is gone) and passes fsck; the states after each LSN are left in
# $T/replay.<enc>/states/<lsn>.state.
assert_replay() {
  local rel=$1 live=$2 d
  d=$T/replay.$(enc_rel "$rel")
  rm -rf "$d"; mkdir -p "$d/root"
  gw_archpy replay "$rel" "$d/root" "$d/states" >/dev/null || fail "replay of the archive of $rel"
  diff <(live_state "$live") "$d/states/final.state" >&2 || fail "replayed archive of $rel differs from $live"
}

# ---- the archiver as a background service ----
AR_PID=
# archiver_start LOG ARGS...: start 'gitwal archive ARGS' in the background (stderr to LOG) and
# wait for its event=start line and its start-up catch-up (the first idle moment).
archiver_start() {
  local log=$1; shift
  : > "$log"
  "$GITWAL_BIN" archive "$@" 2>>"$log" &
  AR_PID=$!
  wait_log "$log" 'event=start' 1 20 || fail "archiver did not start: $(cat "$log")"
}
# archiver_stop LOG: SIGTERM; the archiver must exit 0 and log event=stop.
archiver_stop() {
  local log=$1 rc=0
  kill -TERM "$AR_PID"
  wait "$AR_PID" || rc=$?
  AR_PID=
  [ $rc -eq 0 ] || fail "archiver exited $rc after SIGTERM: $(tail -20 "$log")"
  grep -q 'event=stop' "$log" || fail "no event=stop after SIGTERM"
}
# archiver_kill: SIGKILL the archiver (a crash).
archiver_kill() {
  kill -KILL "$AR_PID" 2>/dev/null || true
  wait "$AR_PID" 2>/dev/null || true
  AR_PID=
}
# wait_log LOG PATTERN COUNT SECONDS: until LOG has COUNT lines matching PATTERN (grep -E); 1 on timeout.
wait_log() {
  local log=$1 pat=$2 n=$3 secs=$4 i
  for i in $(seq 1 $((secs * 20))); do
    [ "$(grep -Ec -- "$pat" "$log" || true)" -ge "$n" ] && return 0
    if [ -n "$AR_PID" ] && ! kill -0 "$AR_PID" 2>/dev/null; then
      echo "archiver died: $(tail -20 "$log")" >&2; return 1
    fi
    sleep 0.05
  done
  return 1
}
# count_log LOG PATTERN: number of lines of LOG matching PATTERN (grep -E).
count_log() { grep -Ec -- "$2" "$1" || true; }

# An archiver left running by a failed test is killed on exit (then the usual cleanup runs):
# AR_PID, and AR_PIDS for a test that runs several.
_gw_orig_exit_trap=$(trap -p EXIT)
_gw_trap_cmd() { eval "set -- ${_gw_orig_exit_trap#trap -- }"; printf '%s' "${1:-}"; }
_gw_orig_exit_cmd=$(_gw_trap_cmd)
_gw_arch_exit() {
  local rc=$?
  set +e
  for p in ${AR_PID:-} ${AR_PIDS:-}; do kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  (exit $rc)
  eval "$_gw_orig_exit_cmd"
}
trap _gw_arch_exit EXIT

# assert_updates REL LSN BEFORE AFTER: record LSN of REL is a segment whose updates are exactly
# the difference between the repo_state files BEFORE and AFTER (AFTER may hold "DELETED": every
# ref deleted plus a "deleted" update): same refs, same old and new values, HEAD retargets.
assert_updates() {
  arch_log "$1" > "$T/updates.log.json"
  python3 - "$1" "$2" "$3" "$4" "$T/updates.log.json" <<'PY' || fail "updates of $1@$2 (see above)"
import json, sys
rel, lsn, before, after, logf = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
def load(path):
    refs, head, deleted = {}, None, False
    for line in open(path).read().splitlines():
        if line == "DELETED":
            deleted = True
        elif line.startswith("HEAD "):
            head = line[5:]
        elif line:
            oid, name = line.split(" ", 1)
            refs[name] = oid
    return refs, head, deleted
r1, h1, _ = load(before)
r2, h2, gone = load(after)
exp = []
for name in sorted(set(r1) | set(r2)):
    if r1.get(name) != r2.get(name):
        exp.append(("ref", name, r1.get(name, ""), r2.get(name, "")))
if gone:
    exp.append(("deleted", None, None, None))
elif h1 != h2:
    s1, s2 = h1.startswith("refs/"), h2.startswith("refs/")
    if s1 or s2:
        exp.append(("symref", "HEAD", h1 if s1 else "", h2 if s2 else ""))
    if not (s1 and s2):
        o1, o2 = ("" if s1 else h1), ("" if s2 else h2)
        if o1 != o2:
            exp.append(("ref", "HEAD", o1, o2))
doc = json.load(open(logf))
recs = [r for r in doc["records"] if r["lsn"] == lsn]
if len(recs) != 1 or recs[0]["kind"] != "segment":
    sys.exit("FAIL: %s: LSN %d is not one segment record: %s" % (rel, lsn, recs))
got = []
for u in recs[0]["updates"]:
    if u["kind"] == "ref":
        got.append(("ref", u["ref"], u["old"], u["new"]))
    elif u["kind"] == "symref":
        got.append(("symref", u["ref"], u["old_target"], u["new_target"]))
    else:
        got.append((u["kind"], None, None, None))
key = lambda t: tuple(x or "" for x in t)
if sorted(got, key=key) != sorted(exp, key=key):
    sys.stderr.write("FAIL: %s@%d updates differ from the change\n  expected: %s\n  archived: %s\n" % (rel, lsn, sorted(exp, key=key), sorted(got, key=key)))
    sys.exit(1)
PY
}

# push_commit REL [BRANCH]: one new commit (commit, tree, blob) on BRANCH (main), pushed.
push_commit() {
  local rel=$1 br=${2:-main} w=$T/work/$1
  git -C "$w" checkout -q "$br" 2>/dev/null || git -C "$w" checkout -q -b "$br"
  echo "change $RANDOM $RANDOM $(date +%s%N)" >> "$w/file.txt"
  git -C "$w" commit -qam "change on $br"
  git -C "$w" push -q origin "$br" 2>/dev/null
}

# wait_archived SECONDS REL...: until the archive's newest state of each REL (gitwal restore --dry-run)
# equals the live repository under $T/root (absent from both when deleted); 1 on timeout. Once it
# holds, nothing more is written for these repositories until they change: what a test waits for
# before it asserts that nothing else happened (never a quiet period, which load can stretch).
wait_archived() {
  local secs=$1; shift
  python3 "$GITWAL_SOURCE_DIR/tests/integration/pitr_check.py" caught-up "$T/root" "$secs" "$@"
}


# no_lsn_twice STOREDIR: in a file store, no LSN holds a segment that is not its full backup's claim.
no_lsn_twice() {
  python3 - "$1" <<'PY' || fail "an LSN holds two records"
import os, sys, json
root = sys.argv[1] + "/repos"
bad = []
for d in os.listdir(root):
    names = set(os.listdir(os.path.join(root, d)))
    for n in names:
        if n.endswith(".full.manifest") and n[:20] + ".seg" in names:
            head = open(os.path.join(root, d, n[:20] + ".seg"), "rb").read()
            if b'"full_backup":true' not in head:
                bad.append(d + "/" + n[:20])
if bad:
    sys.exit("LSNs used twice: %s" % bad)
PY
}

# last_lsn LOG REL: the LSN of REL's last event=segment/full line in LOG.
last_lsn() { grep -E "event=(segment|full) repo=$2 " "$1" | tail -1 | sed -n 's/.* lsn=\([0-9]*\).*/\1/p'; }

# pitr_flip FILE OFFSET [MASK]: XOR one byte of FILE (made writable first: stored files are 0444).
pitr_flip() {
  local f=$1 off=$2 mask=${3:-1} b
  chmod u+w "$f"
  b=$(od -An -tu1 -j "$off" -N1 "$f" | tr -d ' ')
  [ -n "$b" ] || fail "pitr_flip: $f has no byte at $off"
  printf "\\$(printf %03o $((b ^ mask)))" | dd of="$f" bs=1 seek="$off" conv=notrunc status=none
}

# ---- object pools (DESIGN.md 19) ----

# pool_network: GitLab's fork network under $T/root: a source SRC, a pool P cloned from it and
# repacked, and forks F1 and F2 cloned from the source, linked to the pool (F1 by a relative,
# F2 by an absolute alternates path) and repacked local-only, as Gitaly links them. Sets R,
# SRC, P, F1 and F2.
pool_network() {
  R=$T/root
  SRC=@hashed/aa/bb/src.git P=@pools/5f/9a/pool.git F1=@hashed/cc/dd/f1.git F2=@hashed/ee/ff/f2.git
  mkdir -p "$R/@hashed/aa/bb" "$R/@hashed/cc/dd" "$R/@hashed/ee/ff" "$R/@pools/5f/9a"
  make_repo "$SRC" 4
  git clone -q --bare "$R/$SRC" "$R/$P"
  git -C "$R/$P" repack -q -a -d
  pool_link_fork "$F1" "../../../../../$P/objects"
  pool_link_fork "$F2" "$R/$P/objects"
}

# pool_link_fork REL ALTERNATES: a fork REL cloned from the source, linked and repacked local-only.
pool_link_fork() {
  git clone -q --bare "$R/$SRC" "$R/$1"
  echo "$2" > "$R/$1/objects/info/alternates"
  git -C "$R/$1" repack -q -a -d -l
}

# push_to REL [BRANCH]: one commit on BRANCH (main) of REL, made in a scratch clone.
push_to() {
  local rel=$1 branch=${2:-main} w=$T/w.$RANDOM$RANDOM
  git clone -q "$R/$rel" "$w" 2>/dev/null
  git -C "$w" checkout -q -B "$branch"
  echo "$rel $branch $RANDOM" >> "$w/file.txt"
  git -C "$w" add file.txt
  git -C "$w" commit -qm "to $rel $branch"
  git -C "$w" push -q origin "$branch"
  rm -rf "$w"
}

# The file store's directory of REL: its key prefix, '@' percent-encoded too.
store_dir() { printf '%s/repos/%s' "$GITWAL_STATE_DIR/store" "$(enc_rel "$1" | sed 's/@/%40/g')"; }
