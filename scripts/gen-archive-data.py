#!/usr/bin/env python3
"""Data generator and load driver for scripts/bench-archive.sh.

  gen-archive-data.py seed DIR
      A small bare repository (3 commits on main, 1 tag), no hooks or samples.
  gen-archive-data.py many SEED ROOT N [GROUPS]
      N copies of SEED as ROOT/gNN/rNNNNN.git (spread over GROUPS directories).
  gen-archive-data.py commits ROOT PLAN COUNT [SEED]
      COUNT new commits (new blob + tree + commit, written as loose objects
      directly, no git process) on top of refs/heads/main of random
      repositories under ROOT, chained per repository; writes PLAN, one line
      per update: "<repo path> <ref> <new oid> <old oid>".
  gen-archive-data.py drive PLAN RATE
      Runs `git update-ref REF NEW OLD` for every line of PLAN, RATE per
      second on an absolute schedule (never catching up in bursts of more than
      one); prints achieved rate and scheduling lateness.
  gen-archive-data.py bigrefs DIR NREFS [NCOMMITS]
      A bare repository with a linear history of NCOMMITS commits
      (git fast-import) and NREFS refs (refs/heads/bNNNNNN and refs/tags/tNNNNNN,
      via git update-ref --stdin), then git pack-refs --all.
  gen-archive-data.py commit1 REPO REF
      One new commit on top of REF (loose objects); prints "<new> <old>".
"""
import hashlib
import os
import random
import shutil
import subprocess
import sys
import time
import zlib

ENV = dict(os.environ, GIT_CONFIG_NOSYSTEM="1", GIT_AUTHOR_NAME="Bench", GIT_AUTHOR_EMAIL="b@example.com",
           GIT_COMMITTER_NAME="Bench", GIT_COMMITTER_EMAIL="b@example.com")


def git(*args, cwd=None, input=None):
    return subprocess.run(["git", *args], cwd=cwd, input=input, env=ENV, check=True,
                          stdout=subprocess.PIPE).stdout


def strip_repo(d):
    for sub in ("hooks", "description", "info", "branches", "logs"):
        p = os.path.join(d, sub)
        if os.path.isdir(p):
            shutil.rmtree(p)
        elif os.path.exists(p):
            os.unlink(p)


def seed(d):
    if os.path.exists(d):
        shutil.rmtree(d)
    git("init", "-q", "--bare", d)
    fi = []
    for i in range(1, 4):
        fi.append("commit refs/heads/main\nmark :%d\ncommitter Bench <b@example.com> %d +0000\n"
                  "data 9\ncommit %d\n" % (i, 1700000000 + i, i))
        if i > 1:
            fi.append("from :%d\n" % (i - 1))
        body = ("file %d\n" % i) * 20
        fi.append("M 644 inline f%d.txt\ndata %d\n%s\n" % (i, len(body), body))
    fi.append("tag v1\nfrom :3\ntagger Bench <b@example.com> 1700000100 +0000\ndata 3\nv1\n")
    git("fast-import", "--quiet", cwd=d, input="".join(fi).encode())
    git("symbolic-ref", "HEAD", "refs/heads/main", cwd=d)
    git("pack-refs", "--all", cwd=d)
    git("repack", "-adq", cwd=d)
    git("prune-packed", cwd=d)
    strip_repo(d)
    # Keep the (empty) ref directories: the archiver watches them.
    for sub in ("refs/heads", "refs/tags"):
        os.makedirs(os.path.join(d, sub), exist_ok=True)


def repo_paths(root):
    out = []
    for dirpath, dirnames, _ in os.walk(root):
        keep = []
        for n in dirnames:
            if n.endswith(".git"):
                out.append(os.path.join(dirpath, n))
            else:
                keep.append(n)
        dirnames[:] = keep
    out.sort()
    return out


