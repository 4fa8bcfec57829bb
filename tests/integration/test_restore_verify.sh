#!/usr/bin/env bash
# Restore checks what it installs, beyond the store's own checksums: a store
# whose SHA-256s all agree (each damage below is followed by recomputing the
# index's checksum, the manifest's part digests, the manifest's digest in the
# next segment's prev_sha256 and every segment's trailer after it, as a
# forger would) must still not restore into a repository git fsck rejects.
# Each damage is tried on the restore of the full backup alone (--lsn 1) and
# on the point-in-time restore of the full and its segments (one joined
# pack); each must fail with a one-line error naming the repository and the
# key or LSN, exit non-zero, and leave nothing in the target.
source "$(dirname "$0")/lib.sh"

STORE=$GITWAL_STATE_DIR/store
DIR=$STORE/repos/a.git
key() { if [ "$2" = seg ]; then printf '%s/%020d.seg' "$DIR" "$1"; else printf '%s/%020d.full.%s' "$DIR" "$1" "$2"; fi; }

# forge.py: damage a stored pack or index precisely, and recompute the checksums that would reveal it.
cat >"$T/forge.py" <<'EOF'
import hashlib, json, os, stat, struct, sys, zlib

def rd(p):
    with open(p, 'rb') as f:
        return bytearray(f.read())

def wr(p, data):
    os.chmod(p, 0o644)
    with open(p, 'wb') as f:
        f.write(data)
    os.chmod(p, 0o444)

def bundle_pack_start(data, start):
    """The pack of a bundle starting at `start` follows the empty line ending its header."""
    return data.index(b'\n\n', start) + 2

def ranges(path, data):
    """(pack_start, pack_end, idx_start, idx_end) of a .seg, or of a .full.bundle / .full.idx pair."""
    if path.endswith('.seg'):
        h = struct.unpack('>I', data[12:16])[0]
        b, i = struct.unpack('>QQ', data[-48:-32])
        bs = 20 + h
        return bundle_pack_start(data, bs), bs + b, bs + b, bs + b + i
    if path.endswith('.full.bundle'):
        return bundle_pack_start(data, 0), len(data), None, None
    return None, None, 0, len(data)

def reseal_idx(data, i0, i1):
    data[i1 - 20:i1] = hashlib.sha1(bytes(data[i0:i1 - 20])).digest()

def idx_tables(data, i0):
    n = struct.unpack('>I', data[i0 + 8 + 255 * 4:i0 + 8 + 256 * 4])[0]
    oids = i0 + 8 + 1024
    return n, oids, oids + 20 * n, oids + 24 * n

def first_object(data, i0):
    """Index position of the object at the lowest offset (the pack's first)."""
    n, _, _, ofs = idx_tables(data, i0)
    offs = [struct.unpack('>I', data[ofs + 4 * k:ofs + 4 * k + 4])[0] for k in range(n)]
    return min(range(n), key=lambda k: offs[k]), sorted(offs)

