#!/usr/bin/env python3
"""The crafted-store corpus (test_store_corpus.sh): every way a stored key can be
damaged, applied one at a time to a copy of a real archive, and what gitwal must do
about each: restore (everything, and one repository at a time in the past) ends in a
named error or in repositories exactly as they were, never a broken repository with
exit 0, never a crash, never a half-made directory; the healthy repository beside the
damaged one is always restored; `audit --read-data` finds the damage (exit 1).

  store_corpus.py PRISTINE_STORE TRUTH.json SCRATCH

TRUTH.json: {"damaged": REL, "healthy": REL, "latest": {REL: state},
             "past": {"until": "@s.us", "state": state},   (state as pitr_check.py)
             "index_state": DIR}   a state directory whose index lists the pristine archive

Every case runs on a fresh machine (no index), except the loss of the newest record
(deleted, or replaced by something that is not a file, which no listing calls a key): the
store alone cannot tell it from a record never written (as a database cannot tell a lost
WAL tail), so those cases run with the index that saw it, which must name it.
"""
import json
import os
import shutil
import stat
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import forge  # noqa: E402
from pitr_check import live_state  # noqa: E402

GITWAL = os.environ["GITWAL_BIN"]


def writable(path):
    if os.path.isfile(path) and not os.path.islink(path):
        os.chmod(path, 0o644)