def many(seed_dir, root, n, groups=100):
    """N copies: one group built with copytree, the others copied with cp -a (fast)."""
    os.makedirs(root, exist_ok=True)
    groups = max(1, min(groups, n))
    per = (n + groups - 1) // groups
    first = os.path.join(root, "g000")
    os.makedirs(first, exist_ok=True)
    for i in range(per):
        dst = os.path.join(first, "r%05d.git" % i)
        if not os.path.exists(dst):
            shutil.copytree(seed_dir, dst, symlinks=True)
    made = per
    for g in range(1, groups):
        k = min(per, n - made)
        if k <= 0:
            break
        dst = os.path.join(root, "g%03d" % g)
        if not os.path.exists(dst):
            if k == per:
                subprocess.run(["cp", "-a", first, dst], check=True)
            else:
                os.makedirs(dst)
                for i in range(k):
                    shutil.copytree(os.path.join(first, "r%05d.git" % i), os.path.join(dst, "r%05d.git" % i),
                                    symlinks=True)
        made += k


def write_loose(repo, kind, body):
    data = b"%s %d\0" % (kind.encode(), len(body)) + body
    oid = hashlib.sha1(data).hexdigest()
    d = os.path.join(repo, "objects", oid[:2])
    os.makedirs(d, exist_ok=True)
    p = os.path.join(d, oid[2:])
    if not os.path.exists(p):
        tmp = p + ".tmp%d" % os.getpid()
        with open(tmp, "wb") as f:
            f.write(zlib.compress(data, 1))
        os.rename(tmp, p)
    return oid


def resolve(repo, ref):
    return git("rev-parse", "--verify", ref + "^{commit}", cwd=repo).decode().strip()


def tree_of(repo, commit):
    return git("rev-parse", commit + "^{tree}", cwd=repo).decode().strip()


def new_commit(repo, parent, parent_tree_entries, n):
    blob = write_loose(repo, "blob", ("change %d in %s at %f\n" % (n, repo, time.time())).encode() * 8)
    entries = dict(parent_tree_entries)
    entries[b"change.txt"] = (b"100644", bytes.fromhex(blob))
    body = b"".join(mode + b" " + name + b"\0" + oid for name, (mode, oid) in sorted(entries.items()))
    tree = write_loose(repo, "tree", body)
    t = int(time.time())
    cbody = ("tree %s\nparent %s\nauthor Bench <b@example.com> %d +0000\n"
             "committer Bench <b@example.com> %d +0000\n\nchange %d\n" % (tree, parent, t, t, n)).encode()
    return write_loose(repo, "commit", cbody), entries


def read_tree_entries(repo, tree):
    out = {}
    raw = git("cat-file", "tree", tree, cwd=repo)
    i = 0
    while i < len(raw):
        sp = raw.index(b" ", i)
        nul = raw.index(b"\0", sp)
        out[raw[sp + 1:nul]] = (raw[i:sp], raw[nul + 1:nul + 21])
        i = nul + 21
    return out


def commits(root, plan, count, seed_dir=None):
    repos = repo_paths(root)
    rnd = random.Random(12345)
    # Every copy of the seed starts at the same main; read it once.
    base = resolve(seed_dir or repos[0], "refs/heads/main")
    base_entries = read_tree_entries(seed_dir or repos[0], tree_of(seed_dir or repos[0], base))
    tips = {}
    lines = []
    recent = []  # no repository twice within 200 updates (4 s at 50/s): updates never race
    for n in range(count):
        while True:
            r = repos[rnd.randrange(len(repos))]
            if r not in recent or len(repos) <= 200:
                break
        recent.append(r)
        if len(recent) > 200:
            recent.pop(0)
        if r not in tips:
            tip = resolve(r, "refs/heads/main") if seed_dir is None else base
            tips[r] = (tip, base_entries if seed_dir else read_tree_entries(r, tree_of(r, tip)))
        old, entries = tips[r]
        new, entries = new_commit(r, old, entries, n)
        tips[r] = (new, entries)
        lines.append("%s refs/heads/main %s %s\n" % (r, new, old))
    with open(plan, "w") as f:
        f.writelines(lines)


