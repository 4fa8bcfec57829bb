# Bad input to backup and restore: each is refused with a clear one-line
# error naming what was wrong, a non-zero exit, and nothing written to the
# store (or, at restore, nothing left at the target).
source "$(dirname "$0")/lib.sh"

# refused DESCRIPTION RC PATTERN CMD...: CMD exits with RC (or any non-zero if RC is '!0'),
# its stderr matches PATTERN, and the store is exactly as before.
refused() {
  local what=$1 want=$2 pattern=$3 rc=0 err; shift 3
  store_snapshot > "$T/store.before"
  "$@" >"$T/refused.out" 2>"$T/refused.err" || rc=$?
  err=$(cat "$T/refused.err")
  if [ "$want" = '!0' ]; then
    [ $rc -ne 0 ] || fail "$what: expected failure, got success: $(cat "$T/refused.out")"
  else
    [ $rc -eq "$want" ] || fail "$what: exit $rc, expected $want: $err"
  fi
  grep -Eq -- "$pattern" "$T/refused.err" || fail "$what: stderr does not match '$pattern': $err"
  # The error is one line (backup also prints its summary line).
  [ "$(grep -Ev '^gitwal (backup|restore): [0-9]+ repositories, ' "$T/refused.err" | wc -l)" -eq 1 ] ||
    fail "$what: expected a one-line error, got: $err"
  diff "$T/store.before" <(store_snapshot) >&2 || fail "$what: the store changed"
  pass "$what"
}

make_repo good.git 3
backup_ok good.git >/dev/null     # the store holds something that must never change

# --- backup: where and what ---------------------------------------------------------
refused "missing root" 1 "root $T/nope does not exist" gitwal backup --root "$T/nope" good.git
grep -q "^failed good.git: .*$T/nope" "$T/refused.out" || fail "missing root: no 'failed' line"
refused "missing repository" 1 'repository missing.git not found' gitwal backup missing.git
grep -q '^failed missing.git: ' "$T/refused.out" || fail "missing repository: no 'failed' line"
mkdir -p "$T/root/plain"; echo x > "$T/root/plain/file"
refused "a directory that is not a repository" 1 'plain.*not a bare Git repository' gitwal backup plain
echo x > "$T/root/afile.git"
refused "a file, not a directory" 1 'afile.git.*not a bare Git repository' gitwal backup afile.git
git init -q "$T/root/nonbare"
refused "a non-bare repository" 1 'nonbare.*not a bare Git repository' gitwal backup nonbare
refused "'../x' as REL" 2 "'\.\./x'.*'\.\.'" gitwal backup ../x
refused "'/abs' as REL" 2 "'/abs'.*absolute" gitwal backup /abs
refused "'a/../good.git' as REL" 2 "'\.\.'" gitwal backup a/../good.git
refused "empty REL" 2 'empty' gitwal backup ''
refused "no repositories and no --all" 2 'name the repositories' gitwal backup
refused "--all with repositories" 2 'not both' gitwal backup --all good.git
refused "no root at all" 1 'no root directory' env -u GITWAL_ROOT "$GITWAL_BIN" backup good.git