def flip(path, where, reseal_dir=None):
    writable(path)
    with open(path, "r+b") as f:
        f.seek(0, 2)
        n = f.tell()
        pos = {"start": 0, "middle": n // 2, "end": n - 1}[where]
        f.seek(pos)
        b = f.read(1)
        f.seek(pos)
        f.write(bytes([b[0] ^ 0x20]))
    if reseal_dir:
        forge.reseal(reseal_dir)


def truncate(path, how):
    writable(path)
    n = os.path.getsize(path)
    os.truncate(path, {"zero": 0, "half": n // 2, "minus1": max(n - 1, 0)}[how])


def replace_with(path, kind, other):
    os.chmod(path, 0o644)
    os.unlink(path)
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "symlink":
        os.symlink(os.path.basename(other), path)
    else:
        os.mkdir(path)


def write_stray(path, data):
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, 0o444)


def forge_op(args, reseal_dir):
    sys.argv = ["forge.py", *args]
    forge.main()
    forge.reseal(reseal_dir)


def seg_index_length(path):
    with open(path, "rb") as f:
        data = f.read()
    return int.from_bytes(data[-40:-32], "big") if len(data) >= 48 else 0


def cases(store, damaged):
    """(name, function(store_dir)) for every damage, on the damaged repository's keys."""
    enc = damaged.replace("%", "%25").replace("/", "%2F")
    rdir = os.path.join(store, "repos", enc)
    keys = sorted(os.listdir(rdir))
    last = max(int(k[:20]) for k in keys)
    newest = lambda k: " (the newest record, with the index)" if int(k[:20]) == last else ""  # noqa: E731
    out = []
    for k in keys:
        p = lambda d, k=k: os.path.join(d, "repos", enc, k)  # noqa: E731
        r = lambda d: os.path.join(d, "repos", enc)  # noqa: E731
        other = [x for x in keys if x != k][0]
        out.append(("delete " + k + newest(k),
                    lambda d, p=p: (writable(p(d)), os.unlink(p(d)))))
        for how in ("zero", "half", "minus1"):
            out.append(("truncate-%s %s" % (how, k), lambda d, p=p, how=how: truncate(p(d), how)))
        for where in ("start", "middle", "end"):
            out.append(("flip-%s %s" % (where, k), lambda d, p=p, where=where: flip(p(d), where)))
        out.append(("flip-middle-resealed " + k, lambda d, p=p, r=r: flip(p(d), "middle", r(d))))
        for kind in ("fifo", "symlink", "directory"):
            out.append(("%s %s%s" % (kind, k, newest(k)),
                        lambda d, p=p, kind=kind, other=other: replace_with(p(d), kind, other)))
        # Structure damage with every checksum recomputed.
        if k.endswith(".full.idx"):
            for op in ("fanout-max", "idx-offset", "idx-crc", "idx-unsorted"):
                out.append(("%s-resealed %s" % (op, k), lambda d, p=p, r=r, op=op: forge_op([op, p(d)], r(d))))
        if k.endswith(".full.bundle"):
            out.append(("flip-pack-fix-crc-resealed " + k,
                        lambda d, p=p, r=r: forge_op(["flip-pack-fix-crc", p(d)], r(d))))
        if k.endswith(".full.manifest"):
            for field, value in (("lsn", "99"), ("parts.bundle.pack_offset", "7"), ("parts.bundle.objects", "4294967295"),
                                 ("repository", '"../x.git"'), ("head.symbolic", '"refs/heads/../x"')):
                out.append(("manifest-%s-resealed %s" % (field, k),
                            lambda d, p=p, r=r, field=field, value=value: forge_op(["manifest-set", p(d), field, value],
                                                                                    r(d))))
        if k.endswith(".seg") and seg_index_length(os.path.join(rdir, k)) > 0:
            for op in ("flip-pack", "fanout-max", "idx-offset"):
                out.append(("%s-resealed %s" % (op, k), lambda d, p=p, r=r, op=op: forge_op([op, p(d)], r(d))))
    out.append(("stray segment past the end",
                lambda d: write_stray(os.path.join(d, "repos", enc, "%020d.seg" % (last + 1)), b"GWSEG\0garbage" * 9)))
    out.append(("stray manifest past the end",
                lambda d: write_stray(os.path.join(d, "repos", enc, "%020d.full.manifest" % (last + 2)), b"{}")))
    out.append(("stray key gitwal never writes",
                lambda d: write_stray(os.path.join(d, "repos", enc, "README"), b"hello")))
    return out


def run(args, env):
    p = subprocess.run([GITWAL, *args], capture_output=True, text=True, env=env)
    if p.returncode < 0 or p.returncode >= 126 or "Sanitizer" in p.stderr or "runtime error" in p.stderr:
        raise SystemExit("gitwal %s crashed (exit %d): %s" % (" ".join(args), p.returncode, p.stderr[-2000:]))
    return p


def check_restore(name, what, p, out, want, damaged):
    """Exit 0: exactly the truth. Non-zero: a named error, and what is there is exactly the truth."""
    err = [l for l in p.stderr.splitlines() if l.strip()]
    if p.returncode != 0:
        if not err or not any(damaged in l for l in err):
            raise SystemExit("%s: %s exited %d without naming %s: %s" % (name, what, p.returncode, damaged, p.stderr))
    elif damaged in want and not os.path.isdir(os.path.join(out, damaged)):
        raise SystemExit("%s: %s exited 0 but %s is not there" % (name, what, damaged))
    for rel, state in want.items():
        d = os.path.join(out, rel)
        if not os.path.isdir(d):
            if rel != damaged or p.returncode == 0:
                raise SystemExit("%s: %s did not restore %s (exit %d): %s" % (name, what, rel, p.returncode, p.stderr))
            continue
        got = live_state(d)
        fsck = subprocess.run(["git", "-C", d, "fsck", "--connectivity-only", "--no-progress"], capture_output=True)
        if got != state or fsck.returncode != 0:
            raise SystemExit("%s: %s exited %d and left a repository %s that is not the truth (fsck %d): %s vs %s"
                             % (name, what, p.returncode, rel, fsck.returncode, got, state))
    parent = os.path.dirname(out)
    left = [x for x in os.listdir(parent) if x.startswith(".gitwal-restore.")]
    if left:
        raise SystemExit("%s: %s left scratch directories: %s" % (name, what, left))


def main():
    pristine, truth_path, scratch = sys.argv[1:4]
    truth = json.load(open(truth_path))
    damaged, healthy = truth["damaged"], truth["healthy"]
    all_cases = cases(pristine, damaged)
    for i, (name, mutate) in enumerate(all_cases):
        case = os.path.join(scratch, "c%03d" % i)
        store = os.path.join(case, "store")
        shutil.copytree(pristine, store, symlinks=True)
        mutate(store)
        state = os.path.join(case, "state")
        if "with the index" in name:
            shutil.copytree(truth["index_state"], state, symlinks=True)
        env = dict(os.environ, GITWAL_STORE="file://" + store, GITWAL_STATE_DIR=state)
        out = os.path.join(case, "out", "all")
        os.makedirs(os.path.dirname(out))
        check_restore(name, "restore (everything, fresh index)", run(["restore", "--to", out], env), out,
                      truth["latest"], damaged)
        past = os.path.join(case, "out", "past")
        check_restore(name, "restore --until (the damaged repository)",
                      run(["restore", "--until", truth["past"]["until"], "--repo", damaged, "--to", past], env), past,
                      {damaged: truth["past"]["state"]}, damaged)
        a = run(["audit", "--read-data"], env)
        if a.returncode != 1 or damaged not in a.stdout + a.stderr:
            raise SystemExit("%s: audit --read-data exited %d without naming %s: %s%s" %
                             (name, a.returncode, damaged, a.stdout[-1500:], a.stderr[-500:]))
        run(["info"], env)  # only that it does not crash
        for root, dirs, files in os.walk(case):  # the copies are read-only: let the next rmtree work
            for x in dirs:
                os.chmod(os.path.join(root, x), stat.S_IRWXU)
        shutil.rmtree(case)
    print("%d crafted stores: every case a named error or the exact truth; %s always restored; audit found each"
          % (len(all_cases), healthy))


if __name__ == "__main__":
    main()