def commit1(repo, ref):
    old = resolve(repo, ref)
    new, _ = new_commit(repo, old, read_tree_entries(repo, tree_of(repo, old)), int(time.time() * 1000))
    print(new, old)


def drive(plan, rate):
    with open(plan) as f:
        items = [l.split() for l in f if l.strip()]
    period = 1.0 / rate
    late = []
    procs = []
    t0 = time.monotonic() + 0.2
    for i, (repo, ref, new, old) in enumerate(items):
        due = t0 + i * period
        now = time.monotonic()
        if now < due:
            time.sleep(due - now)
        late.append(max(0.0, time.monotonic() - due))
        # Non-blocking: a slow git never shifts the schedule.
        procs.append(subprocess.Popen(["git", "--git-dir", repo, "update-ref", ref, new, old], env=ENV))
        procs = [p for p in procs if p.poll() is None]
    failed = 0
    for p in procs:
        p.wait()
    elapsed = time.monotonic() - t0
    late.sort()
    print("drive: updates=%d seconds=%.2f rate=%.2f late_p50_ms=%.2f late_max_ms=%.2f" % (
        len(items), elapsed, len(items) / elapsed, 1000 * late[len(late) // 2], 1000 * late[-1]))


def bigrefs(d, nrefs, ncommits=20000):
    if os.path.exists(d):
        shutil.rmtree(d)
    git("init", "-q", "--bare", d)
    fi = []
    for i in range(1, ncommits + 1):
        fi.append("commit refs/heads/main\nmark :%d\ncommitter Bench <b@example.com> %d +0000\n"
                  "data 9\ncommit %d\n" % (i, 1700000000 + i, i % 10))
        if i > 1:
            fi.append("from :%d\n" % (i - 1))
        body = "line %d\n" % i
        fi.append("M 644 inline d%d/f%d.txt\ndata %d\n%s\n" % (i % 100, i % 1000, len(body), body))
    marks = os.path.join(d, "marks.tmp")
    git("fast-import", "--quiet", "--export-marks=" + marks, cwd=d, input="".join(fi).encode())
    oids = {}
    with open(marks) as f:
        for l in f:
            m, o = l.split()
            oids[int(m[1:])] = o
    os.unlink(marks)
    git("symbolic-ref", "HEAD", "refs/heads/main", cwd=d)
    cmds = []
    for i in range(nrefs - 1):
        name = ("refs/heads/b%06d" % i) if i % 4 else ("refs/tags/t%06d" % i)
        cmds.append("create %s %s\n" % (name, oids[1 + (i * 7919) % ncommits]))
    git("update-ref", "--stdin", cwd=d, input="".join(cmds).encode())
    git("pack-refs", "--all", cwd=d)
    strip_repo(d)
    for sub in ("refs/heads", "refs/tags"):
        os.makedirs(os.path.join(d, sub), exist_ok=True)


def main(argv):
    cmd = argv[1] if len(argv) > 1 else ""
    if cmd == "seed" and len(argv) == 3:
        seed(argv[2])
    elif cmd == "many" and len(argv) in (5, 6):
        many(argv[2], argv[3], int(argv[4]), int(argv[5]) if len(argv) == 6 else 100)
    elif cmd == "commits" and len(argv) in (5, 6):
        commits(argv[2], argv[3], int(argv[4]), argv[5] if len(argv) == 6 else None)
    elif cmd == "drive" and len(argv) == 4:
        drive(argv[2], float(argv[3]))
    elif cmd == "bigrefs" and len(argv) in (4, 5):
        bigrefs(argv[2], int(argv[3]), int(argv[4]) if len(argv) == 5 else 20000)
    elif cmd == "commit1" and len(argv) == 4:
        commit1(argv[2], argv[3])
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