# --- alternates ----------------------------------------------------------------------------
git clone -q --bare --shared "$T/root/good.git" "$T/root/alt.git"
[ -s "$T/root/alt.git/objects/info/alternates" ] || fail "setup: no alternates"
# Accepted (DESIGN.md 19): a fork of a pool under the root, in GitLab's layout too (a pool
# made by clone --bare, a fork linked to it by a relative or absolute path); test_pools.sh
# restores them.
backup_ok alt.git | grep_all -q '^ok alt.git ' || fail "alt.git not backed up"
mkdir -p "$T/root/@pools/cc/dd" "$T/root/@hashed/aa/bb"
git clone -q --bare "$T/root/good.git" "$T/root/@pools/cc/dd/p.git"
git clone -q --bare "$T/root/good.git" "$T/root/@hashed/aa/bb/fork.git"
echo "../../../../../@pools/cc/dd/p.git/objects" > "$T/root/@hashed/aa/bb/fork.git/objects/info/alternates"
backup_ok @hashed/aa/bb/fork.git | grep_all -q '^ok @hashed/aa/bb/fork.git ' || fail "fork not backed up"
echo "$T/root/@pools/cc/dd/p.git/objects" > "$T/root/@hashed/aa/bb/fork.git/objects/info/alternates"
backup_ok @hashed/aa/bb/fork.git | grep_all -q '^ok @hashed/aa/bb/fork.git ' || fail "fork (absolute path) not backed up"
pass "a fork linked to its pool by a relative or an absolute path is backed up"
# What DESIGN.md 19 refuses, each naming the repository and the path: an alternate outside
# the root, a loop, one that does not exist, a directory under the root that is not a
# repository's objects, a pool with alternates of its own.
git clone -q --bare "$T/root/good.git" "$T/outside.git"
git clone -q --bare "$T/root/good.git" "$T/root/escape.git"
echo "../../../outside.git/objects" > "$T/root/escape.git/objects/info/alternates"
refused "alternates leaving the root" 1 \
  "repository escape.git: alternate \.\./\.\./\.\./outside\.git/objects .*leaves the root" gitwal backup escape.git
for r in loop1 loop2; do git clone -q --bare "$T/root/good.git" "$T/root/$r.git"; done
echo "../../loop2.git/objects" > "$T/root/loop1.git/objects/info/alternates"
echo "$T/root/loop1.git/objects" > "$T/root/loop2.git/objects/info/alternates"
refused "alternates looping" 1 "repository loop1.git: alternate $T/root/loop1.git/objects .*loops back" \
  gitwal backup loop1.git
git clone -q --bare "$T/root/good.git" "$T/root/gone.git"
echo "../../nowhere.git/objects" > "$T/root/gone.git/objects/info/alternates"
refused "alternates naming nothing" 1 'repository gone.git: alternate \.\./\.\./nowhere\.git/objects .*is not a directory' \
  gitwal backup gone.git
git clone -q --bare "$T/root/good.git" "$T/root/notrepo.git"
mkdir -p "$T/root/plain/objects"
echo "../../plain/objects" > "$T/root/notrepo.git/objects/info/alternates"
refused "alternates naming no repository" 1 \
  "repository notrepo.git: alternate $T/root/plain/objects is not the objects directory of a repository under the root" \
  gitwal backup notrepo.git
git clone -q --bare --shared "$T/root/alt.git" "$T/root/chain.git"
refused "alternates of alternates" 1 'repository chain.git: its alternates reach 2 object directories' gitwal backup chain.git
git init -q --bare --object-format=sha256 "$T/root/pool256.git"
git clone -q --bare "$T/root/good.git" "$T/root/fork1.git"
echo "../../pool256.git/objects" > "$T/root/fork1.git/objects/info/alternates"
refused "alternates of another object format" 1 \
  "repository fork1.git: alternate $T/root/pool256.git/objects is the objects of pool256.git, a repository of another object format" \
  gitwal backup fork1.git
# An alternates file with comments only names nothing (git reads none): backed up.
git clone -q --bare "$T/root/good.git" "$T/root/comments.git"
printf '# no pool\n\n' > "$T/root/comments.git/objects/info/alternates"
backup_ok comments.git >/dev/null
pass "an alternates file naming nothing is backed up"

