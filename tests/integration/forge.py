#!/usr/bin/env python3
"""Damage a stored archive precisely, as a forger would, for the integration tests
(test_restore_verify.sh, test_store_corpus.sh): flip, shift or inflate one field of a
pack, a pack index, a segment header or a manifest, then recompute the checksums that
would reveal it (`reseal`: the manifests' part digests, every segment's prev_sha256 and
trailer, in LSN order). Works on a file store's repository directory.

  forge.py OP FILE [ARGS]     one damage (see main())
  forge.py reseal REPO_DIR    recompute every digest the store's own checks use
"""
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
            try:
                m = json.loads(open(p, 'rb').read())
            except ValueError:  # a damaged manifest: nothing to recompute in it
                continue
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
            try:
                hdr = json.loads(bytes(d[20:20 + h]))
            except ValueError:  # a damaged header: only its trailer is recomputed
                hdr = {'prev_sha256': ''}
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