def main():
    op, path = sys.argv[1], sys.argv[2]
    data = rd(path)
    p0, p1, i0, i1 = ranges(path, data)
    if op == 'flip-pack':            # a byte inside the first object's compressed data
        data[p0 + 12 + 4] ^= 0x01
    elif op == 'flip-pack-fix-crc':  # the same, the index's CRC32 of that object recomputed (the pack's SHA-1 still tells)
        data[p0 + 12 + 4] ^= 0x01
        ipath = path[:-len('.bundle')] + '.idx' if path.endswith('.full.bundle') else path
        idx = data if ipath == path else rd(ipath)
        j0, j1 = (i0, i1) if ipath == path else (0, len(idx))
        pos, offs = first_object(idx, j0)
        n, _, crcs, _ = idx_tables(idx, j0)
        end = offs[1] if n > 1 else (p1 - p0) - 20
        idx[crcs + 4 * pos:crcs + 4 * pos + 4] = struct.pack('>I', zlib.crc32(bytes(data[p0 + 12:p0 + end])))
        reseal_idx(idx, j0, j1)
        if ipath != path:
            wr(ipath, idx)
    elif op == 'fanout-max':         # the index claims 2^32-1 objects
        data[i0 + 8 + 255 * 4:i0 + 8 + 256 * 4] = b'\xff\xff\xff\xff'
        reseal_idx(data, i0, i1)
    elif op == 'idx-crc':            # one CRC32 entry damaged
        n, _, crcs, _ = idx_tables(data, i0)
        data[crcs] ^= 0x01
        reseal_idx(data, i0, i1)
    elif op == 'idx-offset':         # the first object said to start one byte later
        n, _, _, ofs = idx_tables(data, i0)
        pos, _ = first_object(data, i0)
        data[ofs + 4 * pos:ofs + 4 * pos + 4] = struct.pack('>I', 13)
        reseal_idx(data, i0, i1)
    elif op == 'idx-unsorted':       # two ids swapped (with their CRCs and offsets: the pack still agrees)
        n, oids, crcs, ofs = idx_tables(data, i0)
        for base, width in ((oids, 20), (crcs, 4), (ofs, 4)):
            a, b = data[base:base + width], data[base + width:base + 2 * width]
            data[base:base + width], data[base + width:base + 2 * width] = b, a
        reseal_idx(data, i0, i1)
    elif op == 'header-replace':     # text in a segment's JSON header (same length)
        old, new = sys.argv[3].encode(), sys.argv[4].encode()
        h = struct.unpack('>I', data[12:16])[0]
        hdr = data[20:20 + h]
        assert struct.unpack('>I', data[8:12])[0] & 1 == 0, 'LZ4 header'
        assert len(old) == len(new) and hdr.count(old) >= 1, 'not in the header'
        data[20:20 + h] = hdr.replace(old, new, 1)
    elif op == 'manifest-set':       # a field of a manifest: manifest-set FILE a.b.c JSONVALUE
        m = json.loads(bytes(data))
        *parts, last = sys.argv[3].split('.')
        o = m
        for k in parts:
            o = o[int(k)] if isinstance(o, list) else o[k]
        o[int(last) if isinstance(o, list) else last] = json.loads(sys.argv[4])
        data = bytearray(json.dumps(m, separators=(',', ':')).encode())
    else:
        sys.exit('unknown op ' + op)
    wr(path, data)

def reseal(repo_dir):
    """Recompute every digest the store's own checks use, in LSN order."""
    prev = None
    for name in sorted(os.listdir(repo_dir)):
        p = os.path.join(repo_dir, name)
        if name.endswith('.full.manifest'):
            m = json.loads(open(p, 'rb').read())
            for part in ('bundle', 'idx'):
                d = rd(os.path.join(repo_dir, os.path.basename(m['parts'][part]['key'])))
                m['parts'][part]['size'] = len(d)
                m['parts'][part]['sha256'] = hashlib.sha256(bytes(d)).hexdigest()
            text = json.dumps(m, separators=(',', ':')).encode()
            wr(p, bytearray(text))
            prev = hashlib.sha256(text).hexdigest()
        elif name.endswith('.seg'):
            d = rd(p)
            h = struct.unpack('>I', d[12:16])[0]
            hdr = json.loads(bytes(d[20:20 + h]))
            if hdr.get('full_backup'):
                continue  # a full backup's claim on its LSN: the chain goes through its manifest
            if prev and hdr['prev_sha256'] != prev:
                d[20:20 + h] = d[20:20 + h].replace(hdr['prev_sha256'].encode(), prev.encode(), 1)
            d[-32:] = hashlib.sha256(bytes(d[:-32])).digest()
            wr(p, d)
            prev = d[-32:].hex()

if __name__ == '__main__':
    if sys.argv[1] == 'reseal':
        reseal(sys.argv[2])
    else:
        main()
EOF
forge() { python3 "$T/forge.py" "$@" || fail "forge.py $*"; }

# A full backup (LSN 1: main and a tag), then two pushes archived as segments with objects (LSN 2, 3).
make_repo a.git 3
git -C "$T/work/a.git" tag t1 && git -C "$T/work/a.git" push -q origin t1
archive_once
for i in 2 3; do
  echo "change $i" >>"$T/work/a.git/file.txt"
  git -C "$T/work/a.git" commit -qam "change $i" && git -C "$T/work/a.git" push -q origin main
  archive_once