# --- corrupt objects in the source --------------------------------------------------------
# corrupt_pack PACK OFFSET FIX: xor a byte; with FIX=1 rewrite the pack trailer and the
# index's pack checksum so that only the per-object CRC32 in the index can tell.
corrupt_pack() {
  chmod u+w "$1" "${1%.pack}.idx"
  python3 - "$1" "$2" "$3" <<'PY'
import sys, hashlib
pack, off, fix = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
d = bytearray(open(pack, "rb").read())
d[off] ^= 0x55
if fix:
    d[-20:] = hashlib.sha1(d[:-20]).digest()
    idx = pack[:-5] + ".idx"
    i = bytearray(open(idx, "rb").read())
    i[-40:-20] = d[-20:]
    i[-20:] = hashlib.sha1(i[:-20]).digest()
    open(idx, "wb").write(i)
open(pack, "wb").write(d)
PY
}
# big_commits REL N: N commits each adding an incompressible 20 KB file, pushed.
big_commits() {
  local i
  for i in $(seq 1 "$2"); do
    head -c 15000 /dev/urandom | base64 > "$T/work/$1/big-$i-$RANDOM"
    git -C "$T/work/$1" add -A && git -C "$T/work/$1" commit -qm "big $i"
  done
  git -C "$T/work/$1" push -q origin main 2>/dev/null
}
# blob_offset PACK: "offset size" of the first blob in PACK, middle of its data.
blob_middle() {
  git verify-pack -v "${1%.pack}.idx" | awk '$2 == "blob" && $4 > 1000 { print $5 + int($4 / 2); exit }'
}

# (1) one pack (the byte-for-byte path): a flipped byte breaks the pack checksum.
make_repo badpack.git 1
big_commits badpack.git 3
git -C "$T/root/badpack.git" gc -q
pack=$(ls "$T/root/badpack.git/objects/pack/"*.pack)
corrupt_pack "$pack" "$(blob_middle "$pack")" 0
git -C "$T/root/badpack.git" fsck --full >/dev/null 2>&1 && fail "setup: fsck accepts the corrupt pack"
refused "corrupt pack (single pack)" 1 'badpack.git.*corrupt' gitwal backup badpack.git

# (2) several packs (the splicing path), the trailer fixed up: the CRC32 catches it.
make_repo badcrc.git 1
big_commits badcrc.git 3
git -C "$T/root/badcrc.git" gc -q
git -C "$T/root/badcrc.git" config receive.unpackLimit 1
big_commits badcrc.git 1
[ "$(ls "$T/root/badcrc.git/objects/pack/"*.pack | wc -l)" = 2 ] || fail "setup: expected 2 packs"
pack=$(ls -S "$T/root/badcrc.git/objects/pack/"*.pack | head -1)
corrupt_pack "$pack" "$(blob_middle "$pack")" 1
git verify-pack "${pack%.pack}.idx" >/dev/null 2>&1 && fail "setup: verify-pack accepts the corrupt pack"
refused "corrupt object, CRC32 mismatch (several packs)" 1 'badcrc.git.*(CRC|corrupt)' gitwal backup badcrc.git

# (3) a corrupt loose object.
make_repo badloose.git 0
git -C "$T/root/badloose.git" config receive.unpackLimit 100000
big_commits badloose.git 2
obj=$(git -C "$T/root/badloose.git" rev-parse main:)         # the root tree, loose
f=$T/root/badloose.git/objects/${obj:0:2}/${obj:2}
[ -f "$f" ] || fail "setup: $obj is not loose"
chmod u+w "$f"
python3 -c 'import sys; p=sys.argv[1]; d=bytearray(open(p,"rb").read()); d[len(d)//2]^=0x55; open(p,"wb").write(d)' "$f"
refused "corrupt loose object" 1 "badloose.git.*$obj.*corrupt|badloose.git.*corrupt.*$obj" gitwal backup badloose.git

# (4) a loose object whose content does not match its name (valid zlib, wrong id).
make_repo badname.git 0
git -C "$T/root/badname.git" config receive.unpackLimit 100000
big_commits badname.git 1
obj=$(git -C "$T/root/badname.git" rev-parse main:)
other=$(git -C "$T/root/badname.git" rev-parse main)
f=$T/root/badname.git/objects/${obj:0:2}/${obj:2}
chmod u+w "$f"
cp "$T/root/badname.git/objects/${other:0:2}/${other:2}" "$f"
refused "loose object with the wrong content" 1 "badname.git.*$obj" gitwal backup badname.git

