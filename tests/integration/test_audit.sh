# gitwal audit on a real archive (full backups from `gitwal backup`, segments
# from `gitwal archive --once`): clean, it exits 0; damaged in each way the
# archive can be damaged (a flipped byte in a segment, bundle, pack index or
# manifest; a truncated object; a segment deleted from the middle of a chain;
# stray keys; a writable file; a lost manifest; a lost index), it names the
# right kind, key and LSN and exits 1. Then --deep (restore + fsck, lag
# against the live root), --json, --sample and --max-duration resuming.
source "$(dirname "$0")/lib.sh"

STORE=$GITWAL_STATE_DIR/store
A=$(enc_rel g/a.git)
seg_key() { printf 'repos/%s/%020d.seg' "$(enc_rel "$1")" "$2"; }
part_key() { printf 'repos/%s/%020d.full.%s' "$(enc_rel "$1")" "$2" "$3"; }

push() { # push REL: one more commit on main
  echo "change $RANDOM" >> "$T/work/$1/file.txt"
  head -c 2000 /dev/urandom | base64 > "$T/work/$1/blob-$RANDOM"
  git -C "$T/work/$1" add -A
  git -C "$T/work/$1" commit -qm "change"
  git -C "$T/work/$1" push -q origin main
}
archive_once() { gitwal archive --once >/dev/null 2>"$T/archive.err" || fail "archive --once: $(cat "$T/archive.err")"; }

# ---- a real archive: g/a.git LSN 1 full, 2-4 segments, 5 full, 6 segment; b.git LSN 1 full, 2 segment ----
make_repo g/a.git 3
make_repo b.git 2
backup_ok g/a.git b.git >/dev/null
for i in 1 2 3; do push g/a.git; archive_once; done
push b.git; archive_once
backup_ok g/a.git >/dev/null
push g/a.git; archive_once
for k in "$(seg_key g/a.git 4)" "$(part_key g/a.git 5 manifest)" "$(seg_key g/a.git 6)" "$(seg_key b.git 2)"; do
  [ -f "$STORE/$k" ] || fail "the archive lacks $k: $(cd "$STORE" && find . -type f | sort)"
done
cp -a "$GITWAL_STATE_DIR" "$T/pristine"

# Restore the pristine archive (store and index) before each damage.
fresh() { chmod -R u+w "$GITWAL_STATE_DIR"; rm -rf "$GITWAL_STATE_DIR"; cp -a "$T/pristine" "$GITWAL_STATE_DIR"; }

# audit_ok ARGS...: exit 0, "clean".
audit_ok() {
  local rc=0
  gitwal audit "$@" >"$T/audit.out" 2>"$T/audit.err" || rc=$?
  [ $rc -eq 0 ] || fail "gitwal audit $* exited $rc: $(cat "$T/audit.out" "$T/audit.err")"
  grep -q '^clean: no problems found' "$T/audit.out" || fail "gitwal audit $*: no 'clean' line: $(cat "$T/audit.out")"
}

# audit_finds WHAT KIND REPO LSN KEY ARGS...: exit 1 and a problem line naming exactly that.
audit_finds() {
  local what=$1 kind=$2 repo=$3 lsn=$4 key=$5 rc=0; shift 5
  gitwal audit "$@" >"$T/audit.out" 2>"$T/audit.err" || rc=$?
  [ $rc -eq 1 ] || fail "$what: gitwal audit $* exited $rc (expected 1): $(cat "$T/audit.out" "$T/audit.err")"
  grep -qF "problem repo=$repo lsn=$lsn key=$key kind=$kind " "$T/audit.out" ||
    fail "$what: no 'problem repo=$repo lsn=$lsn key=$key kind=$kind' in: $(cat "$T/audit.out")"
  pass "$what: kind=$kind key=$key"
}

# flip FILE OFFSET: invert one byte in place.
flip() {
  chmod u+w "$1"
  python3 - "$1" "$2" <<'PY'
import sys
path, off = sys.argv[1], int(sys.argv[2])
with open(path, "r+b") as f:
    f.seek(off); b = f.read(1); f.seek(off); f.write(bytes([b[0] ^ 0xff]))
PY
  chmod 0444 "$1"   # only the content is damaged: the write-once check stays quiet
}
# The offset of the middle of a segment's bundle (its pack data).
seg_pack_middle() {
  python3 - "$1" <<'PY'
import sys, struct
d = open(sys.argv[1], "rb").read()
h = struct.unpack(">I", d[12:16])[0]
b, i = struct.unpack(">QQ", d[-48:-32])
assert b > 64, "segment without a pack"
print(20 + h + b // 2)
PY
}
manifest_field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["parts"]["bundle"][sys.argv[2]])' "$1" "$2"; }