done
[ -f "$(key 1 manifest)" ] && [ -f "$(key 2 seg)" ] && [ -f "$(key 3 seg)" ] ||
  fail "test setup: expected a full backup at LSN 1 and segments at LSN 2 and 3: $(ls "$DIR")"
TRUTH=$(repo_state "$T/root/a.git")
cp -a "$STORE" "$T/pristine"

# The untouched store restores both ways (and the forger's resealing alone changes nothing that matters).
forge reseal "$DIR"
gitwal index rebuild >/dev/null
restore_ok "$T/ok1" --repo a.git --lsn 1 >/dev/null
git -C "$T/ok1/a.git" fsck --full --no-progress >/dev/null 2>&1 || fail "the restore of the full backup fails fsck"
restore_ok "$T/ok" --repo a.git >/dev/null
assert_same_repo "$T/root/a.git" "$T/ok/a.git"
pass "an intact store restores (full alone and full + segments)"

# damaged WHAT PATTERN MODE...: after the damage (done by the caller), restore the way MODE says
# (--lsn 1 | latest) into a fresh directory: it must fail matching PATTERN and leave nothing.
n=0
damaged() {
  local what=$1 pattern=$2 mode out rc to
  shift 2
  forge reseal "$DIR"
  gitwal index rebuild >/dev/null 2>&1 || fail "$what: gitwal index rebuild fails on the resealed store"
  for mode in "$@"; do
    n=$((n + 1))
    to=$T/r$n
    rc=0
    if [ "$mode" = latest ]; then
      out=$(gitwal restore --to "$to" --repo a.git 2>&1 >/dev/null) || rc=$?
    else
      out=$(gitwal restore --to "$to" --repo a.git --lsn "$mode" 2>&1 >/dev/null) || rc=$?
    fi
    [ $rc -ne 0 ] || fail "$what ($mode): restore succeeded (fsck: $(git -C "$to/a.git" fsck 2>&1 | head -3))"
    # One line for the failure (then the command's summary line).
    [ "$(grep -c 'repository a.git' <<<"$out")" -eq 1 ] || fail "$what ($mode): not one error line naming the repository: $out"
    out=$(grep 'repository a.git' <<<"$out")
    grep -Eq -- "$pattern" <<<"$out" || fail "$what ($mode): the error does not match '$pattern': $out"
    [ ! -e "$to/a.git" ] || fail "$what ($mode): a failed restore left $to/a.git"
    ! ls -A "$to" 2>/dev/null | grep -q . || fail "$what ($mode): a failed restore left $(ls -A "$to")"
  done
  pass "$what: refused (${out#gitwal restore: })"
  rm -rf "$STORE"
  cp -a "$T/pristine" "$STORE"
}
k1=$(basename "$(key 1 bundle)")
i1=$(basename "$(key 1 idx)")
s2=$(basename "$(key 2 seg)")
s3=$(basename "$(key 3 seg)")

# The full backup's pack.
forge flip-pack "$(key 1 bundle)"
damaged "a byte flipped in the full backup's pack" "$k1: object [0-9a-f]{40} \(offset 12\) is corrupt: CRC32 mismatch" 1 latest
forge flip-pack-fix-crc "$(key 1 bundle)"
damaged "a byte flipped in the full backup's pack, its CRC32 recomputed" "$k1: its pack's content hashes to SHA-1" 1 latest
forge manifest-set "$(key 1 manifest)" parts.bundle.pack_offset "$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['parts']['bundle']['pack_offset'] + 1)" "$(key 1 manifest)")"
damaged "the manifest's pack_offset shifted by one" "$k1: its pack does not start with a version 2 pack header|$k1: object .* is corrupt" 1 latest