# A bad repository does not stop the good one.
before=$(store_snapshot | wc -l)
rc=0; gitwal backup badloose.git good.git badpack.git >"$T/two.out" 2>"$T/two.err" || rc=$?
[ $rc -eq 1 ] || fail "bad + good: exit $rc, expected 1"
grep -Eq '^ok good.git lsn=[0-9]+ ' "$T/two.out" || fail "bad + good: good.git not backed up: $(cat "$T/two.out")"
grep -q '^failed badloose.git: .*badloose.git' "$T/two.out" || fail "bad + good: no failed line for badloose.git"
grep -q '^failed badpack.git: .*badpack.git' "$T/two.out" || fail "bad + good: no failed line for badpack.git"
[ "$(store_snapshot | wc -l)" -eq $((before + 4)) ] || fail "bad + good: expected exactly 4 new keys (claim, bundle, idx, manifest)"
[ -z "$(find "$GITWAL_STATE_DIR/store/repos" -path '*bad*' -type f)" ] || fail "keys written for corrupt repositories"
pass "a bad repository does not stop the good one"

# --- an unwritable store ------------------------------------------------------------------
echo x > "$T/afile"
refused "store under a regular file" 1 "afile" gitwal backup --store "file://$T/afile/store" good.git
[ ! -e "$T/afile/store" ] && [ "$(cat "$T/afile")" = x ] || fail "store under a file: the file changed"
refused "store in /proc" 1 '/proc/x' gitwal backup --store file:///proc/x good.git
refused "unknown store scheme" 1 'unknown scheme|scheme' gitwal backup --store ftp://host/x good.git
refused "relative store URL" '!0' 'relative|absolute|file:' gitwal backup --store file://relative/path good.git
[ ! -e relative ] || fail "relative store URL created ./relative"

# --- write-once ----------------------------------------------------------------------------
# A stray key at LSN 5: the next backup takes LSN 6 and no stored file changes.
enc=$(enc_rel good.git)
mkdir -p "$GITWAL_STATE_DIR/store/repos/$enc"
echo stray > "$GITWAL_STATE_DIR/store/repos/$enc/00000000000000000005.full.idx"
chmod 0444 "$GITWAL_STATE_DIR/store/repos/$enc/00000000000000000005.full.idx"
store_snapshot > "$T/wo.before"
backup_ok good.git | grep_all -q '^ok good.git lsn=6 ' || fail "write-once: the backup after a stray LSN-5 key is not LSN 6"
diff <(cat "$T/wo.before") <(store_snapshot | grep -v '/00000000000000000006\.\(full\.\|seg\)') >&2 ||
  fail "write-once: an existing store file changed"
for f in "$GITWAL_STATE_DIR"/store/repos/*/*; do
  [ "$(stat -c %a "$f")" = 444 ] || fail "write-once: $f is not read-only ($(stat -c %a "$f"))"
done
[ -z "$(find "$GITWAL_STATE_DIR/store" -name '.tmp*')" ] || fail "temporary files left in the store"
pass "write-once: a new LSN, existing keys untouched"

# Backups racing for the same LSN: none overwrites, every manifest restores, losers say why.
store_snapshot > "$T/race.before"
for i in 1 2 3 4 5 6; do gitwal backup good.git >"$T/race.$i.out" 2>"$T/race.$i.err" & done
wait || true
oks=$(cat "$T"/race.*.out | grep -c '^ok good.git ' || true)
[ "$oks" -ge 1 ] || fail "race: no backup succeeded"
for i in 1 2 3 4 5 6; do
  grep -q '^ok ' "$T/race.$i.out" || grep_all -q 'already exists' "$T/race.$i.err" ||
    fail "race: backup $i failed without saying why: $(cat "$T/race.$i.err")"
done
diff "$T/race.before" <(store_snapshot | grep -F -f <(cut -c67- "$T/race.before")) >&2 ||
  fail "race: an existing store file changed"
lsns=$(cat "$T"/race.*.out | sed -n 's/^ok good.git lsn=\([0-9]*\) .*/\1/p' | sort -n)
[ "$(echo "$lsns" | uniq | wc -l)" = "$(echo "$lsns" | wc -l)" ] || fail "race: two backups reported the same LSN: $lsns"
for l in $lsns; do
  restore_ok "$T/race-$l" --repo good.git --lsn "$l" >/dev/null
  assert_same_repo "$T/root/good.git" "$T/race-$l/good.git"