# ---- clean ----
audit_ok
audit_ok --read-data
gitwal audit --read-data --json > "$T/clean.json" || fail "--json on a clean archive exited non-zero"
python3 - "$T/clean.json" <<'PY' || fail "JSON output of a clean archive"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["version"] == 1 and d["clean"] is True and d["problems"] == [] and d["stopped_early"] is False, d
c = d["checked"]
assert c["repositories"] == 2 and c["full_backups"] == 3 and c["segments"] == 5, c
assert c["records_checked"] == c["records_total"] == 8 and c["bytes_read"] > 0, c
PY
pass "clean archive: exit 0, JSON schema"

# ---- one flipped byte: only --read-data sees it ----
fresh
k=$(seg_key g/a.git 3)
flip "$STORE/$k" "$(seg_pack_middle "$STORE/$k")"
audit_ok
audit_finds "byte flipped in a segment's pack" checksum g/a.git 3 "$k" --read-data

fresh
k=$(part_key g/a.git 1 bundle)
m=$STORE/$(part_key g/a.git 1 manifest)
off=$(manifest_field "$m" pack_offset); size=$(manifest_field "$m" size)
flip "$STORE/$k" $((off + (size - off) / 2))
audit_ok
audit_finds "byte flipped in a bundle's pack" checksum g/a.git 1 "$k" --read-data
grep -qF "problem repo=g/a.git lsn=1 key=$k kind=pack " "$T/audit.out" || fail "the damaged pack's SHA-1 trailer check"

fresh
k=$(part_key g/a.git 5 idx)
flip "$STORE/$k" $(( $(stat -c %s "$STORE/$k") / 2 ))
audit_ok
audit_finds "byte flipped in a pack index" checksum g/a.git 5 "$k" --read-data

fresh
k=$(part_key g/a.git 1 manifest)
# Inside the "tool" value: the JSON stays valid, only its digest tells.
off=$(python3 -c 'import sys; d=open(sys.argv[1],"rb").read(); print(d.index(b"\"tool\":\"") + 9)' "$STORE/$k")
chmod u+w "$STORE/$k"; python3 - "$STORE/$k" "$off" <<'PY'
import sys
p, o = sys.argv[1], int(sys.argv[2])
d = bytearray(open(p, "rb").read()); d[o] = ord("G") if d[o] != ord("G") else ord("H"); open(p, "wb").write(d)
PY
chmod 0444 "$STORE/$k"
audit_finds "byte changed in a manifest" checksum g/a.git 1 "$k" --read-data
grep -q "kind=link" "$T/audit.out" && fail "a changed manifest is reported as a broken link too: $(cat "$T/audit.out")"
audit_finds "byte changed in a manifest (without --read-data)" checksum g/a.git 1 "$k"

# ---- truncated objects ----
fresh
k=$(seg_key g/a.git 3)
chmod u+w "$STORE/$k"; truncate -s -100 "$STORE/$k"; chmod 0444 "$STORE/$k"
audit_finds "truncated segment" size g/a.git 3 "$k"
fresh
k=$(part_key b.git 1 bundle)
chmod u+w "$STORE/$k"; truncate -s 50 "$STORE/$k"; chmod 0444 "$STORE/$k"
audit_finds "truncated bundle" size b.git 1 "$k" --read-data

# ---- a segment deleted from the middle of the chain ----
fresh
k=$(seg_key g/a.git 3)
rm -f "$STORE/$k"
audit_finds "segment deleted from the chain" missing g/a.git 3 "$k"
grep -q "kind=link" "$T/audit.out" && fail "the segment after a deleted one is reported as a broken link: $(cat "$T/audit.out")"
# Without the index to name it, it is a gap in the LSNs.
rm -f "$GITWAL_STATE_DIR"/index.db*
audit_finds "segment deleted, index gone" gap g/a.git 3 -

# ---- stray keys ----
fresh
echo junk > "$STORE/repos/$A/stray.txt"
echo junk > "$STORE/repos/junk"
audit_finds "stray key in a repository" unexpected g/a.git - "repos/$A/stray.txt"
audit_finds "stray key under repos/" unexpected - - "repos/junk"
k=$(seg_key g/a.git 7)
printf 'not a segment' > "$STORE/$k"
audit_finds "stray segment key: not in the index" unindexed g/a.git 7 "$k"
grep -qF "problem repo=g/a.git lsn=7 key=$k kind=corrupt " "$T/audit.out" || fail "stray segment's content: $(cat "$T/audit.out")"

# ---- write-once: a writable file (file stores have no versions) ----
fresh
k=$(seg_key b.git 2)
chmod 0644 "$STORE/$k"
audit_finds "writable stored file" writable b.git 2 "$k"

# ---- a full backup whose manifest is gone ----
fresh
rm -f "$STORE/$(part_key g/a.git 5 manifest)"
audit_finds "manifest deleted (the index knows it)" missing g/a.git 5 "$(part_key g/a.git 5 manifest)"
rm -f "$GITWAL_STATE_DIR"/index.db*
audit_finds "parts without manifest" no-manifest g/a.git 5 "$(part_key g/a.git 5 bundle)"
grep -qF "problem repo=g/a.git lsn=6 key=$(seg_key g/a.git 6) kind=base " "$T/audit.out" ||
  fail "the segment built on a lost full backup: $(cat "$T/audit.out")"