# The full backup's index.
forge fanout-max "$(key 1 idx)"
damaged "the full backup's index claims 2^32-1 objects" "$i1: the index does not hold the [0-9]+ objects" 1 latest
forge fanout-max "$(key 1 idx)"
forge manifest-set "$(key 1 manifest)" parts.bundle.objects 4294967295
damaged "the full backup's index and manifest claim 2^32-1 objects" "$i1: 4294967295 objects need" 1 latest
forge idx-crc "$(key 1 idx)"
damaged "a CRC32 of the full backup's index" "$k1: object [0-9a-f]{40} \(offset [0-9]+\) is corrupt: CRC32 mismatch" 1 latest
forge idx-offset "$(key 1 idx)"
damaged "an offset of the full backup's index" "$k1: object [0-9a-f]{40} \(offset 1[23]\) is corrupt: pack index offsets do not tile the pack" 1 latest
forge idx-unsorted "$(key 1 idx)"
damaged "two ids swapped in the full backup's index" "$i1: (object ids are not sorted at position 1|the fanout table does not match object 0's id)" 1 latest

# A segment's pack and index (the point-in-time restore only: --lsn 1 does not read them).
forge flip-pack "$(key 2 seg)"
damaged "a byte flipped in a segment's pack" "$s2: object [0-9a-f]{40} \(offset 12\) is corrupt: CRC32 mismatch" latest
forge flip-pack-fix-crc "$(key 3 seg)"
damaged "a byte flipped in a segment's pack, its CRC32 recomputed" "$s3: its pack's content hashes to SHA-1" latest
forge fanout-max "$(key 2 seg)"
damaged "a segment's index claims 2^32-1 objects" "$s2: 4294967295 objects need" latest
forge idx-offset "$(key 3 seg)"
damaged "an offset of a segment's index" "$s3: object [0-9a-f]{40} \(offset 1[23]\) is corrupt: pack index offsets do not tile" latest

# Refs to objects the archive does not hold.

ghost=0123456789abcdef0123456789abcdef01234567
forge manifest-set "$(key 1 manifest)" refs.1.oid "\"$ghost\""
python3 -c "import json,sys; r=json.load(open(sys.argv[1]))['refs'][1]; assert r['name']=='refs/tags/t1', r" "$(key 1 manifest)" ||
  fail "test setup: the manifest's second ref is not refs/tags/t1"
damaged "a ref of the manifest pointing at an object not in the pack" "refs/tags/t1 points at object $ghost, which the archive does not hold \(restoring LSN [13]" 1 latest
new3=$(git -C "$T/root/a.git" rev-parse main)
forge header-replace "$(key 3 seg)" "\"new\":\"$new3\"" "\"new\":\"$ghost\""
damaged "a segment's update to an object not in any pack" "refs/heads/main points at object $ghost, which the archive does not hold \(restoring LSN 3" latest

# After all that, the pristine store still restores (nothing was left behind in the way).
gitwal index rebuild >/dev/null
restore_ok "$T/final" --repo a.git >/dev/null
diff <(echo "$TRUTH") <(repo_state "$T/final/a.git") >&2 || fail "the restore of the pristine store differs from the truth"
pass "the pristine store restores after the failed attempts"

# A segment over 8 MiB (LSN 4: an incompressible blob) is streamed into a pack of its own, its index after it:
# that pack is checked read back.
head -c $((9 << 20)) /dev/urandom >"$T/work/a.git/big.bin"
git -C "$T/work/a.git" add big.bin && git -C "$T/work/a.git" commit -qm big && git -C "$T/work/a.git" push -q origin main
archive_once
[ "$(stat -c %s "$(key 4 seg)")" -gt $((8 << 20)) ] || fail "test setup: LSN 4 is not a segment over 8 MiB"
rm -rf "$T/pristine" && cp -a "$STORE" "$T/pristine"
forge reseal "$DIR" && gitwal index rebuild >/dev/null
restore_ok "$T/big" --repo a.git >/dev/null
assert_same_repo "$T/root/a.git" "$T/big/a.git"
s4=$(basename "$(key 4 seg)")
forge flip-pack "$(key 4 seg)"
damaged "a byte flipped in a large segment's pack" "$s4: object [0-9a-f]{40} \(offset 12\) is corrupt: CRC32 mismatch" latest
forge flip-pack-fix-crc "$(key 4 seg)"
damaged "a byte flipped in a large segment's pack, its CRC32 recomputed" "$s4: its pack's content hashes to SHA-1" latest