done
pass "concurrent backups of one repository ($oks succeeded)"

# --- restore: bad stored data ----------------------------------------------------------------
make_repo r.git 4
line=$(backup_ok r.git); lsn=$(field "$line" lsn)
man=$(full_key r.git "$lsn" manifest); bun=$(full_key r.git "$lsn" bundle); idx=$(full_key r.git "$lsn" idx)
chmod u+w "$man" "$bun" "$idx"
cp "$man" "$T/man.orig"; cp "$bun" "$T/bun.orig"; cp "$idx" "$T/idx.orig"
restore_put_back() { cp "$T/man.orig" "$man"; cp "$T/bun.orig" "$bun"; cp "$T/idx.orig" "$idx"; }
# refused_restore DESCRIPTION PATTERN [DROP_INDEX]: restore of r.git fails, leaves no target.
refused_restore() {
  local what=$1 pattern=$2 dir=$T/rr.$RANDOM
  [ "${3:-}" = drop ] && rm -f "$GITWAL_STATE_DIR/index.db"
  refused "restore: $what" 1 "$pattern" gitwal restore --to "$dir" --repo r.git
  [ ! -e "$dir/r.git" ] || fail "restore: $what: the target exists"
  [ -z "$(ls -A "$dir" 2>/dev/null)" ] || fail "restore: $what: left $(ls -A "$dir")"
  restore_put_back
}
mkey="repos/$(enc_rel r.git)/$(printf '%020d' "$lsn").full.manifest"

echo '{"magic":"gitwal-full-backup","version":1,' > "$man"
refused_restore "malformed manifest JSON" "$mkey.*JSON|JSON.*$mkey" drop
python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); m["version"]=99; open(sys.argv[2],"w").write(json.dumps(m))' "$T/man.orig" "$man"
refused_restore "unknown manifest version" "$mkey.*version.*99|version 99" drop
python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); m["magic"]="something-else"; open(sys.argv[2],"w").write(json.dumps(m))' "$T/man.orig" "$man"
refused_restore "wrong manifest magic" "$mkey.*magic" drop
python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); del m["refs"]; open(sys.argv[2],"w").write(json.dumps(m))' "$T/man.orig" "$man"
refused_restore "manifest without refs" "$mkey.*refs" drop
python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); m["lsn"]=m["lsn"]+7; open(sys.argv[2],"w").write(json.dumps(m))' "$T/man.orig" "$man"
refused_restore "manifest of another LSN" "$mkey" drop
# With the index intact, a changed manifest is caught by the digest the index recorded.
gitwal index rebuild >/dev/null 2>&1
python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); m["refs"][0]["oid"]="0"*40; open(sys.argv[2],"w").write(json.dumps(m))' "$T/man.orig" "$man"
refused_restore "manifest changed after indexing" "$mkey.*(corrupt|SHA-256)"
# A flipped byte in the bundle's pack, in its header, and a truncated idx.
bkey="repos/$(enc_rel r.git)/$(printf '%020d' "$lsn").full.bundle"
ikey="repos/$(enc_rel r.git)/$(printf '%020d' "$lsn").full.idx"
flip() { python3 -c 'import sys; p=sys.argv[1]; o=int(sys.argv[2]); d=bytearray(open(p,"rb").read()); d[o]^=1; open(p,"wb").write(d)' "$1" "$2"; }
flip "$bun" $(( $(stat -c %s "$bun") - 30 ))
refused_restore "flipped byte in the bundle's pack" "$bkey.*(SHA-256|corrupt)"
flip "$bun" 5
refused_restore "flipped byte in the bundle header" "$bkey.*(SHA-256|corrupt)"
truncate -s 600 "$idx"
refused_restore "truncated idx" "$ikey"
flip "$idx" 100
refused_restore "flipped byte in the idx" "$ikey.*(SHA-256|corrupt)"
echo "extra" >> "$bun"
refused_restore "bundle with bytes appended" "$bkey"
rm -f "$bun"
refused_restore "missing bundle" "$bkey|bundle"
restore_ok "$T/after-all-that" --repo r.git >/dev/null
assert_same_repo "$T/root/r.git" "$T/after-all-that/r.git"
pass "restore works again with the original files"