# ---- the index deleted: said once, the store audited alone ----
fresh
rm -f "$GITWAL_STATE_DIR"/index.db*
audit_finds "index deleted" index - - -
grep -q "kind=unindexed" "$T/audit.out" && fail "every key reported as unindexed: $(cat "$T/audit.out")"
[ "$(grep -c '^problem' "$T/audit.out")" -eq 1 ] || fail "index deleted: more than one problem: $(cat "$T/audit.out")"
[ ! -e "$GITWAL_STATE_DIR/index.db" ] || fail "the audit created an index"

# ---- exit 2: the audit cannot run ----
rc=0; gitwal audit --sample 0 >/dev/null 2>&1 || rc=$?
[ $rc -eq 2 ] || fail "bad --sample exited $rc"
rc=0; AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=y \
  gitwal audit --store "s3://gitwal-audit/p?endpoint=http://127.0.0.1:9&retries=0&path_style=true" >/dev/null 2>&1 || rc=$?
[ $rc -eq 2 ] || fail "unreachable store exited $rc"
pass "exit 2 for bad options and an unreachable store"

# ---- --deep ----
fresh
audit_ok --deep
grep -q '^deep: 2 repositories restored' "$T/audit.out" || fail "--deep summary: $(cat "$T/audit.out")"
audit_ok --deep --root "$T/root"
grep -q ', 0 lagging' "$T/audit.out" || fail "--deep --root on an up-to-date archive: $(cat "$T/audit.out")"
pass "--deep: clean, no lag"
push g/a.git
audit_finds "--deep --root after a push not archived" lag g/a.git 6 - --deep --root "$T/root"
grep -q 'refs/heads/main (archive' "$T/audit.out" || fail "the lag does not name the ref: $(cat "$T/audit.out")"
archive_once
cp -a "$GITWAL_STATE_DIR" "$T/pristine2"

# ---- --sample and --max-duration resume where the last run stopped ----
rm -f "$GITWAL_STATE_DIR/audit.state"
cursors=()
for run in 1 2 3; do
  rc=0; gitwal audit --sample 50 --json >"$T/s.json" || rc=$?
  [ $rc -eq 0 ] || fail "--sample run $run exited $rc"
  cursors+=("$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); c=d["checked"]; assert c["records_checked"]==(c["records_total"]+1)//2, c; print(d["resume_after"])' "$T/s.json")")
done
# Records in key order; each run checks the next half, starting after the last run's cursor.
python3 - "$STORE" "${cursors[@]}" <<'PY' || fail "--sample 50 cursors ${cursors[*]}"
import os, sys
store, got = sys.argv[1], sys.argv[2:]
# One record per LSN, named by its manifest (a full backup's claim is the .seg beside it), else its segment.
keys = sorted(os.path.relpath(os.path.join(d, f), store) for d, _, fs in os.walk(store + "/repos")
              for f in fs if f.endswith(".full.manifest")
              or (f.endswith(".seg") and f[:-4] + ".full.manifest" not in fs))
n = len(keys); q = (n + 1) // 2
want = [keys[(q * run - 1) % n] for run in (1, 2, 3)]
assert got == want, (got, want)
PY
grep -q "^resume_after ${cursors[2]}\$" "$GITWAL_STATE_DIR/audit.state" || fail "audit.state: $(cat "$GITWAL_STATE_DIR/audit.state")"
pass "--sample 50: each run continues after the last (${cursors[*]})"

rm -f "$GITWAL_STATE_DIR/audit.state"
rc=0; gitwal audit --max-duration 0.000001 --jobs 1 --json >"$T/m1.json" || rc=$?
[ $rc -eq 0 ] || fail "--max-duration exited $rc"
first=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["stopped_early"] is True and d["checked"]["records_checked"]==1, d; print(d["resume_after"])' "$T/m1.json")
gitwal audit --max-duration 0.000001 --jobs 1 >"$T/m2.out" || fail "--max-duration second run"
grep -q '^stopped early' "$T/m2.out" || fail "--max-duration: no 'stopped early' line: $(cat "$T/m2.out")"
second=$(sed -n 's/.*continues after \(.*\)$/\1/p' "$T/m2.out")
[ -n "$second" ] && [ "$second" != "$first" ] || fail "--max-duration did not resume: $first then $second"
pass "--max-duration: stops early, the next run continues ($first, then $second)"

# ---- --since: records after TIME ----
rc=0; gitwal audit --since "@$(( $(date +%s) + 3600 ))" --json >"$T/since.json" || rc=$?
[ $rc -eq 0 ] || fail "--since in the future exited $rc"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["checked"]["records_total"]==0, d' "$T/since.json" ||
  fail "--since in the future still checked records"
audit_ok --since 2000-01-01T00:00:00Z --repo b.git
pass "--since and --repo"