# --- restore: targets -------------------------------------------------------------------------
mkdir -p "$T/busy/r.git"; echo keep > "$T/busy/r.git/mine"
refused "restore into a non-empty target" 1 'busy/r.git.*--force' gitwal restore --to "$T/busy" --repo r.git
[ "$(cat "$T/busy/r.git/mine")" = keep ] || fail "non-empty target was touched"
restore_ok "$T/busy" --repo r.git --force >/dev/null
[ ! -e "$T/busy/r.git/mine" ] || fail "--force did not replace the target"
assert_same_repo "$T/root/r.git" "$T/busy/r.git"
[ -z "$(ls -A "$T/busy" | grep -v '^r.git$')" ] || fail "--force left $(ls -A "$T/busy")"
pass "restore --force replaces a non-empty target"
mkdir -p "$T/emptytarget/r.git"
restore_ok "$T/emptytarget" --repo r.git >/dev/null
assert_same_repo "$T/root/r.git" "$T/emptytarget/r.git"
pass "restore into an existing empty target"
mkdir -p "$T/filetarget"; echo x > "$T/filetarget/r.git"
refused "restore over a file" 1 'filetarget/r.git' gitwal restore --to "$T/filetarget" --repo r.git --force
[ "$(cat "$T/filetarget/r.git")" = x ] || fail "restore replaced a file"
refused "restore of an unknown repository" 1 'nosuch.git' gitwal restore --to "$T/x" --repo nosuch.git
refused "restore --repo ../x" 2 "'\.\./x'" gitwal restore --to "$T/x" --repo ../x

# --- usage errors -----------------------------------------------------------------------------
refused "restore: unknown option" 2 "'--bogus'.*gitwal restore --help" gitwal restore --bogus --to "$T/x"
refused "restore: missing --to" 2 '--to' gitwal restore --repo r.git
refused "restore: --lsn without --repo" 2 '--lsn' gitwal restore --to "$T/x" --lsn 1
refused "restore: --lsn 0" 2 "--lsn.*'0'" gitwal restore --to "$T/x" --repo r.git --lsn 0
refused "restore: --lsn -1" 2 "--lsn.*'-1'" gitwal restore --to "$T/x" --repo r.git --lsn -1
refused "restore: --lsn abc" 2 "--lsn.*'abc'" gitwal restore --to "$T/x" --repo r.git --lsn abc
refused "restore: stray argument" 2 "'r.git'" gitwal restore --to "$T/x" r.git
refused "restore: --to without value" 2 "--to" gitwal restore --to
refused "backup: unknown option" 2 "'--bogus'.*gitwal backup --help" gitwal backup --bogus good.git
refused "backup: --jobs 0" 2 '--jobs' gitwal backup --jobs 0 good.git
refused "backup: --jobs x" 2 '--jobs' gitwal backup --jobs x good.git
[ ! -e "$T/x" ] || fail "a usage error created $T/x"

# --- archive: the metrics endpoint -------------------------------------------------------------
# The archiver counts whether or not it serves; an address it may not serve on is still refused.
refused "archive: a metrics address that is not loopback" 1 \
  "metrics address '0\.0\.0\.0:0': not a loopback address" gitwal archive --once --metrics-addr 0.0.0.0:0
refused "archive: a metrics address without a port" 1 "metrics address '127\.0\.0\.1': expected HOST:PORT" \
  gitwal archive --once --metrics-addr 127.0.0.1
